/**
 * The WebCrypto crypto provider, for browsers: X25519 and Ed25519 through
 * `globalThis.crypto.subtle` (about ten times faster than pure JavaScript, and the
 * browser's own audited implementation, SECURITY.md A1), @noble/* for the rest.
 *
 * Why not WebCrypto for everything: it has no ChaCha20-Poly1305 and no ML-KEM, and its
 * AES-GCM, HMAC and HKDF are asynchronous, which costs more than it saves on the small
 * per-message inputs of a ratchet (TOOLCHAIN.md: WebCrypto AES-GCM is slower than noble's
 * for 1 KiB).
 *
 * This module must not import node:crypto: it is what browser bundles get through the
 * `#crypto-default` `browser` condition. It needs a WebCrypto with Ed25519 and X25519
 * (Chromium 137+, Firefox 130+, Safari 17+, Node 20+).
 *
 * @module
 */
import {
  InternalError,
  UsageError,
  type Ed25519PublicKey,
  type Ed25519SecretKey,
  type KeyPair,
  type X25519PublicKey,
  type X25519SecretKey,
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
  wipe,
} from './checks.js';
import { createMlKem768Methods, createNobleSymmetricMethods } from './noble-methods.js';
import { SIZES, type CryptoProvider, type CryptoProviderOptions } from './provider.js';

/**
 * PKCS #8 `PrivateKeyInfo` prefixes for a raw 32-byte private key (RFC 8410 §7): SEQUENCE,
 * version 0, AlgorithmIdentifier { id-X25519 (1.3.101.110) | id-Ed25519 (1.3.101.112) },
 * OCTET STRING { OCTET STRING (32 bytes) }. The raw key follows.
 */
const PKCS8_X25519 = Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20);
const PKCS8_ED25519 = Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20);

/** The DER `PrivateKeyInfo` for a raw key, in a fresh buffer the caller wipes after import. */
function pkcs8(prefix: Uint8Array, rawKey: Uint8Array): Uint8Array<ArrayBuffer> {
  const der = new Uint8Array(prefix.length + rawKey.length);
  der.set(prefix);
  der.set(rawKey, prefix.length);
  return der;
}

/**
 * `bytes` as a WebCrypto `BufferSource`. WebCrypto reads exactly the bytes a view covers;
 * only views of a `SharedArrayBuffer` (which WebCrypto refuses) are copied.
 */
function bufferSource(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : bytes.slice();
}

