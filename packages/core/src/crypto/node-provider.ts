/**
 * The node:crypto crypto provider: OpenSSL through Node's synchronous API, the fastest on
 * Node for everything OpenSSL has (TOOLCHAIN.md: 10-30 times noble for X25519 and
 * Ed25519, 2-3 times for HMAC and the AEADs). ML-KEM-768 comes from @noble/post-quantum.
 *
 * Raw 32-byte keys become OpenSSL `KeyObject`s on every call (nothing secret is cached);
 * see "raw keys <-> KeyObjects" below for how, and why not through DER.
 *
 * Node returns `Buffer`s, which may be views into a shared 8 KiB pool; every result is
 * returned as a plain, compact `Uint8Array` (STYLE.md, "Bytes and encodings").
 *
 * @module
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hash,
  randomFillSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import {
  InternalError,
  type Ed25519PublicKey,
  type Ed25519SecretKey,
  type KeyPair,
  type X25519PublicKey,
  type X25519SecretKey,
} from '@deadbolt/spec';
import {
  assertAeadArguments,
  assertBytes,
  assertEd25519VerifyArguments,
  assertHkdfArguments,
  assertRandomLength,
  assertX25519PublicKey,
  assertX25519SharedSecret,
  decryptFailed,
  equalBytes,
  ed25519SignatureShapeOk,
  invalidKey,
  resolveRandomSource,
  wipe,
} from './checks.js';
import { createMlKem768Methods } from './noble-methods.js';
import { SIZES, type CryptoProvider, type CryptoProviderOptions } from './provider.js';

// --- raw keys <-> KeyObjects -----------------------------------------------------------------------
//
// Measured on Node 20.20.2 / OpenSSL 3.0 (one core): importing a raw private key wrapped in
// its fixed PKCS #8 DER prefix runs about 2,700 times a second, because OpenSSL 3's generic
// DER decoder (OSSL_DECODER) dominates. That would make X25519 and Ed25519 signing barely
// faster than @noble. Node's JWK import of an OKP key skips the decoder and calls OpenSSL's
// EVP_PKEY_new_raw_private_key / _public_key directly: about 26,000 private and 146,000
// public imports a second. So keys go in as JWKs, and the DER encoding (RFC 8410) stays as
// the fallback should a Node release ever refuse the JWK form.
//
// Node reads only `d` from a private OKP JWK (the raw private key); RFC 8037 also requires
// `x`, which Node checks only to be a string, so it is left empty rather than computed
// (computing it needs this very import). The base64url string of the private key is an
// immutable JS string that cannot be wiped; neither can OpenSSL's decoder copies on the DER
// path. Only X25519 private keys are kept imported, tied to their array (see keyObjects).

type OkpCurve = 'X25519' | 'Ed25519';

/** Bounds of the Ed25519 key-object caches (see `ed25519PrivateKeyObject`). */
const ED25519_PRIVATE_CACHE = 64;
const ED25519_PUBLIC_CACHE = 1024;
/**
 * Bound of the X25519 public key-object cache. A Double Ratchet step agrees twice with the
 * peer's new ratchet key, back to back (docs/protocol.md §6.5), and PQXDH agrees twice with
 * the same identity and prekeys (§5.3): a handful of recent keys is all that is reused.
 */
const X25519_PUBLIC_CACHE = 64;

/** PKCS #8 `PrivateKeyInfo` prefixes (RFC 8410 §7) for id-X25519 (1.3.101.110) and id-Ed25519 (1.3.101.112). */
const PKCS8_PREFIX: Readonly<Record<OkpCurve, Uint8Array>> = {
  X25519: Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20),
  Ed25519: Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20),
};
/** SubjectPublicKeyInfo prefixes (RFC 8410 §4): SEQUENCE { AlgorithmIdentifier, BIT STRING (0 unused bits) }. */
const SPKI_PREFIX: Readonly<Record<OkpCurve, Uint8Array>> = {
  X25519: Uint8Array.of(0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00),
  Ed25519: Uint8Array.of(0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00),
};

/** Prefix || raw key in a fresh (never pooled) Buffer. */
function der(prefix: Uint8Array, raw: Uint8Array): Buffer {
  const out = Buffer.alloc(prefix.length + raw.length);
  out.set(prefix);
  out.set(raw, prefix.length);
  return out;
}

function base64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** A private `KeyObject` for a raw 32-byte X25519 or Ed25519 private key (see above). */
function privateKeyObject(curve: OkpCurve, secretKey: Uint8Array): KeyObject {
  try {
    return createPrivateKey({ key: { kty: 'OKP', crv: curve, d: base64Url(secretKey), x: '' }, format: 'jwk' });
  } catch {
    const encoded = der(PKCS8_PREFIX[curve], secretKey);
    try {
      return createPrivateKey({ key: encoded, format: 'der', type: 'pkcs8' });
    } finally {
      wipe(encoded);
    }
  }
}

