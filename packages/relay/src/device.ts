/**
 * An authenticated device, as the relay remembers it for a connection or session.
 *
 * @module
 */
import type { Address } from '@deadbolt/spec';
import { addressKey } from './store-util.js';

/** A device that proved possession of its signing key (docs/relay-protocol.md §2). */
export interface AuthenticatedDevice {
  readonly address: Address;
  /** `addressKey(address)`: the key of its mailbox and connection sets. */
  readonly key: string;
  /** The encoded certificate it authenticated with (and registered). */
  readonly certificate: Uint8Array;
}

export function authenticatedDevice(address: Address, certificate: Uint8Array): AuthenticatedDevice {
  return { address, key: addressKey(address), certificate };
}
