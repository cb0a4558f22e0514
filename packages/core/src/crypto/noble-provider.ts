/**
 * The @noble/* crypto provider: pure JavaScript, audited, runs everywhere. It is the
 * portable reference the other two providers are tested against, and the default where
 * neither node:crypto nor WebCrypto's X25519/Ed25519 is available.
 *
 * This module also holds the parts the other providers borrow from noble: ML-KEM-768 (no
 * platform ships it on Node 20 or in browsers yet) and, for the web provider, the hashes,
 * MAC, KDF and AEADs (WebCrypto has no ChaCha20-Poly1305, and its symmetric calls are
 * asynchronous). Bundlers drop what a provider does not use (`"sideEffects": false`).
 *
 * @module
 */
import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE } from '@noble/curves/utils.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import type {
  Ed25519PublicKey,
  Ed25519SecretKey,
  KeyPair,
  MlKemPublicKey,
  MlKemSecretKey,
  X25519PublicKey,
  X25519SecretKey,
} from '@deadbolt/spec';
import {
  assertAeadArguments,
  assertBytes,
  assertEd25519VerifyArguments,
  assertHkdfArguments,
  assertMlKemPublicKeyLength,
  assertRandomLength,
  assertX25519PublicKey,
  assertX25519SharedSecret,
  decryptFailed,
  ed25519SignatureShapeOk,
  invalidArgument,
  invalidKey,
  resolveRandomSource,
  webRandomBytes,
  wipe,
} from './checks.js';
import { SIZES, type CryptoProvider, type CryptoProviderOptions, type RandomSource } from './provider.js';

/** The synchronous methods every provider shares the contract of. */
export type SymmetricMethods = Pick<
  CryptoProvider,
  | 'sha256'
  | 'sha512'
  | 'hmacSha256'
  | 'hkdfSha256'
  | 'chacha20Poly1305Seal'
  | 'chacha20Poly1305Open'
  | 'aes256GcmSeal'
  | 'aes256GcmOpen'
>;

/** The ML-KEM-768 methods of a provider. */
export type MlKemMethods = Pick<CryptoProvider, 'mlkem768GenerateKeyPair' | 'mlkem768Encapsulate' | 'mlkem768Decapsulate'>;

// --- ML-KEM-768 (shared by all providers) ---------------------------------------------------------

/**
 * ML-KEM-768 (FIPS 203) from @noble/post-quantum, drawing its randomness from `random`.
 * Used by every provider, so all three give identical results for the same random source.
 *
 * @internal Not exported from the package: use a provider.
 * @example
 * ```ts
 * const kem = createMlKem768Methods(webRandomBytes);
 * const { publicKey, secretKey } = kem.mlkem768GenerateKeyPair();
 * ```
 */
export function createMlKem768Methods(random: RandomSource): MlKemMethods {
  return {
    mlkem768GenerateKeyPair(): KeyPair<MlKemPublicKey, MlKemSecretKey> {
      // FIPS 203 §7.1 ML-KEM.KeyGen: d || z, 32 bytes each, from the RBG.
      const seed = random(SIZES.mlkem768KeygenSeed);
      try {
        const { publicKey, secretKey } = ml_kem768.keygen(seed);
        return { publicKey: publicKey as MlKemPublicKey, secretKey: secretKey as MlKemSecretKey };
      } finally {
        wipe(seed);
      }
    },

    mlkem768Encapsulate(publicKey: Uint8Array): { ciphertext: Uint8Array; sharedSecret: Uint8Array } {
      // FIPS 203 §7.2 input checking: the type check (length) here, the modulus check below.
      assertMlKemPublicKeyLength(publicKey);
      // noble re-checks the modulus itself, but with a plain Error; check first to give the
      // typed error and to draw randomness only for a usable key.
      if (!mlkemModulusOk(publicKey)) throw invalidKey('ml-kem-768 public key');
      // FIPS 203 §7.2 ML-KEM.Encaps: m, 32 bytes from the RBG.
      const m = random(SIZES.mlkem768EncapsulationRandomness);
      let result: { cipherText: Uint8Array; sharedSecret: Uint8Array };
      try {
        result = ml_kem768.encapsulate(publicKey, m);
      } catch {
        // Lengths and modulus were checked above; this is noble's own (identical) check.
        throw invalidKey('ml-kem-768 public key');
      } finally {
        wipe(m);
      }
      // sharedSecret is a view of a 64-byte buffer (K || r): return a compact copy, wipe the view.
      const sharedSecret = result.sharedSecret.slice();
      wipe(result.sharedSecret);
      return { ciphertext: result.cipherText, sharedSecret };
    },

    mlkem768Decapsulate(secretKey: MlKemSecretKey, ciphertext: Uint8Array): Uint8Array {
      // FIPS 203 §7.3 input checking: ciphertext and decapsulation-key type checks ...
      assertBytes(secretKey, 'secretKey', SIZES.mlkem768SecretKey);
      assertBytes(ciphertext, 'ciphertext', SIZES.mlkem768Ciphertext);
      let key: Uint8Array;
      try {
        // ... and the hash check H(ek) == h, done inside noble. A bad ciphertext does not
        // throw: implicit rejection returns a pseudorandom secret (FIPS 203 §6.3, Algorithm 18).
        key = ml_kem768.decapsulate(ciphertext, secretKey);
      } catch {
        // Only the hash check can fail here: the key is not one ML-KEM.KeyGen produced.
        throw invalidArgument('secretKey', 'an ML-KEM-768 decapsulation key passing the FIPS 203 §7.3 hash check');
      }
      // K may be a view of a 64-byte buffer (K || r): return a compact copy, wipe the view.
      const out = key.slice();
      wipe(key);
      return out;
    },
  };
}

