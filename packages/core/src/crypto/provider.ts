/**
 * The crypto provider: the one interface through which Deadbolt reaches every primitive
 * (SECURITY.md A1).
 *
 * Three implementations exist and tests prove they agree byte for byte on the same inputs
 * (`test/unit/provider-equivalence.test.ts`) and on every Wycheproof vector:
 *
 * - `createNodeCryptoProvider` — node:crypto (OpenSSL), synchronous, the fastest on Node;
 * - `createWebCryptoProvider` — WebCrypto for X25519 and Ed25519 in browsers, noble for
 *   the rest (WebCrypto has neither ChaCha20-Poly1305 nor ML-KEM, and its symmetric calls
 *   are asynchronous, which would cost more than they save for small messages);
 * - `createNobleCryptoProvider` — @noble/* only, the portable reference.
 *
 * ML-KEM-768 always comes from @noble/post-quantum: no platform ships it on Node 20.
 *
 * Public-key operations return promises (WebCrypto is asynchronous); hashing, MACs, KDFs,
 * AEADs and ML-KEM are synchronous, because they sit on the per-message hot path.
 *
 * Every input is checked at the edge: a wrong length throws a `UsageError`
 * `INVALID_ARGUMENT` naming the field and its expected length, never the bytes.
 *
 * @module
 */
import type {
  Ed25519PublicKey,
  Ed25519SecretKey,
  KeyPair,
  MlKemPublicKey,
  MlKemSecretKey,
  X25519PublicKey,
  X25519SecretKey,
} from '@deadbolt/spec';

/** A source of random bytes. Production code always uses the platform CSPRNG. */
export type RandomSource = (length: number) => Uint8Array;

/** Options accepted by every provider factory. */
export interface CryptoProviderOptions {
  /**
   * **Insecure. For deterministic test vectors only** (SECURITY.md A6). Replaces the
   * platform CSPRNG. Every key generation and encapsulation draws from `randomBytes`, so a
   * deterministic source makes every output reproducible. Each call must return a
   * `Uint8Array` of exactly the requested length (else `INVALID_ARGUMENT` on
   * `unsafeRandomSource`); its output is copied.
   */
  readonly unsafeRandomSource?: RandomSource;
}

/** Byte sizes of every primitive's inputs and outputs. */
export const SIZES = Object.freeze({
  x25519Key: 32,
  ed25519PublicKey: 32,
  ed25519SecretKey: 32,
  ed25519Signature: 64,
  sha256: 32,
  sha512: 64,
  aeadKey: 32,
  aeadNonce: 12,
  aeadTag: 16,
  mlkem768PublicKey: 1184,
  mlkem768SecretKey: 2400,
  mlkem768Ciphertext: 1088,
  mlkem768SharedSecret: 32,
  mlkem768KeygenSeed: 64,
  mlkem768EncapsulationRandomness: 32,
  /** HKDF-SHA256 can produce at most 255 * 32 bytes. */
  hkdfMaxLength: 255 * 32,
});

/**
 * The primitives Deadbolt uses. See the module documentation.
 *
 * @example
 * ```ts
 * const crypto = createNodeCryptoProvider();
 * const alice = await crypto.x25519GenerateKeyPair();
 * const bob = await crypto.x25519GenerateKeyPair();
 * const shared = await crypto.x25519(alice.secretKey, bob.publicKey);
 * ```
 */
export interface CryptoProvider {
  /** `'node'`, `'web'` or `'noble'`. */
  readonly name: string;

  /** `length` bytes (an integer from 0 to 2^30) from the CSPRNG (or the injected unsafe source). */
  randomBytes(length: number): Uint8Array;