/** A public `KeyObject` for a raw 32-byte public key. OpenSSL does not validate the point here. */
function publicKeyObject(curve: OkpCurve, publicKey: Uint8Array): KeyObject {
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: curve, x: base64Url(publicKey) }, format: 'jwk' });
  } catch {
    return createPublicKey({ key: der(SPKI_PREFIX[curve], publicKey), format: 'der', type: 'spki' });
  }
}

/** The raw 32-byte public key of a private `KeyObject` (its JWK `x`, RFC 8037 §2). */
function rawPublicKey(privateKey: KeyObject): Uint8Array {
  const { x } = createPublicKey(privateKey).export({ format: 'jwk' });
  const raw = typeof x === 'string' ? Buffer.from(x, 'base64url') : Buffer.alloc(0);
  if (raw.length !== 32) throw new InternalError('node:crypto exported a public key that is not 32 bytes');
  return plain(raw);
}

// --- Buffers -> plain Uint8Arrays -------------------------------------------------------------------

/**
 * A plain, compact `Uint8Array` with the bytes of `buf`. A Buffer that owns its whole
 * ArrayBuffer (most results: digests, signatures, shared secrets) is re-viewed without a
 * copy; a view into Node's pool is copied out of it.
 */
function plain(buf: Uint8Array): Uint8Array {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength && buf.buffer instanceof ArrayBuffer) {
    return new Uint8Array(buf.buffer);
  }
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength).slice();
}

/** Node's CSPRNG (OpenSSL's `RAND_bytes`), into a fresh array that is never pooled. */
function nodeRandomBytes(length: number): Uint8Array {
  return randomFillSync(new Uint8Array(length));
}

// --- AEADs ------------------------------------------------------------------------------------------

type AeadAlgorithm = 'chacha20-poly1305' | 'aes-256-gcm';

function aeadSeal(algorithm: AeadAlgorithm, key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  assertAeadArguments(key, nonce, plaintext, 'plaintext', aad);
  // Node's typings have one overload per AEAD family; both expose the same calls used here.
  const cipher = createCipheriv(algorithm as 'chacha20-poly1305', key, nonce, { authTagLength: SIZES.aeadTag });
  cipher.setAAD(aad, { plaintextLength: plaintext.length });
  const body = cipher.update(plaintext);
  const rest = cipher.final(); // empty for both stream modes; kept for correctness
  const out = new Uint8Array(body.length + rest.length + SIZES.aeadTag);
  out.set(body);
  out.set(rest, body.length);
  out.set(cipher.getAuthTag(), body.length + rest.length);
  return out;
}

function aeadOpen(algorithm: AeadAlgorithm, key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Uint8Array {
  assertAeadArguments(key, nonce, ciphertext, 'ciphertext', aad);
  // Anything shorter than a tag cannot verify: the same error as a bad tag (SECURITY.md A3).
  if (ciphertext.length < SIZES.aeadTag) throw decryptFailed();
  const bodyLength = ciphertext.length - SIZES.aeadTag;
  const decipher = createDecipheriv(algorithm as 'chacha20-poly1305', key, nonce, { authTagLength: SIZES.aeadTag });
  decipher.setAuthTag(ciphertext.subarray(bodyLength));
  decipher.setAAD(aad, { plaintextLength: bodyLength });
  const body = decipher.update(ciphertext.subarray(0, bodyLength));
  try {
    // OpenSSL compares the tag in constant time here; unverified plaintext never leaves.
    decipher.final();
  } catch {
    wipe(body);
    throw decryptFailed();
  }
  return plain(body);
}

// --- HKDF -------------------------------------------------------------------------------------------

/**
 * HKDF-SHA256 (RFC 5869) over `createHmac`. Not `hkdfSync`: that refuses an `info` longer
 * than 1024 bytes (an OpenSSL limit the contract does not have), and for the short outputs
 * Deadbolt derives it measured slower than two or three HMAC calls.
 */
function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  assertHkdfArguments(ikm, salt, info, length);
  // §2.2 Extract: PRK = HMAC-Hash(salt, IKM). An empty salt equals HashLen zero bytes under
  // HMAC's zero padding of the key, so it needs no special case.
  const prk = createHmac('sha256', salt).update(ikm).digest();
  // §2.3 Expand: T(i) = HMAC-Hash(PRK, T(i-1) || info || i), OKM = first L bytes of T(1) || T(2) || ...
  const out = new Uint8Array(length);
  const counter = new Uint8Array(1);
  let previous: Buffer | undefined;
  for (let i = 1, offset = 0; offset < length; i++, offset += SIZES.sha256) {
    const mac = createHmac('sha256', prk);
    if (previous !== undefined) mac.update(previous);
    mac.update(info);
    counter[0] = i;
    mac.update(counter);
    const block = mac.digest();
    out.set(block.subarray(0, Math.min(SIZES.sha256, length - offset)), offset);
    if (previous !== undefined) wipe(previous);
    previous = block;
  }
  wipe(prk);
  if (previous !== undefined) wipe(previous);
  return out;
}

