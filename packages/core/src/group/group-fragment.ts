/**
 * Fragments of a group payload too large for one pairwise message
 * (docs/protocol.md §12.9.2): a welcome or genesis of a large group.
 *
 * ```
 * GroupFragment = version u8 | type u8 (=0x15) | payloadHash[32] | index u16 | count u16 | chunk bytes32
 * payloadHash   = SHA-256(payload)
 * ```
 *
 * The pairwise session authenticates each fragment; the hash ties them together and is
 * checked on reassembly.
 *
 * @module
 */
import { CodecError } from '@deadbolt/spec';
import { ByteReader } from '../codec/reader.js';
import { ByteWriter } from '../codec/writer.js';
import { equalBytes } from '../crypto/checks.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { Limits, MessageType, WIRE_VERSION } from '../protocol/constants.js';
import { readVersion } from '../protocol/device-certificate.js';
import { groupLimit } from './group-errors.js';

/** A decoded fragment. */
export interface GroupFragment {
  readonly payloadHash: Uint8Array;
  readonly index: number;
  readonly count: number;
  readonly chunk: Uint8Array;
}

const STRUCTURE = 'GroupFragment';
const MAX = 2 + 32 + 2 + 2 + 4 + Limits.maxGroupFragmentChunk;

export function encodeGroupFragment(f: GroupFragment): Uint8Array {
  return new ByteWriter(48 + f.chunk.length)
    .u8(WIRE_VERSION)
    .u8(MessageType.GROUP_FRAGMENT)
    .fixed(f.payloadHash, 32)
    .u16(f.index)
    .u16(f.count)
    .bytes32(f.chunk)
    .finish();
}

/** Decodes a fragment. Throws `CodecError` (or `UNSUPPORTED_VERSION`). */
export function decodeGroupFragment(bytes: Uint8Array): GroupFragment {
  const r = new ByteReader(bytes, STRUCTURE, MAX);
  readVersion(r, STRUCTURE);
  r.enumU8('type', [MessageType.GROUP_FRAGMENT]);
  const payloadHash = r.fixed('payloadHash', 32);
  const index = r.u16('index');
  const countAt = r.offset;
  const count = r.u16('count');
  if (count < 2 || count > Limits.maxGroupFragments) throw r.fail('count', `must be 2..${Limits.maxGroupFragments}`, countAt);
  if (index >= count) throw r.fail('index', 'not below count', countAt - 2);
  const chunkAt = r.offset;
  const chunk = r.bytes32('chunk', Limits.maxGroupFragmentChunk);
  if (chunk.length === 0) throw r.fail('chunk', 'empty', chunkAt);
  r.end();
  return { payloadHash, index, count, chunk };
}

/**
 * Splits a payload into fragments of at most `chunkSize` bytes, or returns it whole if it
 * fits in one.
 */
export function fragmentPayload(crypto: CryptoProvider, payload: Uint8Array, chunkSize: number = Limits.maxGroupFragmentChunk): Uint8Array[] {
  if (payload.length <= chunkSize) return [payload];
  const size = Math.min(chunkSize, Limits.maxGroupFragmentChunk);
  const count = Math.ceil(payload.length / size);
  if (count > Limits.maxGroupFragments) throw groupLimit('maxGroupFragments', Limits.maxGroupFragments);
  const payloadHash = crypto.sha256(payload);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    out.push(encodeGroupFragment({ payloadHash, index: i, count, chunk: payload.subarray(i * size, Math.min(payload.length, (i + 1) * size)) }));
  }
  return out;
}

/**
 * Reassembles a complete set of fragments (any order), or returns undefined while some are
 * missing. Fragments that disagree with the first on hash or count are ignored. A complete
 * set larger than a welcome is `LIMIT_EXCEEDED`; one whose hash does not match is
 * `DECODE_FAILED`.
 */
export function reassemble(crypto: CryptoProvider, fragments: readonly GroupFragment[]): Uint8Array | undefined {
  const first = fragments[0];
  if (!first) return undefined;
  // Not `new Array(count)`: a sparse array's holes are skipped by `some`, and a missing
  // fragment would go unnoticed.
  const parts: (Uint8Array | undefined)[] = Array.from({ length: first.count }, () => undefined);
  let size = 0;
  for (const f of fragments) {
    if (f.count !== first.count || !equalBytes(f.payloadHash, first.payloadHash) || parts[f.index]) continue;
    parts[f.index] = f.chunk;
    size += f.chunk.length;
  }
  for (let i = 0; i < parts.length; i++) if (parts[i] === undefined) return undefined;
  if (size > Limits.maxGroupWelcome) throw groupLimit('maxGroupWelcome', Limits.maxGroupWelcome);
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts as Uint8Array[]) {
    out.set(p, at);
    at += p.length;
  }
  if (!equalBytes(crypto.sha256(out), first.payloadHash)) {
    throw new CodecError({ structure: STRUCTURE, field: 'payloadHash', offset: 2, reason: 'reassembled payload does not match its hash' });
  }
  return out;
}