/** 12-bit coefficients of the encapsulation key's t̂ part (384·k bytes for k = 3). */
const MLKEM768_T_BYTES = 384 * 3;
const MLKEM_Q = 3329;

/**
 * FIPS 203 §7.2 modulus check: every 12-bit coefficient packed in ek[0 : 384k] is below q, so
 * that ByteEncode12(ByteDecode12(ek)) = ek. Public data: no constant-time requirement.
 */
function mlkemModulusOk(publicKey: Uint8Array): boolean {
  for (let i = 0; i < MLKEM768_T_BYTES; i += 3) {
    const b0 = publicKey[i]!;
    const b1 = publicKey[i + 1]!;
    const b2 = publicKey[i + 2]!;
    if ((b0 | ((b1 & 0x0f) << 8)) >= MLKEM_Q || ((b1 >> 4) | (b2 << 4)) >= MLKEM_Q) return false;
  }
  return true;
}

// --- hashes, MAC, KDF, AEADs (shared by the noble and web providers) -----------------------------

/**
 * SHA-2, HMAC, HKDF and the two AEADs from @noble/hashes and @noble/ciphers, with Deadbolt's
 * checks. Shared by the noble and web providers.
 *
 * @internal Not exported from the package: use a provider.
 * @example
 * ```ts
 * const sym = createNobleSymmetricMethods();
 * const tag = sym.hmacSha256(key, data);
 * ```
 */
export function createNobleSymmetricMethods(): SymmetricMethods {
  return {
    sha256(data: Uint8Array): Uint8Array {
      assertBytes(data, 'data');
      return sha256(data);
    },

    sha512(data: Uint8Array): Uint8Array {
      assertBytes(data, 'data');
      return sha512(data);
    },

    hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
      // RFC 2104: any key length; keys longer than the block are hashed first.
      assertBytes(key, 'key');
      assertBytes(data, 'data');
      return hmac(sha256, key, data);
    },

    hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
      assertHkdfArguments(ikm, salt, info, length);
      // RFC 5869 §2.2: an empty salt is HashLen zero bytes; HMAC pads an empty key with zeros
      // to the block size, so passing the empty salt through gives the same PRK.
      return hkdf(sha256, ikm, salt, info, length);
    },

    chacha20Poly1305Seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
      assertAeadArguments(key, nonce, plaintext, 'plaintext', aad);
      // RFC 8439 §2.8: ciphertext || 16-byte tag.
      return chacha20poly1305(key, nonce, aad).encrypt(plaintext);
    },

    chacha20Poly1305Open(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Uint8Array {
      assertAeadArguments(key, nonce, ciphertext, 'ciphertext', aad);
      if (ciphertext.length < SIZES.aeadTag) throw decryptFailed();
      try {
        return chacha20poly1305(key, nonce, aad).decrypt(ciphertext);
      } catch {
        throw decryptFailed();
      }
    },

    aes256GcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
      // NIST SP 800-38D: only 256-bit keys and 96-bit IVs (§8.2.1 deterministic construction).
      assertAeadArguments(key, nonce, plaintext, 'plaintext', aad);
      return gcm(key, nonce, aad).encrypt(plaintext);
    },

    aes256GcmOpen(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Uint8Array {
      assertAeadArguments(key, nonce, ciphertext, 'ciphertext', aad);
      if (ciphertext.length < SIZES.aeadTag) throw decryptFailed();
      try {
        return gcm(key, nonce, aad).decrypt(ciphertext);
      } catch {
        throw decryptFailed();
      }
    },
  };
}

