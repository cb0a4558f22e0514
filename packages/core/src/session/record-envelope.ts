/**
 * The envelope around every record core stores (docs/protocol.md §7.1):
 *
 * ```
 * schema u8 (=1) | recordType u8 | body | checksum[8] = SHA-256(schema | recordType | body)[0..8)
 * ```
 *
 * The checksum detects corrupted and truncated records (SECURITY.md D29); it is not a
 * MAC: integrity against an attacker who can write the store is what encryption at rest
 * adds. A record that fails is reported as `StorageError` `CORRUPTED_RECORD`, never used.
 *
 * @module
 */
import { CodecError, StorageError, type StorageKey } from '@deadbolt/spec';
import { concatBytes } from '../codec/bytes.js';
import { ByteReader } from '../codec/reader.js';
import { equalBytes } from '../crypto/checks.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { Limits } from '../protocol/constants.js';

/** The current record schema version. */
export const RECORD_SCHEMA = 1;

/** Record type bytes (§7.1). */
export const RecordType = Object.freeze({
  IDENTITY: 1,
  SIGNED_PREKEY: 2,
  ONE_TIME_PREKEY: 3,
  PQ_PREKEY: 4,
  SESSION: 5,
  TRUST: 6,
  PREKEY_META: 7,
  REPLAY_MARKER: 8,
  DEVICE_LIST: 9,
});

const CHECKSUM = 8;

/** Wraps a record body. */
export function sealRecord(crypto: CryptoProvider, type: number, body: Uint8Array): Uint8Array {
  const head = Uint8Array.of(RECORD_SCHEMA, type);
  const sum = crypto.sha256(concatBytes(head, body)).subarray(0, CHECKSUM);
  return concatBytes(head, body, sum);
}

function corrupted(key: StorageKey, reason: string, cause?: unknown): StorageError<'CORRUPTED_RECORD'> {
  return new StorageError('CORRUPTED_RECORD', {
    message: `stored record ${key.join('/')} is unusable: ${reason}`,
    details: { key: key.join('/'), reason },
    cause,
  });
}

/**
 * Checks a record's envelope and decodes its body with `decode`, which must consume it
 * exactly. Any failure is `CORRUPTED_RECORD` naming the storage key.
 */
export function openRecord<T>(
  crypto: CryptoProvider,
  key: StorageKey,
  type: number,
  bytes: Uint8Array,
  decode: (r: ByteReader) => T,
): T {
  if (bytes.length < 2 + CHECKSUM || bytes.length > Limits.maxRecord) throw corrupted(key, 'bad length');
  const content = bytes.subarray(0, bytes.length - CHECKSUM);
  if (!equalBytes(crypto.sha256(content).subarray(0, CHECKSUM), bytes.subarray(bytes.length - CHECKSUM))) {
    throw corrupted(key, 'checksum mismatch');
  }
  if (content[0] !== RECORD_SCHEMA) throw corrupted(key, `unknown schema ${content[0]}`);
  if (content[1] !== type) throw corrupted(key, `unexpected record type ${content[1]}`);
  try {
    const r = new ByteReader(content.subarray(2), `record ${type}`, Limits.maxRecord);
    const value = decode(r);
    r.end();
    return value;
  } catch (e) {
    if (e instanceof CodecError) throw corrupted(key, 'undecodable body', e);
    throw e;
  }
}
