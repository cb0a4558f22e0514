/**
 * One pairwise session with one peer device, and the record holding all sessions with
 * that device (docs/protocol.md §7.3).
 *
 * A device may hold several sessions with one peer (after simultaneous initiation, or
 * when the peer re-installs): the first is the active one, used to send; the others are
 * kept, up to `maxSessionsPerDevice`, only to decrypt late messages (Sesame §3.1).
 *
 * ```
 * SessionRecord = count u8 | SessionState * count          (active first)
 * SessionState  = baseKey[32] | role u8 (1 initiator, 2 responder) | confirmed u8
 *               | remoteCertificate bytes16
 *               | RK[32] | DHs.public[32] | DHs.secret[32]
 *               | hasDHr u8 [DHr[32]] | hasCKs u8 [CKs[32]] | hasCKr u8 [CKr[32]]
 *               | Ns u32 | Nr u32 | PN u32
 *               | previousCount u8 | previousDHr[32] * previousCount
 *               | skippedCount u16 | (dh[32] | n u32 | mk[32]) * skippedCount   (oldest first)
 *               | hasPending u8 [ signedPrekeyId u32 | hasOneTime u8 [oneTimePrekeyId u32]
 *                                | pqId u32 | pqKind u8 | kemCiphertext[1088] ]
 * ```
 *
 * @module
 */
import type { X25519PublicKey, X25519SecretKey } from '@deadbolt/spec';
import { fromHex, toHex } from '../codec/bytes.js';
import type { ByteReader } from '../codec/reader.js';
import { ByteWriter } from '../codec/writer.js';
import { Len, Limits, PqPrekeyKind } from '../protocol/constants.js';
import { decodeDeviceCertificate, encodeDeviceCertificate, type DeviceCertificate } from '../protocol/device-certificate.js';
import type { RatchetState, SkippedKey } from '../protocol/double-ratchet.js';

/** The prekeys an initiator names in every message until the session is confirmed. */
export interface PendingPrekey {
  readonly signedPrekeyId: number;
  readonly oneTimePrekeyId?: number;
  readonly pqId: number;
  readonly pqKind: number;
  readonly kemCiphertext: Uint8Array;
}

/** One pairwise session. Treat as immutable. */
export interface SessionState {
  /** EK_A, the initiator's base key: identifies the session on both sides. */
  readonly baseKey: X25519PublicKey;
  readonly role: 'initiator' | 'responder';
  /** Whether the peer has shown it holds this session (we decrypted a message on it). */
  readonly confirmed: boolean;
  readonly remoteCertificate: DeviceCertificate;
  readonly ratchet: RatchetState;
  /** Present while an initiator's session is unconfirmed. */
  readonly pending?: PendingPrekey;
}

/** All sessions with one peer device, active first. */
export interface SessionRecord {
  readonly sessions: readonly SessionState[];
}

function writeOptional(w: ByteWriter, value: Uint8Array | undefined): void {
  if (value) w.u8(1).fixed(value, Len.key);
  else w.u8(0);
}

function readOptional(r: ByteReader, field: string): Uint8Array | undefined {
  return r.bool(`has${field}`) ? r.fixed(field, Len.key) : undefined;
}

function writeState(w: ByteWriter, s: SessionState): void {
  const d = s.ratchet;
  w.fixed(s.baseKey, Len.key)
    .u8(s.role === 'initiator' ? 1 : 2)
    .u8(s.confirmed ? 1 : 0)
    .bytes16(encodeDeviceCertificate(s.remoteCertificate))
    .fixed(d.RK, Len.key)
    .fixed(d.DHs.publicKey, Len.key)
    .fixed(d.DHs.secretKey, Len.key);
  writeOptional(w, d.DHr);
  writeOptional(w, d.CKs);
  writeOptional(w, d.CKr);
  w.u32(d.Ns).u32(d.Nr).u32(d.PN).u8(d.previousDHr.length);
  for (const hex of d.previousDHr) w.fixed(fromHex(hex), Len.key);
  w.u16(d.MKSKIPPED.size);
  for (const k of d.MKSKIPPED.values()) w.fixed(k.dh, Len.key).u32(k.n).fixed(k.mk, Len.key);
  const p = s.pending;
  if (p) {
    w.u8(1).u32(p.signedPrekeyId);
    if (p.oneTimePrekeyId !== undefined) w.u8(1).u32(p.oneTimePrekeyId);
    else w.u8(0);
    w.u32(p.pqId).u8(p.pqKind).fixed(p.kemCiphertext, Len.mlkemCiphertext);
  } else w.u8(0);
}