  // --- X25519 (RFC 7748) ----------------------------------------------------------------
  /** A new key pair; the secret key is 32 random bytes (clamping happens inside `x25519`). */
  x25519GenerateKeyPair(): Promise<KeyPair<X25519PublicKey, X25519SecretKey>>;
  /** The public key of a secret key. */
  x25519PublicKey(secretKey: X25519SecretKey): Promise<X25519PublicKey>;
  /**
   * The shared secret. Throws `ProtocolError` `INVALID_KEY` when the public key is
   * non-canonical (u >= 2^255 - 19, or the unused top bit set) or of low order, and when
   * the result is all zero (SECURITY.md A2). Points on the twist are accepted (RFC 7748 §5).
   * Keys that are not 32 bytes throw `UsageError` `INVALID_ARGUMENT`.
   */
  x25519(secretKey: X25519SecretKey, publicKey: X25519PublicKey): Promise<Uint8Array>;

  // --- Ed25519 (RFC 8032, strict) -------------------------------------------------------
  /** A new key pair; the secret key is the 32-byte seed. */
  ed25519GenerateKeyPair(): Promise<KeyPair<Ed25519PublicKey, Ed25519SecretKey>>;
  /** The public key of a seed. */
  ed25519PublicKey(secretKey: Ed25519SecretKey): Promise<Ed25519PublicKey>;
  /** A 64-byte signature. */
  ed25519Sign(secretKey: Ed25519SecretKey, message: Uint8Array): Promise<Uint8Array>;
  /**
   * Strict verification: false for any signature that is not exactly 64 bytes, has
   * S >= L, or has a non-canonical R or public key encoding (SECURITY.md A2), and for a
   * public key or R that is one of the eight small-order points (as libsodium). The
   * equation is the cofactorless `[S]B = R + [k]A` of RFC 8032 §5.1.7, which OpenSSL and
   * BoringSSL (so node:crypto and WebCrypto) check; the noble provider checks the same one,
   * so all providers accept exactly the same signatures. Never throws for bad signatures or
   * keys; throws only for arguments that are not `Uint8Array`s.
   */
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;

  // --- hashes, MAC, KDF -----------------------------------------------------------------
  /** SHA-256 (FIPS 180-4). */
  sha256(data: Uint8Array): Uint8Array;
  /** SHA-512 (FIPS 180-4). */
  sha512(data: Uint8Array): Uint8Array;
  /** HMAC-SHA256 (RFC 2104), 32 bytes, never truncated. Any key length. Compare tags with `equalBytes`. */
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** HKDF-SHA256 (RFC 5869). `length` from 1 to 8160. An empty salt means 32 zero bytes. */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;

  // --- AEADs (256-bit keys, 96-bit nonces, 128-bit tags) ----------------------------------
  // A key that is not 32 bytes or a nonce that is not 12 throws `UsageError`
  // `INVALID_ARGUMENT` (checked before anything else, also when opening).
  /** ChaCha20-Poly1305 (RFC 8439): returns ciphertext || tag. */
  chacha20Poly1305Seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  /** Throws `ProtocolError` `DECRYPT_FAILED` if the tag does not verify (any input shorter than the tag included). */
  chacha20Poly1305Open(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Uint8Array;
  /** AES-256-GCM: returns ciphertext || tag. */
  aes256GcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  /** Throws `ProtocolError` `DECRYPT_FAILED` if the tag does not verify. */
  aes256GcmOpen(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Uint8Array;

  // --- ML-KEM-768 (FIPS 203) --------------------------------------------------------------
  /** A new key pair from 64 random bytes (d || z). */
  mlkem768GenerateKeyPair(): KeyPair<MlKemPublicKey, MlKemSecretKey>;
  /**
   * Encapsulates to a public key. Throws `ProtocolError` `INVALID_KEY` if the key fails
   * the FIPS 203 modulus check or has the wrong length.
   */
  mlkem768Encapsulate(publicKey: Uint8Array): { ciphertext: Uint8Array; sharedSecret: Uint8Array };
  /**
   * Decapsulates (implicit rejection: a bad ciphertext yields a pseudorandom secret). A
   * ciphertext that is not 1088 bytes, or a secret key that is not 2400 bytes or fails the
   * FIPS 203 §7.3 hash check, throws `UsageError` `INVALID_ARGUMENT`.
   */
  mlkem768Decapsulate(secretKey: MlKemSecretKey, ciphertext: Uint8Array): Uint8Array;
}