/** Decodes the unpadded base64url of a JWK member (RFC 7517 §2) to bytes. */
function base64UrlToBytes(text: string): Uint8Array {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/**
 * The public key of a private key, via a JWK export: WebCrypto has no direct "public key of
 * this private key" call. The export also holds `d` (the private key) as a string, which
 * cannot be wiped; only `x` is read.
 */
async function publicKeyOf(
  subtle: SubtleCrypto,
  prefix: Uint8Array, algorithm: 'X25519' | 'Ed25519', secretKey: Uint8Array): Promise<Uint8Array> {
  const der = pkcs8(prefix, secretKey);
  try {
    const usages: KeyUsage[] = algorithm === 'X25519' ? ['deriveBits'] : ['sign'];
    const key = await subtle.importKey('pkcs8', der, { name: algorithm }, true, usages);
    const jwk = await subtle.exportKey('jwk', key);
    const publicKey = typeof jwk.x === 'string' ? base64UrlToBytes(jwk.x) : new Uint8Array(0);
    if (publicKey.length !== 32) throw new InternalError(`WebCrypto ${algorithm} JWK export without a 32-byte x`);
    return publicKey;
  } finally {
    wipe(der);
  }
}

/**
 * Creates the WebCrypto crypto provider.
 *
 * @param options - `unsafeRandomSource` for deterministic tests only (SECURITY.md A6).
 * @example
 * ```ts
 * import { createWebCryptoProvider } from '@deadbolt/core';
 *
 * const crypto = createWebCryptoProvider();
 * const alice = await crypto.x25519GenerateKeyPair();
 * const bob = await crypto.x25519GenerateKeyPair();
 * const shared = await crypto.x25519(alice.secretKey, bob.publicKey);
 * ```
 */
export function createWebCryptoProvider(options?: CryptoProviderOptions): CryptoProvider {
  const random = resolveRandomSource(options, webRandomBytes);
  // Fail at creation, not at the first message: WebCrypto exists only in secure contexts.
  const s = globalThis.crypto?.subtle;
  if (s === undefined) {
    throw new UsageError('NOT_INITIALIZED', {
      message: 'WebCrypto (crypto.subtle) is unavailable: it needs a secure context (https or localhost)',
      details: { what: 'crypto.subtle' },
    });
  }

  const x25519PublicKey = async (secretKey: Uint8Array): Promise<X25519PublicKey> => {
    assertBytes(secretKey, 'secretKey', SIZES.x25519Key);
    // RFC 7748 §6.1: X25519(a, 9).
    return (await publicKeyOf(s, PKCS8_X25519, 'X25519', secretKey)) as X25519PublicKey;
  };

  const ed25519PublicKey = async (secretKey: Uint8Array): Promise<Ed25519PublicKey> => {
    assertBytes(secretKey, 'secretKey', SIZES.ed25519SecretKey);
    // RFC 8032 §5.1.5.
    return (await publicKeyOf(s, PKCS8_ED25519, 'Ed25519', secretKey)) as Ed25519PublicKey;
  };

  return {
    name: 'web',

    randomBytes(length: number): Uint8Array {
      assertRandomLength(length);
      return random(length);
    },

    async x25519GenerateKeyPair(): Promise<KeyPair<X25519PublicKey, X25519SecretKey>> {
      // From random bytes rather than generateKey(), so that the injected source (and so the
      // equivalence tests) controls the key, and so the secret stays a plain Uint8Array.
      const secretKey = random(SIZES.x25519Key) as X25519SecretKey;
      return { publicKey: await x25519PublicKey(secretKey), secretKey };
    },

    x25519PublicKey,

    async x25519(secretKey: X25519SecretKey, publicKey: X25519PublicKey): Promise<Uint8Array> {
      assertBytes(secretKey, 'secretKey', SIZES.x25519Key);
      assertBytes(publicKey, 'publicKey', SIZES.x25519Key);
      assertX25519PublicKey(publicKey);
      const der = pkcs8(PKCS8_X25519, secretKey);
      let bits: ArrayBuffer;
      try {
        const privateKey = await s.importKey('pkcs8', der, { name: 'X25519' }, false, ['deriveBits']);
        const peer = await s.importKey('raw', bufferSource(publicKey), { name: 'X25519' }, false, []);
        // RFC 7748 §5. WebCrypto refuses an all-zero result itself (an OperationError).
        bits = await s.deriveBits({ name: 'X25519', public: peer }, privateKey, 256);
      } catch {
        throw invalidKey('x25519 public key');
      } finally {
        wipe(der);
      }
      const shared = new Uint8Array(bits);
      assertX25519SharedSecret(shared);
      return shared;
    },

    async ed25519GenerateKeyPair(): Promise<KeyPair<Ed25519PublicKey, Ed25519SecretKey>> {
      const secretKey = random(SIZES.ed25519SecretKey) as Ed25519SecretKey;
      return { publicKey: await ed25519PublicKey(secretKey), secretKey };
    },

    ed25519PublicKey,

    async ed25519Sign(secretKey: Ed25519SecretKey, message: Uint8Array): Promise<Uint8Array> {
      assertBytes(secretKey, 'secretKey', SIZES.ed25519SecretKey);
      assertBytes(message, 'message');
      const der = pkcs8(PKCS8_ED25519, secretKey);
      try {
        const key = await s.importKey('pkcs8', der, { name: 'Ed25519' }, false, ['sign']);
        // RFC 8032 §5.1.6: deterministic, so every provider gives the same signature.
        return new Uint8Array(await s.sign({ name: 'Ed25519' }, key, bufferSource(message)));
      } finally {
        wipe(der);
      }
    },

    async ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
      assertEd25519VerifyArguments(publicKey, message, signature);
      // Deadbolt's strict rules first (checks.ts), then WebCrypto's cofactorless equation.
      if (!ed25519SignatureShapeOk(publicKey, signature)) return false;
      try {
        const key = await s.importKey('raw', bufferSource(publicKey), { name: 'Ed25519' }, false, ['verify']);
        return await s.verify({ name: 'Ed25519' }, key, bufferSource(signature), bufferSource(message));
      } catch {
        return false; // a public key that does not decode to a curve point
      }
    },

    ...createNobleSymmetricMethods(),
    ...createMlKem768Methods(random),
  };
}