function readState(r: ByteReader): SessionState {
  const baseKey = r.fixed('baseKey', Len.key) as X25519PublicKey;
  const role = r.enumU8('role', [1, 2]) === 1 ? 'initiator' : 'responder';
  const confirmed = r.bool('confirmed');
  const certAt = r.offset;
  let remoteCertificate: DeviceCertificate;
  try {
    remoteCertificate = decodeDeviceCertificate(r.bytes16('remoteCertificate', Limits.maxCertificate));
  } catch {
    throw r.fail('remoteCertificate', 'invalid certificate', certAt);
  }
  const RK = r.fixed('RK', Len.key);
  const DHs = {
    publicKey: r.fixed('DHs.public', Len.key) as X25519PublicKey,
    secretKey: r.fixed('DHs.secret', Len.key) as X25519SecretKey,
  };
  const DHr = readOptional(r, 'DHr') as X25519PublicKey | undefined;
  const CKs = readOptional(r, 'CKs');
  const CKr = readOptional(r, 'CKr');
  const Ns = r.u32('Ns');
  const Nr = r.u32('Nr');
  const PN = r.u32('PN');
  const prevAt = r.offset;
  const prevCount = r.u8('previousCount');
  if (prevCount > Limits.maxPreviousChains) throw r.fail('previousCount', 'over limit', prevAt);
  const previousDHr: string[] = [];
  for (let i = 0; i < prevCount; i++) previousDHr.push(toHex(r.fixed('previousDHr', Len.key)));
  const skAt = r.offset;
  const skippedCount = r.u16('skippedCount');
  if (skippedCount > Limits.maxSkippedKeys) throw r.fail('skippedCount', 'over limit', skAt);
  const MKSKIPPED = new Map<string, SkippedKey>();
  for (let i = 0; i < skippedCount; i++) {
    const dh = r.fixed('skipped.dh', Len.key) as X25519PublicKey;
    const n = r.u32('skipped.n');
    MKSKIPPED.set(`${toHex(dh)}:${n}`, { dh, n, mk: r.fixed('skipped.mk', Len.key) });
  }
  let pending: PendingPrekey | undefined;
  if (r.bool('hasPending')) {
    const signedPrekeyId = r.u32('pending.signedPrekeyId');
    const oneTimePrekeyId = r.bool('pending.hasOneTime') ? r.u32('pending.oneTimePrekeyId') : undefined;
    pending = {
      signedPrekeyId,
      ...(oneTimePrekeyId !== undefined ? { oneTimePrekeyId } : {}),
      pqId: r.u32('pending.pqId'),
      pqKind: r.enumU8('pending.pqKind', [PqPrekeyKind.ONE_TIME, PqPrekeyKind.LAST_RESORT]),
      kemCiphertext: r.fixed('pending.kemCiphertext', Len.mlkemCiphertext),
    };
  }
  return {
    baseKey,
    role,
    confirmed,
    remoteCertificate,
    ratchet: { RK, DHs, DHr, CKs, CKr, Ns, Nr, PN, MKSKIPPED, previousDHr },
    ...(pending ? { pending } : {}),
  };
}

/** Encodes a session record body (without the envelope). */
export function encodeSessionRecord(record: SessionRecord): Uint8Array {
  const w = new ByteWriter(1024).u8(record.sessions.length);
  for (const s of record.sessions) writeState(w, s);
  return w.finish();
}

/** Decodes a session record body from a reader positioned at its start. */
export function readSessionRecord(r: ByteReader): SessionRecord {
  const at = r.offset;
  const count = r.u8('count');
  if (count < 1 || count > Limits.maxSessionsPerDevice) throw r.fail('count', 'out of range', at);
  const sessions: SessionState[] = [];
  for (let i = 0; i < count; i++) sessions.push(readState(r));
  return { sessions };
}