// --- the provider -----------------------------------------------------------------------------------

/**
 * Creates the node:crypto crypto provider. Requires Node >= 20.19 (OpenSSL 3 with X25519,
 * Ed25519 and ChaCha20-Poly1305; `crypto.hash`).
 *
 * @param options - `unsafeRandomSource` for deterministic tests only (SECURITY.md A6).
 * @example
 * ```ts
 * import { createNodeCryptoProvider } from '@deadbolt/core';
 *
 * const crypto = createNodeCryptoProvider();
 * const key = crypto.randomBytes(32);
 * const nonce = crypto.randomBytes(12);
 * const sealed = crypto.chacha20Poly1305Seal(key, nonce, plaintext, aad);
 * crypto.chacha20Poly1305Open(key, nonce, sealed, aad); // plaintext
 * ```
 */
export function createNodeCryptoProvider(options?: CryptoProviderOptions): CryptoProvider {
  const random = resolveRandomSource(options, nodeRandomBytes);

  const x25519PublicKey = (secretKey: Uint8Array): X25519PublicKey => {
    assertBytes(secretKey, 'secretKey', SIZES.x25519Key);
    // RFC 7748 §6.1: X25519(a, 9); OpenSSL clamps internally.
    return rawPublicKey(privateKeyObject('X25519', secretKey)) as X25519PublicKey;
  };

  const ed25519PublicKey = (secretKey: Uint8Array): Ed25519PublicKey => {
    assertBytes(secretKey, 'secretKey', SIZES.ed25519SecretKey);
    // RFC 8032 §5.1.5.
    return rawPublicKey(privateKeyObject('Ed25519', secretKey)) as Ed25519PublicKey;
  };

  /**
   * Imported X25519 private keys, keyed by the very `Uint8Array` holding the secret.
   * Importing costs as much as an agreement, and a Double Ratchet step uses each new key
   * twice (docs/protocol.md §6.5). Entries live only as long as the array they belong to
   * (a WeakMap: when the ratchet state drops a key, its entry goes too), and each hit is
   * checked against a copy of the bytes, so a mutated or wiped array is imported afresh.
   */
  const keyObjects = new WeakMap<Uint8Array, { readonly bytes: Uint8Array; readonly key: KeyObject }>();
  const remember = (secretKey: Uint8Array, key: KeyObject): void => {
    keyObjects.set(secretKey, { bytes: secretKey.slice(), key });
  };
  /**
   * Imported Ed25519 keys. A private import costs about as much as a signature (above),
   * and the same keys sign again and again (a device signing key, a group sender's chain
   * signing key, which is read from storage into a fresh array for every message), so
   * private keys are looked up by content, not by array: under an HMAC of the key with a
   * per-provider random key, so the secret itself is never a map key. Public keys (a
   * contact's account key, a group sender's signature key) are looked up by their bytes.
   * Both maps are bounded; the least recently used entry goes first.
   */
  const cacheSalt = nodeRandomBytes(32);
  const edPrivate = new Map<string, KeyObject>();
  const edPublic = new Map<string, KeyObject>();
  const xPublic = new Map<string, KeyObject>();
  const lru = (map: Map<string, KeyObject>, id: string, max: number, make: () => KeyObject): KeyObject => {
    const hit = map.get(id);
    if (hit !== undefined) {
      map.delete(id);
      map.set(id, hit);
      return hit;
    }
    const key = make();
    map.set(id, key);
    if (map.size > max) map.delete(map.keys().next().value as string);
    return key;
  };
  const ed25519PrivateKeyObject = (secretKey: Uint8Array): KeyObject =>
    lru(edPrivate, createHmac('sha256', cacheSalt).update(secretKey).digest('base64'), ED25519_PRIVATE_CACHE, () => privateKeyObject('Ed25519', secretKey));
  const ed25519PublicKeyObject = (publicKey: Uint8Array): KeyObject =>
    lru(edPublic, Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('base64'), ED25519_PUBLIC_CACHE, () => publicKeyObject('Ed25519', publicKey));
  /** Public X25519 keys by their bytes (public data): importing one costs about a seventh of an agreement. */
  const x25519PublicKeyObject = (publicKey: Uint8Array): KeyObject =>
    lru(xPublic, Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('base64'), X25519_PUBLIC_CACHE, () => publicKeyObject('X25519', publicKey));

  const x25519KeyObject = (secretKey: Uint8Array): KeyObject => {
    const hit = keyObjects.get(secretKey);
    if (hit && equalBytes(hit.bytes, secretKey)) return hit.key;
    const key = privateKeyObject('X25519', secretKey);
    remember(secretKey, key);
    return key;
  };

  return {
    name: 'node',

    randomBytes(length: number): Uint8Array {
      assertRandomLength(length);
      return random(length);
    },

    async x25519GenerateKeyPair(): Promise<KeyPair<X25519PublicKey, X25519SecretKey>> {
      // From random bytes rather than generateKeyPairSync(), so that the injected source
      // (and so the equivalence tests) controls the key. The imported key object is kept
      // for the agreements that follow (a ratchet step uses a new key at once).
      const secretKey = random(SIZES.x25519Key) as X25519SecretKey;
      const key = privateKeyObject('X25519', secretKey);
      remember(secretKey, key);
      return { publicKey: rawPublicKey(key) as X25519PublicKey, secretKey };
    },

    async x25519PublicKey(secretKey: X25519SecretKey): Promise<X25519PublicKey> {
      return x25519PublicKey(secretKey);
    },

    async x25519(secretKey: X25519SecretKey, publicKey: X25519PublicKey): Promise<Uint8Array> {
      assertBytes(secretKey, 'secretKey', SIZES.x25519Key);
      assertBytes(publicKey, 'publicKey', SIZES.x25519Key);
      assertX25519PublicKey(publicKey);
      let shared: Uint8Array;
      try {
        // RFC 7748 §5. OpenSSL itself refuses an all-zero result (an error, caught here).
        shared = plain(
          diffieHellman({
            privateKey: x25519KeyObject(secretKey),
            publicKey: x25519PublicKeyObject(publicKey),
          }),
        );
      } catch {
        throw invalidKey('x25519 public key');
      }
      assertX25519SharedSecret(shared);
      return shared;
    },

    async ed25519GenerateKeyPair(): Promise<KeyPair<Ed25519PublicKey, Ed25519SecretKey>> {
      const secretKey = random(SIZES.ed25519SecretKey) as Ed25519SecretKey;
      return { publicKey: ed25519PublicKey(secretKey), secretKey };
    },

    async ed25519PublicKey(secretKey: Ed25519SecretKey): Promise<Ed25519PublicKey> {
      return ed25519PublicKey(secretKey);
    },

    async ed25519Sign(secretKey: Ed25519SecretKey, message: Uint8Array): Promise<Uint8Array> {
      assertBytes(secretKey, 'secretKey', SIZES.ed25519SecretKey);
      assertBytes(message, 'message');
      // RFC 8032 §5.1.6 (pure Ed25519: the algorithm argument is null).
      return plain(sign(null, message, ed25519PrivateKeyObject(secretKey)));
    },

    async ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
      assertEd25519VerifyArguments(publicKey, message, signature);
      // Deadbolt's strict rules first (checks.ts), then OpenSSL's cofactorless equation.
      if (!ed25519SignatureShapeOk(publicKey, signature)) return false;
      try {
        return verify(null, message, ed25519PublicKeyObject(publicKey), signature);
      } catch {
        return false; // a public key that does not decode to a curve point
      }
    },

    sha256(data: Uint8Array): Uint8Array {
      assertBytes(data, 'data');
      return plain(hash('sha256', data, 'buffer'));
    },

    sha512(data: Uint8Array): Uint8Array {
      assertBytes(data, 'data');
      return plain(hash('sha512', data, 'buffer'));
    },

    hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
      // RFC 2104: any key length; keys longer than the block are hashed first.
      assertBytes(key, 'key');
      assertBytes(data, 'data');
      return plain(createHmac('sha256', key).update(data).digest());
    },

    hkdfSha256,

    chacha20Poly1305Seal: (key, nonce, plaintext, aad) => aeadSeal('chacha20-poly1305', key, nonce, plaintext, aad),
    chacha20Poly1305Open: (key, nonce, ciphertext, aad) => aeadOpen('chacha20-poly1305', key, nonce, ciphertext, aad),
    aes256GcmSeal: (key, nonce, plaintext, aad) => aeadSeal('aes-256-gcm', key, nonce, plaintext, aad),
    aes256GcmOpen: (key, nonce, ciphertext, aad) => aeadOpen('aes-256-gcm', key, nonce, ciphertext, aad),

    ...createMlKem768Methods(random),
  };
}
