/**
 * The @noble/* crypto provider: pure JavaScript, audited, runs everywhere. It is the
 * portable reference the other two providers are tested against, and the default where
 * neither node:crypto nor WebCrypto's X25519/Ed25519 is available.
 *
 * Its ML-KEM-768 and symmetric methods come from noble-methods.ts, which the other
 * providers share; this module adds noble's X25519 and Ed25519.
 *
 * @module
 */
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE } from '@noble/curves/utils.js';
import { sha512 } from '@noble/hashes/sha2.js';
import type {
  Ed25519PublicKey,
  Ed25519SecretKey,
  KeyPair,
  X25519PublicKey,
  X25519SecretKey,
} from '@deadbolt/spec';
import {
  assertBytes,
  assertEd25519VerifyArguments,
  assertRandomLength,
  assertX25519PublicKey,
  assertX25519SharedSecret,
  ed25519SignatureShapeOk,
  invalidKey,
  resolveRandomSource,
  webRandomBytes,
} from './checks.js';
import { createMlKem768Methods, createNobleSymmetricMethods } from './noble-methods.js';
import { SIZES, type CryptoProvider, type CryptoProviderOptions } from './provider.js';

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
