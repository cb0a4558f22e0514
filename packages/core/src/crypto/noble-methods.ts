/**
 * The @noble/* methods every provider borrows: ML-KEM-768 (no platform ships it on Node 20
 * or in browsers yet) and, for the web provider, the hashes, MAC, KDF and AEADs (WebCrypto
 * has no ChaCha20-Poly1305, and its symmetric calls are asynchronous).
 *
 * Kept apart from the noble curve provider (noble-provider.ts) so that a browser bundle,
 * whose X25519 and Ed25519 come from WebCrypto, does not carry @noble/curves' Ed25519 and
 * X25519 at all: their module-level curve set-up is not something a bundler may drop.
 *
 * @module
 */
import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import type { KeyPair, MlKemPublicKey, MlKemSecretKey } from '@deadbolt/spec';
import { assertAeadArguments, assertBytes, assertHkdfArguments, assertMlKemPublicKeyLength, decryptFailed, invalidArgument, invalidKey, wipe } from './checks.js';
import { SIZES, type CryptoProvider, type RandomSource } from './provider.js';

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
