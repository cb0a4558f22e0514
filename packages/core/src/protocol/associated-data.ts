/**
 * The associated data of a pairwise session (docs/protocol.md §6.3).
 *
 * ```
 * party(c)  = userId string8 | deviceId string8 | accountKey[32] | identityKey[32]
 * AD prefix = label8("Deadbolt_v1_PairwiseAD") | party(sender) | party(recipient)
 * AD        = AD prefix | ratchet header (42 bytes)
 * ```
 *
 * PQXDH §3.3 puts `Encode(IK_A) || Encode(IK_B)` in the AD; Deadbolt also binds both
 * addresses and both account keys, and the direction (sender first), so a message
 * re-addressed to another device, replayed from a different claimed sender, or reflected
 * back to its sender fails to decrypt (SECURITY.md B11).
 *
 * @module
 */
import { ByteWriter } from '../codec/writer.js';
import { Label, Len, labelPrefix } from './constants.js';
import type { DeviceCertificate } from './device-certificate.js';

const PREFIX = labelPrefix(Label.pairwiseAd);

/** The AD prefix for a message from `sender` to `recipient`. */
export function pairwiseAdPrefix(sender: DeviceCertificate, recipient: DeviceCertificate): Uint8Array {
  const w = new ByteWriter(320).fixed(PREFIX, PREFIX.length);
  for (const c of [sender, recipient]) {
    w.string8(c.userId).string8(c.deviceId).fixed(c.accountKey, Len.key).fixed(c.identityKey, Len.key);
  }
  return w.finish();
}
