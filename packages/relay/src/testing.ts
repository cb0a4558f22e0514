/**
 * Test helpers for adapter authors (`@deadbolt/relay/testing`): a relay on loopback with
 * rate limits loose enough for conformance suites, a restart at the same URL, and devices
 * with real keys that the relay accepts. Used by every transport's conformance test.
 *
 * @module
 */
import { createSessionManager, encodeDeviceCertificate, encodePrekeyUpload } from '@deadbolt/core';
import { address, type Address, type TransportAuth } from '@deadbolt/spec';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import { createRelay, type Relay, type RelayOptions } from './relay.js';
import { createMemoryRelayStore } from './memory-store.js';
import { silentRelayLogger } from './logger.js';
import type { RateLimit } from './limits.js';

const LOOSE: RateLimit = { burst: 1_000_000, refill: 1_000_000, intervalMs: 1000 };

/** Limits for tests: every rate limit effectively off, every size limit as in production. */
export const LOOSE_TEST_LIMITS: NonNullable<RelayOptions['limits']> = {
  messages: LOOSE,
  bundleFetches: LOOSE,
  requests: LOOSE,
  sendBytes: { burst: 2 ** 40, refill: 2 ** 40, intervalMs: 1000 },
  authAttempts: LOOSE,
  prekeyUploads: LOOSE,
};

/**
 * A relay on 127.0.0.1 with a memory store and loose rate limits.
 *
 * @example
 * ```ts
 * const relay = await conformanceRelay();
 * ```
 */
export function conformanceRelay(options: RelayOptions = {}): Promise<Relay> {
  return createRelay({ host: '127.0.0.1', port: 0, logger: silentRelayLogger, store: createMemoryRelayStore(), limits: LOOSE_TEST_LIMITS, ...options });
}

/**
 * Closes `relay` and starts a fresh one on the same port. Its memory store starts
 * empty, so devices must re-register when their transports reconnect: what a transport
 * meets after a relay loses its state.
 */
export async function restartConformanceRelay(relay: { url: string; close(): Promise<void> }): Promise<Relay> {
  const port = Number(new URL(relay.url).port);
  await relay.close();
  return conformanceRelay({ port });
}

/** A device with its own identity: its address, the credentials a transport needs, and an encoded prekey upload. */
export interface TestDevice {
  readonly address: Address;
  readonly auth: TransportAuth;
  readonly upload: Uint8Array;
}

/**
 * A device with real keys (in memory), as a transport test needs one.
 *
 * @example
 * ```ts
 * const alice = await conformanceDevice('alice', 'phone');
 * await transport.connect(alice.auth);
 * ```
 */
export async function conformanceDevice(userId: string, deviceId: string): Promise<TestDevice> {
  const sessions = createSessionManager({ storage: createMemoryStorage() });
  const certificate = await sessions.createIdentity({ userId, deviceId });
  const prekeys = await sessions.generatePrekeys({ oneTime: 2, pqOneTime: 1 });
  return {
    address: address(userId, deviceId),
    auth: { certificate: encodeDeviceCertificate(certificate), sign: (relayId, challenge) => sessions.signRelayChallenge(relayId, challenge) },
    upload: encodePrekeyUpload(prekeys),
  };
}
