/**
 * Message keys and key-committing encryption (docs/protocol.md §6.3).
 *
 * A message key `MK` (from a symmetric ratchet) is expanded with HKDF into a ChaCha20
 * key, a nonce and a 32-byte **key commitment**:
 *
 * ```
 * key[32] | nonce[12] | commitment[32] = HKDF-SHA256(ikm = MK, salt = 0^32, info = label, L = 76)
 * body = commitment | ChaCha20-Poly1305(key, nonce, padded plaintext, AD)
 * ```
 *
 * Poly1305 alone is not committing: a ciphertext can be built that decrypts validly under
 * two keys (the "invisible salamanders" attack on AES-GCM franking; Dodis et al., CRYPTO
 * 2018; Albertini et al., USENIX Security 2022). The receiver checks the commitment in
 * constant time before decrypting, so a body opens under one message key only, unless
 * HKDF collides (SECURITY.md A5). The `label` separates purposes (pairwise, group,
 * storage, attachment, franking): keys derived for one never open another's messages
 * (SECURITY.md A4). Each MK is used for exactly one message, so the derived nonce never
 * repeats under one key.
 *
 * @module
 */
import { concatBytes, utf8 } from '../codec/bytes.js';
import { decryptFailed, equalBytes } from '../crypto/checks.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { Len } from './constants.js';

/** The keys one message is encrypted with. */
export interface MessageKeys {
  readonly key: Uint8Array;
  readonly nonce: Uint8Array;
  readonly commitment: Uint8Array;
}

const ZERO_SALT = new Uint8Array(32);
const infoCache = new Map<string, Uint8Array>();

function info(label: string): Uint8Array {
  let bytes = infoCache.get(label);
  if (!bytes) infoCache.set(label, (bytes = utf8(label)));
  return bytes;
}

/** Expands a message key for the purpose named by `label` (a `Label` constant). */
export function deriveMessageKeys(crypto: CryptoProvider, mk: Uint8Array, label: string): MessageKeys {
  const okm = crypto.hkdfSha256(mk, ZERO_SALT, info(label), Len.key + Len.aeadNonce + Len.commitment);
  return {
    key: okm.subarray(0, 32),
    nonce: okm.subarray(32, 44),
    commitment: okm.subarray(44, 76),
  };
}

/** Encrypts: `commitment | ciphertext | tag`. */
export function sealCommitted(crypto: CryptoProvider, keys: MessageKeys, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  return concatBytes(keys.commitment, crypto.chacha20Poly1305Seal(keys.key, keys.nonce, plaintext, ad));
}

/**
 * Decrypts a body. Checks the commitment first (constant time), then the tag. Every
 * failure is the same `ProtocolError` `DECRYPT_FAILED`, with no detail (SECURITY.md E36).
 */
export function openCommitted(crypto: CryptoProvider, keys: MessageKeys, body: Uint8Array, ad: Uint8Array): Uint8Array {
  if (body.length < Len.commitment + Len.aeadTag || !equalBytes(body.subarray(0, Len.commitment), keys.commitment)) {
    throw decryptFailed();
  }
  return crypto.chacha20Poly1305Open(keys.key, keys.nonce, body.subarray(Len.commitment), ad);
}