// --- the provider -------------------------------------------------------------------------------

const Point = ed25519.Point;

/**
 * Strict Ed25519 verification with the cofactorless equation (RFC 8032 §5.1.7, step 3 in
 * its "sufficient" form `[S]B = R + [k]A`), after {@link ed25519SignatureShapeOk}.
 *
 * noble's own `verify` checks the cofactored equation `[8][S]B = [8]R + [8][k]A`. The two
 * differ only for public keys with a torsion component, which honest key generation never
 * makes; OpenSSL and BoringSSL (so node:crypto and WebCrypto) check the cofactorless one.
 * Using it here makes all three providers accept exactly the same signatures, which
 * matters more than which of the two RFC-permitted equations is used (a signature one
 * member's device accepts must not be refused by another's).
 */
function nobleVerifyCofactorless(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  const rBytes = signature.subarray(0, 32);
  let A: InstanceType<typeof Point>;
  let R: InstanceType<typeof Point>;
  try {
    // zip215 = false: RFC 8032 §5.1.3 decoding (y < p); canonicity was already checked.
    A = Point.fromBytes(publicKey, false);
    R = Point.fromBytes(rBytes, false);
  } catch {
    return false; // not on the curve
  }
  const S = bytesToNumberLE(signature.subarray(32, 64)); // < L, checked by the shape rules
  // RFC 8032 §5.1.7 step 2: k = SHA-512(dom2(F, C) || R || A || PH(M)) mod L; dom2 is empty for Ed25519.
  const h = sha512.create().update(rBytes).update(publicKey).update(message).digest();
  const k = Point.Fn.create(bytesToNumberLE(h));
  return Point.BASE.multiplyUnsafe(S).subtract(A.multiplyUnsafe(k)).equals(R);
}

/**
 * Creates the @noble/* crypto provider. Synchronous work behind the promise-returning
 * public-key methods; about ten times slower than the platform for X25519 and Ed25519 (see
 * TOOLCHAIN.md), the same speed class for everything else.
 *
 * @param options - `unsafeRandomSource` for deterministic tests only (SECURITY.md A6).
 * @example
 * ```ts
 * import { createNobleCryptoProvider } from '@deadbolt/core';
 *
 * const crypto = createNobleCryptoProvider();
 * const { publicKey, secretKey } = await crypto.ed25519GenerateKeyPair();
 * const sig = await crypto.ed25519Sign(secretKey, message);
 * await crypto.ed25519Verify(publicKey, message, sig); // true
 * ```
 */
export function createNobleCryptoProvider(options?: CryptoProviderOptions): CryptoProvider {
  const random = resolveRandomSource(options, webRandomBytes);

  const x25519PublicKey = (secretKey: Uint8Array): X25519PublicKey => {
    assertBytes(secretKey, 'secretKey', SIZES.x25519Key);
    // RFC 7748 §6.1: X25519(a, 9); clamping happens inside.
    return x25519.getPublicKey(secretKey) as X25519PublicKey;
  };

  const ed25519PublicKey = (secretKey: Uint8Array): Ed25519PublicKey => {
    assertBytes(secretKey, 'secretKey', SIZES.ed25519SecretKey);
    // RFC 8032 §5.1.5.
    return ed25519.getPublicKey(secretKey) as Ed25519PublicKey;
  };

  return {
    name: 'noble',

    randomBytes(length: number): Uint8Array {
      assertRandomLength(length);
      return random(length);
    },

    async x25519GenerateKeyPair(): Promise<KeyPair<X25519PublicKey, X25519SecretKey>> {
      const secretKey = random(SIZES.x25519Key) as X25519SecretKey;
      return { publicKey: x25519PublicKey(secretKey), secretKey };
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
        // RFC 7748 §5; noble also refuses the all-zero result (§6.1), hence the try.
        shared = x25519.getSharedSecret(secretKey, publicKey);
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
      // RFC 8032 §5.1.6: deterministic, so every provider gives the same signature.
      return ed25519.sign(message, secretKey);
    },

    async ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
      assertEd25519VerifyArguments(publicKey, message, signature);
      if (!ed25519SignatureShapeOk(publicKey, signature)) return false;
      return nobleVerifyCofactorless(publicKey, message, signature);
    },

    ...createNobleSymmetricMethods(),
    ...createMlKem768Methods(random),
  };
}
