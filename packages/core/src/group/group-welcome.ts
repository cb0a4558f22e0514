/**
 * The welcome a joining device receives (docs/protocol.md §12.6): the parent state
 * (absent for a genesis) and the signed change that added the device.
 *
 * ```
 * GroupWelcome = version u8 | type u8 (=0x13) | hasParent u8 [parentState bytes32] | change bytes32
 * ```
 *
 * The receiver verifies every certificate of the parent state and the change itself;
 * the parent is otherwise taken on the word of the welcoming member.
 *
 * @module
 */
import { ByteReader } from '../codec/reader.js';
import { ByteWriter } from '../codec/writer.js';
import { Limits, MessageType, WIRE_VERSION } from '../protocol/constants.js';
import { readVersion } from '../protocol/device-certificate.js';
import { decodeGroupChange, type SignedGroupChange } from './group-change.js';
import { decodeGroupState, type GroupState } from './group-state.js';

/** A decoded welcome. */
export interface GroupWelcome {
  /** The parent state and its exact encoding (hashed by the receiver); absent for a genesis. */
  readonly parent?: { readonly state: GroupState; readonly bytes: Uint8Array };
  readonly change: SignedGroupChange;
}

const STRUCTURE = 'GroupWelcome';

/** Encodes a welcome from an encoded parent state (or none) and a signed change. */
export function encodeGroupWelcome(parentState: Uint8Array | undefined, change: SignedGroupChange): Uint8Array {
  const w = new ByteWriter(16 + (parentState?.length ?? 0) + change.bytes.length).u8(WIRE_VERSION).u8(MessageType.GROUP_WELCOME);
  if (parentState) w.u8(1).bytes32(parentState);
  else w.u8(0);
  return w.bytes32(change.bytes).finish();
}

/** Decodes a welcome. Throws `CodecError` (or `UNSUPPORTED_VERSION`). */
export function decodeGroupWelcome(bytes: Uint8Array): GroupWelcome {
  const r = new ByteReader(bytes, STRUCTURE, Limits.maxGroupWelcome);
  readVersion(r, STRUCTURE);
  r.enumU8('type', [MessageType.GROUP_WELCOME]);
  let parent: GroupWelcome['parent'];
  if (r.bool('hasParent')) {
    const at = r.offset;
    const raw = r.bytes32('parentState', Limits.maxGroupState);
    try {
      parent = { state: decodeGroupState(raw), bytes: raw };
    } catch {
      throw r.fail('parentState', 'invalid group state', at);
    }
  }
  const at = r.offset;
  const raw = r.bytes32('change', Limits.maxGroupChange);
  let change: SignedGroupChange;
  try {
    change = decodeGroupChange(raw);
  } catch {
    throw r.fail('change', 'invalid group change', at);
  }
  r.end();
  return { ...(parent ? { parent } : {}), change };
}
