/**
 * Encryption at rest (docs/protocol.md §7.5): a storage adapter that seals every value it
 * stores in another adapter with a key the application supplies.
 *
 * Values are sealed with ChaCha20-Poly1305 under a key and nonce derived, for every write,
 * from the application key and 32 fresh random bytes (so nonces never repeat however many
 * values one key seals), with the value's storage key (its path) as associated data, so a
 * row moved to another key does not open. A reserved key-check entry tells a wrong key
 * (`STORAGE_ENCRYPTION` `wrong-key`) from a corrupted value (`CORRUPTED_RECORD`), and a
 * plaintext store from an empty one. Paths stay in the clear (§7.5 says why).
 *
 * @module
 */
import {
  STORAGE_LIMITS,
  STORAGE_SPECIFICATION_VERSION,
  StorageError,
  UsageError,
  assertStorageBatch,
  assertStorageKey,
  readRangeOptions,
  type RangeOptions,
  type StorageAdapter,
  type StorageEntry,
  type StorageKey,
  type StorageOp,
} from '@deadbolt/spec';
import { ByteWriter } from '../codec/writer.js';
import { equalBytes } from '../crypto/checks.js';
import { createDefaultCryptoProvider } from '../crypto/index.js';
import { checkedStorage } from './storage-version.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { Label, labelPrefix } from '../protocol/constants.js';

/** The version byte of a sealed value (§7.5): not 0x01, so a sealed value is never mistaken for a plain record envelope (§7.1). */
const SEALED_VERSION = 0xe1;
const SALT_BYTES = 32;
const TAG_BYTES = 16;
/** Bytes sealing adds to a value: version, salt, tag. */
export const SEAL_OVERHEAD = 1 + SALT_BYTES + TAG_BYTES;
/** The reserved key-check entry (§7.5). */
export const AT_REST_CHECK_KEY: StorageKey = Object.freeze(['at-rest']);
const CHECK_PLAINTEXT = new TextEncoder().encode(`${Label.storageKeys} key check`);
const LABEL = labelPrefix(Label.storageKeys);

/** Options of {@link createEncryptedStorage}. */
export interface EncryptedStorageOptions {
  /** The 32-byte key. Keep it outside the store (a platform keystore, a passphrase KDF). */
  readonly key: Uint8Array;
  /** The crypto provider (default: the platform's fastest). */
  readonly crypto?: CryptoProvider;
}

/** `path(k)` of §7.5: segment count, then each segment's UTF-16 code units with a u16 count. */
export function encodeStoragePath(key: StorageKey): Uint8Array {
  const w = new ByteWriter(1 + key.length * 8).u8(key.length);
  for (const segment of key) {
    w.u16(segment.length);
    for (let i = 0; i < segment.length; i++) w.u16(segment.charCodeAt(i));
  }
  return w.finish();
}

function associatedData(key: StorageKey): Uint8Array {
  const path = encodeStoragePath(key);
  const ad = new Uint8Array(LABEL.length + path.length);
  ad.set(LABEL);
  ad.set(path, LABEL.length);
  return ad;
}

const isCheckKey = (key: StorageKey): boolean => key.length === 1 && key[0] === AT_REST_CHECK_KEY[0];

/**
 * Wraps `storage` so that every value is sealed at rest (docs/protocol.md §7.5). The
 * result is a full storage adapter (it passes the storage conformance suite), with values
 * up to `STORAGE_LIMITS.maxValueBytes - SEAL_OVERHEAD` bytes. Closing it closes `storage`.
 *
 * The first operation checks the key against the store's key-check entry: a wrong key
 * rejects with `StorageError` `STORAGE_ENCRYPTION` (`wrong-key`), a store that already
 * holds plaintext state with `store-not-encrypted`; nothing is read or written then.
 *
 * @example
 * ```ts
 * import { createEncryptedStorage } from '@deadbolt/core';
 * import { createSqliteStorage } from '@deadbolt/storage-sqlite';
 *
 * const key = await keystore.load('deadbolt'); // 32 bytes the app keeps outside the store
 * const storage = createEncryptedStorage(createSqliteStorage({ path: 'alice.db' }), { key });
 * ```
 */
