/**
 * The relay authentication signature input (docs/relay-protocol.md §2):
 * `label8("Deadbolt_v1_RelayAuth") | relayId string8 | challenge[32]`, signed with the
 * device signing key. The label keeps these signatures from being usable as any other
 * Deadbolt signature (SECURITY.md A4), and the relay id stops one relay from replaying a
 * device's answer to another.
 *
 * @module
 */
import { ByteWriter } from '../codec/writer.js';
import { Label, labelPrefix } from './constants.js';

const LABEL = labelPrefix(Label.relayAuth);

/** The bytes a device signs to authenticate to relay `relayId` with `challenge`. */
export function relayAuthSignatureInput(relayId: string, challenge: Uint8Array): Uint8Array {
  return new ByteWriter(128).fixed(LABEL, LABEL.length).string8(relayId).fixed(challenge, 32).finish();
}