export function createEncryptedStorage(storage: StorageAdapter, options: EncryptedStorageOptions): StorageAdapter {
  if (!(options?.key instanceof Uint8Array) || options.key.length !== 32) {
    throw new UsageError('INVALID_ARGUMENT', { message: 'key must be 32 bytes', details: { field: 'key', expected: '32 bytes' } });
  }
  // The wrapper reports the current contract version, so it must not wrap an older adapter.
  checkedStorage(storage);
  const secret = options.key.slice();
  const crypto = options.crypto ?? createDefaultCryptoProvider();
  const maxValue = STORAGE_LIMITS.maxValueBytes - SEAL_OVERHEAD;
  let closed = false;

  const keys = (salt: Uint8Array): { key: Uint8Array; nonce: Uint8Array } => {
    const okm = crypto.hkdfSha256(secret, salt, LABEL, 44);
    return { key: okm.subarray(0, 32), nonce: okm.subarray(32, 44) };
  };
  const seal = (key: StorageKey, value: Uint8Array): Uint8Array => {
    const salt = crypto.randomBytes(SALT_BYTES);
    const k = keys(salt);
    const body = crypto.chacha20Poly1305Seal(k.key, k.nonce, value, associatedData(key));
    const out = new Uint8Array(1 + SALT_BYTES + body.length);
    out[0] = SEALED_VERSION;
    out.set(salt, 1);
    out.set(body, 1 + SALT_BYTES);
    return out;
  };
  /** The value, or `undefined` if it does not open (the caller decides what that means). */
  const open = (key: StorageKey, sealed: Uint8Array): Uint8Array | undefined => {
    if (sealed.length < SEAL_OVERHEAD || sealed[0] !== SEALED_VERSION) return undefined;
    const k = keys(sealed.subarray(1, 1 + SALT_BYTES));
    try {
      return crypto.chacha20Poly1305Open(k.key, k.nonce, sealed.subarray(1 + SALT_BYTES), associatedData(key));
    } catch {
      return undefined;
    }
  };
  const corrupted = (key: StorageKey): StorageError<'CORRUPTED_RECORD'> =>
    // The path names the record, never its content; the reason says nothing about keys.
    new StorageError('CORRUPTED_RECORD', { message: 'a stored value failed authentication', details: { key: JSON.stringify(key), reason: 'sealed value does not open' } });
  const openOrThrow = (key: StorageKey, sealed: Uint8Array): Uint8Array => {
    const value = open(key, sealed);
    if (value === undefined) throw corrupted(key);
    return value;
  };

  let checked: Promise<void> | undefined;
  /** The key check of §7.5, once; a failed check is retried on the next call (it may have been the backend). */
  const ready = (): Promise<void> => {
    checked ??= (async () => {
      const check = await storage.get(AT_REST_CHECK_KEY);
      if (check === undefined) {
        if ((await storage.get(['identity'])) !== undefined) {
          throw new StorageError('STORAGE_ENCRYPTION', { message: 'this store holds unencrypted state', details: { reason: 'store-not-encrypted' } });
        }
        await storage.batch([{ type: 'put', key: AT_REST_CHECK_KEY, value: seal(AT_REST_CHECK_KEY, CHECK_PLAINTEXT) }]);
        return;
      }
      const opened = open(AT_REST_CHECK_KEY, check);
      if (opened === undefined || !equalBytes(opened, CHECK_PLAINTEXT)) {
        throw new StorageError('STORAGE_ENCRYPTION', { message: 'the key does not open this store', details: { reason: 'wrong-key' } });
      }
    })();
    checked.catch(() => {
      checked = undefined;
    });
    return checked;
  };
  const ensureOpen = (): void => {
    if (closed) throw new UsageError('CLOSED', { message: 'storage is closed', details: { what: 'storage' } });
  };
  const reserved = (field: string): UsageError<'INVALID_ARGUMENT'> =>
    new UsageError('INVALID_ARGUMENT', { message: `${field}: ["at-rest"] is reserved by encryption at rest`, details: { field, expected: 'a key other than ["at-rest"]' } });

  const adapter: StorageAdapter = {
    specificationVersion: STORAGE_SPECIFICATION_VERSION,

    async get(key: StorageKey): Promise<Uint8Array | undefined> {
      ensureOpen();
      assertStorageKey(key);
      const k = [...key];
      await ready();
      if (isCheckKey(k)) return undefined; // hidden (§7.5)
      const sealed = await storage.get(k);
      return sealed === undefined ? undefined : openOrThrow(k, sealed);
    },

    async range(prefix: StorageKey, rangeOptions?: RangeOptions): Promise<StorageEntry[]> {
      ensureOpen();
      assertStorageKey(prefix, 'prefix');
      await ready();
      const window = readRangeOptions(rangeOptions); // checked and copied once, here
      const hidesCheck = prefix.length === 1 && prefix[0] === AT_REST_CHECK_KEY[0];
      // One more than asked when the check entry may be among the results, which it hides.
      const limit = window.limit === Infinity ? undefined : hidesCheck ? window.limit + 1 : window.limit;
      const inner = await storage.range(prefix, {
        reverse: window.reverse,
        ...(window.after !== undefined ? { after: window.after } : {}),
        ...(window.before !== undefined ? { before: window.before } : {}),
        ...(limit !== undefined ? { limit } : {}),
      });
      const out: StorageEntry[] = [];
      for (const entry of inner) {
        if (isCheckKey(entry.key)) continue;
        if (out.length >= window.limit) break;
        out.push({ key: entry.key, value: openOrThrow(entry.key, entry.value) });
      }
      return out;
    },

    async batch(ops: readonly StorageOp[]): Promise<void> {
      ensureOpen();
      assertStorageBatch(ops);
      const sealed: StorageOp[] = [];
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i] as StorageOp;
        const key = [...op.key];
        if (isCheckKey(key)) throw reserved(`ops[${i}].key`);
        if (op.type === 'delete') {
          sealed.push({ type: 'delete', key });
          continue;
        }
        if (op.value.byteLength > maxValue) {
          throw new UsageError('INVALID_ARGUMENT', { message: `ops[${i}].value: at most ${maxValue} bytes`, details: { field: `ops[${i}].value`, expected: `at most ${maxValue} bytes` } });
        }
        sealed.push({ type: 'put', key, value: op.value });
      }
      await ready();
      // Sealed after the key check: nothing is written under a key that was not checked.
      await storage.batch(sealed.map((op) => (op.type === 'put' ? { type: 'put', key: op.key, value: seal(op.key, op.value) } : op)));
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      secret.fill(0);
      await storage.close();
    },
  };
  const exclusive = storage.exclusive?.bind(storage);
  if (exclusive !== undefined) {
    adapter.exclusive = async <T>(fn: () => Promise<T>): Promise<T> => {
      ensureOpen();
      return exclusive(fn);
    };
  }
  return adapter;
}
