/**
 * Behaviour of each crypto provider on its own: known answers, round trips, argument
 * checks, the shared security rules (SECURITY.md A2, A3, A6), sub-array inputs and compact
 * outputs. Agreement between providers is in `provider-equivalence.test.ts`; the
 * Wycheproof suites are in `test/vectors/`.
 */
import { describe, expect, it, vi } from 'vitest';
import { isDeadboltError, type ErrorCode, type MlKemSecretKey, type X25519PublicKey } from '@deadbolt/spec';
import { createDefaultCryptoProvider, equalBytes, SIZES, type CryptoProvider } from '../../src/crypto/index.js';
import { hex, toHex } from '../helpers/hex.js';
import { CRYPTO_PROVIDERS, seededSource } from '../helpers/providers.js';

// --- helpers ----------------------------------------------------------------------------------------

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const bytes = (n: number, start = 1): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (start + i * 7) & 0xff);

/** `data` as a view into the middle of a larger buffer whose other bytes are garbage. */
function embedded(data: Uint8Array): Uint8Array {
  const big = new Uint8Array(data.length + 24).fill(0xa5);
  big.set(data, 11);
  return big.subarray(11, 11 + data.length);
}

/** A plain (not Buffer), compact Uint8Array owning its whole ArrayBuffer. */
function expectCompact(out: Uint8Array, length?: number): void {
  expect(Object.getPrototypeOf(out)).toBe(Uint8Array.prototype);
  expect(out.byteOffset).toBe(0);
  expect(out.buffer.byteLength).toBe(out.length);
  if (length !== undefined) expect(out.length).toBe(length);
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

async function rejected(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

function expectDeadbolt(e: unknown, kind: string, code: ErrorCode, details?: Record<string, unknown>): void {
  expect(isDeadboltError(e, code), `expected ${code}, got ${String(e)}`).toBe(true);
  expect((e as { kind: string }).kind).toBe(kind);
  if (details !== undefined) expect((e as { details: unknown }).details).toMatchObject(details);
}

const expectInvalidArgument = (fn: () => unknown, field: string): void =>
  expectDeadbolt(caught(fn), 'usage', 'INVALID_ARGUMENT', { field });
const expectInvalidArgumentAsync = async (p: Promise<unknown>, field: string): Promise<void> =>
  expectDeadbolt(await rejected(p), 'usage', 'INVALID_ARGUMENT', { field });
const expectInvalidKeyAsync = async (p: Promise<unknown>): Promise<void> =>
  expectDeadbolt(await rejected(p), 'protocol', 'INVALID_KEY', { what: 'x25519 public key' });
const expectDecryptFailed = (fn: () => unknown): void => expectDeadbolt(caught(fn), 'protocol', 'DECRYPT_FAILED');

// --- known answers ------------------------------------------------------------------------------------

/** RFC 7748 §6.1. */
const RFC7748 = {
  aliceSecret: hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'),
  alicePublic: '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
  bobSecret: hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'),
  bobPublic: 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f',
  shared: '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742',
};

/** RFC 8032 §7.1, TEST 3 (a two-byte message). */
const RFC8032 = {
  secret: hex('c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7'),
  public: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
  message: hex('af82'),
  signature:
    '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
};

/** The Ed25519 identity point and base point B, encoded (RFC 8032 §5.1.2). */
const IDENTITY = hex('0100000000000000000000000000000000000000000000000000000000000000');
const BASE_POINT = hex('5866666666666666666666666666666666666666666666666666666666666666');

/** The group order L of Ed25519, little endian. */
const L_LE = hex('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010');

/** S + L (mod 2^256) for a 32-byte little-endian S: the classic malleated signature. */
function addL(s: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  let carry = 0;
  for (let i = 0; i < 32; i++) {
    const v = s[i]! + L_LE[i]! + carry;
    out[i] = v & 0xff;
    carry = v >> 8;
  }
  return out;
}

// --- per provider -----------------------------------------------------------------------------------

describe.each(CRYPTO_PROVIDERS)('%s provider', (name, create) => {
  const crypto = create();

  it('reports its name', () => {
    expect(crypto.name).toBe(name);
  });

  describe('randomBytes', () => {
    it('returns fresh compact arrays of the requested length', () => {
      const a = crypto.randomBytes(32);
      const b = crypto.randomBytes(32);
      expectCompact(a, 32);
      expect(equalBytes(a, b)).toBe(false);
      expect(crypto.randomBytes(0).length).toBe(0);
      // More than WebCrypto's 65,536-byte getRandomValues limit is filled in chunks.
      const big = crypto.randomBytes(70_000);
      expect(big.length).toBe(70_000);
      expect(big.subarray(65_536).some((x) => x !== 0)).toBe(true);
    });

    it('refuses lengths that are not non-negative integers', () => {
      for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '8' as unknown as number]) {
        expectInvalidArgument(() => crypto.randomBytes(bad), 'length');
      }
    });
  });

  describe('X25519 (RFC 7748)', () => {
    it('matches RFC 7748 §6.1', async () => {
      expect(toHex(await crypto.x25519PublicKey(RFC7748.aliceSecret as never))).toBe(RFC7748.alicePublic);
      expect(toHex(await crypto.x25519PublicKey(RFC7748.bobSecret as never))).toBe(RFC7748.bobPublic);
      const shared = await crypto.x25519(RFC7748.aliceSecret as never, hex(RFC7748.bobPublic) as X25519PublicKey);
      expect(toHex(shared)).toBe(RFC7748.shared);
      expectCompact(shared, 32);
    });

    it('agrees on a shared secret between two fresh key pairs', async () => {
      const alice = await crypto.x25519GenerateKeyPair();
      const bob = await crypto.x25519GenerateKeyPair();
      expectCompact(alice.publicKey, 32);
      expectCompact(alice.secretKey, 32);
      expect(toHex(await crypto.x25519PublicKey(alice.secretKey))).toBe(toHex(alice.publicKey));
      const ab = await crypto.x25519(alice.secretKey, bob.publicKey);
      const ba = await crypto.x25519(bob.secretKey, alice.publicKey);
      expect(toHex(ab)).toBe(toHex(ba));
    });

    it('refuses wrong lengths with INVALID_ARGUMENT naming the field', async () => {
      const { secretKey, publicKey } = await crypto.x25519GenerateKeyPair();
      for (const n of [0, 31, 33, 64]) {
        await expectInvalidArgumentAsync(crypto.x25519(new Uint8Array(n) as never, publicKey), 'secretKey');
        await expectInvalidArgumentAsync(crypto.x25519(secretKey, new Uint8Array(n) as never), 'publicKey');
        await expectInvalidArgumentAsync(crypto.x25519PublicKey(new Uint8Array(n) as never), 'secretKey');
      }
      await expectInvalidArgumentAsync(crypto.x25519(secretKey, [...publicKey] as never), 'publicKey');
    });

    it('refuses low-order, non-canonical and zero-result public keys with INVALID_KEY (SECURITY.md A2)', async () => {
      const { secretKey, publicKey } = await crypto.x25519GenerateKeyPair();
      const refused = [
        '0000000000000000000000000000000000000000000000000000000000000000', // u = 0, order 2
        '0100000000000000000000000000000000000000000000000000000000000000', // u = 1, order 4
        'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // u = p - 1, order 4
        'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', // order 8
        '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157', // order 8
        'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // u = p (non-canonical 0)
        'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // u = p + 1 (non-canonical 1)
        'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // u = 2^255 - 1 >= p
      ];
      for (const h of refused) await expectInvalidKeyAsync(crypto.x25519(secretKey, hex(h) as X25519PublicKey));
      // The unused top bit set on an otherwise valid key: RFC 7748 §5 would mask it; Deadbolt refuses.
      const topBit = publicKey.slice();
      topBit[31]! |= 0x80;
      await expectInvalidKeyAsync(crypto.x25519(secretKey, topBit as X25519PublicKey));
    });
  });

  describe('Ed25519 (RFC 8032, strict)', () => {
    it('matches RFC 8032 §7.1 TEST 3', async () => {
      expect(toHex(await crypto.ed25519PublicKey(RFC8032.secret as never))).toBe(RFC8032.public);
      const sig = await crypto.ed25519Sign(RFC8032.secret as never, RFC8032.message);
      expect(toHex(sig)).toBe(RFC8032.signature);
      expectCompact(sig, 64);
      expect(await crypto.ed25519Verify(hex(RFC8032.public), RFC8032.message, sig)).toBe(true);
    });

    it('signs and verifies; any change to message, signature or key fails', async () => {
      const { publicKey, secretKey } = await crypto.ed25519GenerateKeyPair();
      expectCompact(publicKey, 32);
      const message = utf8('attack at dawn');
      const sig = await crypto.ed25519Sign(secretKey, message);
      expect(await crypto.ed25519Verify(publicKey, message, sig)).toBe(true);
      expect(await crypto.ed25519Verify(publicKey, utf8('attack at dusk'), sig)).toBe(false);
      for (const i of [0, 31, 32, 63]) {
        const bad = sig.slice();
        bad[i]! ^= 1;
        expect(await crypto.ed25519Verify(publicKey, message, bad)).toBe(false);
      }
      const other = await crypto.ed25519GenerateKeyPair();
      expect(await crypto.ed25519Verify(other.publicKey, message, sig)).toBe(false);
    });

    it('returns false (never throws) for wrong lengths, S >= L, non-canonical and small-order encodings', async () => {
      const { publicKey, secretKey } = await crypto.ed25519GenerateKeyPair();
      const message = utf8('m');
      const sig = await crypto.ed25519Sign(secretKey, message);
      const cases: [Uint8Array, Uint8Array][] = [
        [publicKey, sig.subarray(0, 63)], // truncated
        [publicKey, new Uint8Array([...sig, 0])], // trailing byte
        [publicKey, new Uint8Array(0)],
        [publicKey.subarray(0, 31), sig],
        [new Uint8Array([...publicKey, 0]), sig],
        [publicKey, new Uint8Array([...sig.subarray(0, 32), ...addL(sig.subarray(32))])], // S + L
        // The identity as public key with R = B, S = 1: [S]B = R + [k]A holds for every
        // message, so plain RFC 8032 (and OpenSSL) accepts this forgery; refused by
        // Deadbolt's small-order rule.
        [IDENTITY, new Uint8Array([...BASE_POINT, 1, ...new Uint8Array(31)])],
        // non-canonical public key: y = p + 1 encodes y = 1
        [hex('eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'), sig],
      ];
      for (const [pk, s] of cases) expect(await crypto.ed25519Verify(pk, message, s)).toBe(false);
      await expectInvalidArgumentAsync(crypto.ed25519Verify('pk' as never, message, sig), 'publicKey');
      await expectInvalidArgumentAsync(crypto.ed25519Verify(publicKey, 'm' as never, sig), 'message');
      await expectInvalidArgumentAsync(crypto.ed25519Verify(publicKey, message, null as never), 'signature');
    });

    it('refuses secret keys of the wrong length', async () => {
      for (const n of [0, 31, 33, 64]) {
        await expectInvalidArgumentAsync(crypto.ed25519Sign(new Uint8Array(n) as never, utf8('m')), 'secretKey');
        await expectInvalidArgumentAsync(crypto.ed25519PublicKey(new Uint8Array(n) as never), 'secretKey');
      }
    });
  });

  describe('hashes, HMAC, HKDF', () => {
    it('matches FIPS 180-4 "abc", RFC 4231 test case 2 and RFC 5869 A.1/A.3', () => {
      expect(toHex(crypto.sha256(utf8('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
      expect(toHex(crypto.sha512(utf8('abc')))).toBe(
        'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
      );
      expect(toHex(crypto.hmacSha256(utf8('Jefe'), utf8('what do ya want for nothing?')))).toBe(
        '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
      );
      const ikm = new Uint8Array(22).fill(0x0b);
      expect(toHex(crypto.hkdfSha256(ikm, hex('000102030405060708090a0b0c'), hex('f0f1f2f3f4f5f6f7f8f9'), 42))).toBe(
        '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
      );
      // A.3: empty salt and info.
      expect(toHex(crypto.hkdfSha256(ikm, new Uint8Array(0), new Uint8Array(0), 42))).toBe(
        '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
      );
    });

    it('HKDF: an empty salt equals 32 zero bytes; info longer than 1024 bytes works; 8160 bytes max', () => {
      const ikm = bytes(40);
      expect(toHex(crypto.hkdfSha256(ikm, new Uint8Array(0), utf8('x'), 64))).toBe(
        toHex(crypto.hkdfSha256(ikm, new Uint8Array(32), utf8('x'), 64)),
      );
      expect(crypto.hkdfSha256(ikm, bytes(32), bytes(5000), 32).length).toBe(32);
      expectCompact(crypto.hkdfSha256(ikm, bytes(32), bytes(3), SIZES.hkdfMaxLength), SIZES.hkdfMaxLength);
      for (const bad of [0, -1, SIZES.hkdfMaxLength + 1, 1.5]) {
        expectInvalidArgument(() => crypto.hkdfSha256(ikm, bytes(32), bytes(3), bad), 'length');
      }
      expectInvalidArgument(() => crypto.hkdfSha256('ikm' as never, bytes(32), bytes(3), 32), 'ikm');
      expectInvalidArgument(() => crypto.hkdfSha256(ikm, null as never, bytes(3), 32), 'salt');
      expectInvalidArgument(() => crypto.hkdfSha256(ikm, bytes(32), undefined as never, 32), 'info');
    });

    it('HMAC accepts keys of any length, including empty and longer than a block', () => {
      for (const n of [0, 1, 32, 64, 65, 200]) expectCompact(crypto.hmacSha256(bytes(n), utf8('d')), 32);
      expectInvalidArgument(() => crypto.hmacSha256('k' as never, utf8('d')), 'key');
      expectInvalidArgument(() => crypto.sha256([1, 2] as never), 'data');
    });
  });

  describe.each([
    ['ChaCha20-Poly1305', 'chacha20Poly1305Seal', 'chacha20Poly1305Open'],
    ['AES-256-GCM', 'aes256GcmSeal', 'aes256GcmOpen'],
  ] as const)('%s', (_label, sealName, openName) => {
    const seal = crypto[sealName].bind(crypto);
    const open = crypto[openName].bind(crypto);
    const key = bytes(32, 3);
    const nonce = bytes(12, 5);
    const aad = utf8('header');

    it('round trips for lengths around the block sizes; output is ciphertext || 16-byte tag', () => {
      for (const n of [0, 1, 15, 16, 17, 63, 64, 65, 1000]) {
        const pt = bytes(n, n);
        const sealed = seal(key, nonce, pt, aad);
        expectCompact(sealed, n + 16);
        const opened = open(key, nonce, sealed, aad);
        expectCompact(opened, n);
        expect(toHex(opened)).toBe(toHex(pt));
      }
    });

    it('any change to key, nonce, aad, ciphertext or tag gives DECRYPT_FAILED', () => {
      const sealed = seal(key, nonce, utf8('hello world'), aad);
      expectDecryptFailed(() => open(bytes(32, 4), nonce, sealed, aad));
      expectDecryptFailed(() => open(key, bytes(12, 6), sealed, aad));
      expectDecryptFailed(() => open(key, nonce, sealed, utf8('headex')));
      for (const i of [0, sealed.length - 17, sealed.length - 16, sealed.length - 1]) {
        const bad = sealed.slice();
        bad[i]! ^= 0x80;
        expectDecryptFailed(() => open(key, nonce, bad, aad));
      }
    });

    it('inputs shorter than the tag (0, 1, 15 bytes) give DECRYPT_FAILED, not a usage error (SECURITY.md A3)', () => {
      const sealed = seal(key, nonce, new Uint8Array(0), aad);
      for (const n of [0, 1, 15]) expectDecryptFailed(() => open(key, nonce, sealed.subarray(0, n), aad));
      expect(open(key, nonce, sealed, aad).length).toBe(0);
    });

    it('refuses keys other than 256 bits and nonces other than 96 bits with INVALID_ARGUMENT', () => {
      const sealed = seal(key, nonce, utf8('x'), aad);
      for (const n of [0, 16, 24, 31, 33]) {
        expectInvalidArgument(() => seal(new Uint8Array(n), nonce, utf8('x'), aad), 'key');
        expectInvalidArgument(() => open(new Uint8Array(n), nonce, sealed, aad), 'key');
      }
      for (const n of [0, 8, 11, 13, 16, 24]) {
        expectInvalidArgument(() => seal(key, new Uint8Array(n), utf8('x'), aad), 'nonce');
        expectInvalidArgument(() => open(key, new Uint8Array(n), sealed, aad), 'nonce');
      }
      expectInvalidArgument(() => seal(key, nonce, 'x' as never, aad), 'plaintext');
      expectInvalidArgument(() => open(key, nonce, 'x' as never, aad), 'ciphertext');
      expectInvalidArgument(() => seal(key, nonce, utf8('x'), undefined as never), 'aad');
    });
  });

  describe('ML-KEM-768 (FIPS 203)', () => {
    it('round trips; sizes are those of FIPS 203 Table 3', () => {
      const { publicKey, secretKey } = crypto.mlkem768GenerateKeyPair();
      expectCompact(publicKey, SIZES.mlkem768PublicKey);
      expectCompact(secretKey, SIZES.mlkem768SecretKey);
      const { ciphertext, sharedSecret } = crypto.mlkem768Encapsulate(publicKey);
      expectCompact(ciphertext, SIZES.mlkem768Ciphertext);
      expectCompact(sharedSecret, SIZES.mlkem768SharedSecret);
      const decapsulated = crypto.mlkem768Decapsulate(secretKey, ciphertext);
      expectCompact(decapsulated, 32);
      expect(toHex(decapsulated)).toBe(toHex(sharedSecret));
    });

    it('a modified ciphertext decapsulates to a different secret (implicit rejection), without throwing', () => {
      const { publicKey, secretKey } = crypto.mlkem768GenerateKeyPair();
      const { ciphertext, sharedSecret } = crypto.mlkem768Encapsulate(publicKey);
      const bad = ciphertext.slice();
      bad[100]! ^= 1;
      expect(toHex(crypto.mlkem768Decapsulate(secretKey, bad))).not.toBe(toHex(sharedSecret));
    });

    it('refuses public keys of the wrong length or failing the modulus check with INVALID_KEY', () => {
      const { publicKey } = crypto.mlkem768GenerateKeyPair();
      for (const n of [0, 1183, 1185]) {
        const e = caught(() => crypto.mlkem768Encapsulate(new Uint8Array(n)));
        expectDeadbolt(e, 'protocol', 'INVALID_KEY', { what: 'ml-kem-768 public key' });
      }
      const unreduced = publicKey.slice();
      unreduced[0] = 0xff; // first coefficient = 0x?ff | ... >= 3329 once the low nibble of byte 1 is 0xf
      unreduced[1]! |= 0x0f;
      expectDeadbolt(caught(() => crypto.mlkem768Encapsulate(unreduced)), 'protocol', 'INVALID_KEY');
      expectInvalidArgument(() => crypto.mlkem768Encapsulate('pk' as never), 'publicKey');
    });

    it('refuses decapsulation keys and ciphertexts of the wrong length, and keys failing the hash check', () => {
      const { publicKey, secretKey } = crypto.mlkem768GenerateKeyPair();
      const { ciphertext } = crypto.mlkem768Encapsulate(publicKey);
      expectInvalidArgument(() => crypto.mlkem768Decapsulate(secretKey.subarray(1) as MlKemSecretKey, ciphertext), 'secretKey');
      expectInvalidArgument(() => crypto.mlkem768Decapsulate(secretKey, ciphertext.subarray(1)), 'ciphertext');
      expectInvalidArgument(() => crypto.mlkem768Decapsulate(secretKey, new Uint8Array(1089)), 'ciphertext');
      const tampered = secretKey.slice() as MlKemSecretKey;
      tampered[1152 + 5]! ^= 1; // inside the embedded ek: H(ek) no longer matches (FIPS 203 §7.3)
      expectInvalidArgument(() => crypto.mlkem768Decapsulate(tampered, ciphertext), 'secretKey');
    });
  });

  it('uses only the bytes a sub-array views, for every input of every method', async () => {
    const x = await crypto.x25519GenerateKeyPair();
    const y = await crypto.x25519GenerateKeyPair();
    expect(toHex(await crypto.x25519(embedded(x.secretKey) as never, embedded(y.publicKey) as never))).toBe(
      toHex(await crypto.x25519(x.secretKey, y.publicKey)),
    );
    expect(toHex(await crypto.x25519PublicKey(embedded(x.secretKey) as never))).toBe(toHex(x.publicKey));

    const e = await crypto.ed25519GenerateKeyPair();
    const msg = bytes(100);
    const sig = await crypto.ed25519Sign(e.secretKey, msg);
    expect(toHex(await crypto.ed25519Sign(embedded(e.secretKey) as never, embedded(msg)))).toBe(toHex(sig));
    expect(toHex(await crypto.ed25519PublicKey(embedded(e.secretKey) as never))).toBe(toHex(e.publicKey));
    expect(await crypto.ed25519Verify(embedded(e.publicKey), embedded(msg), embedded(sig))).toBe(true);

    const data = bytes(77);
    expect(toHex(crypto.sha256(embedded(data)))).toBe(toHex(crypto.sha256(data)));
    expect(toHex(crypto.sha512(embedded(data)))).toBe(toHex(crypto.sha512(data)));
    expect(toHex(crypto.hmacSha256(embedded(bytes(32)), embedded(data)))).toBe(toHex(crypto.hmacSha256(bytes(32), data)));
    expect(toHex(crypto.hkdfSha256(embedded(data), embedded(bytes(32)), embedded(bytes(9)), 80))).toBe(
      toHex(crypto.hkdfSha256(data, bytes(32), bytes(9), 80)),
    );

    const key = bytes(32, 9);
    const nonce = bytes(12, 2);
    for (const [seal, open] of [
      [crypto.chacha20Poly1305Seal, crypto.chacha20Poly1305Open],
      [crypto.aes256GcmSeal, crypto.aes256GcmOpen],
    ] as const) {
      const sealed = seal(key, nonce, data, msg);
      expect(toHex(seal(embedded(key), embedded(nonce), embedded(data), embedded(msg)))).toBe(toHex(sealed));
      expect(toHex(open(embedded(key), embedded(nonce), embedded(sealed), embedded(msg)))).toBe(toHex(data));
    }

    const kem = crypto.mlkem768GenerateKeyPair();
    const { ciphertext, sharedSecret } = crypto.mlkem768Encapsulate(embedded(kem.publicKey));
    expect(toHex(crypto.mlkem768Decapsulate(embedded(kem.secretKey) as never, embedded(ciphertext)))).toBe(toHex(sharedSecret));
  });

  it('never mutates its inputs', async () => {
    const key = bytes(32, 9);
    const nonce = bytes(12, 2);
    const pt = bytes(50);
    const snapshot = [toHex(key), toHex(nonce), toHex(pt)];
    const sealed = crypto.chacha20Poly1305Seal(key, nonce, pt, pt);
    crypto.chacha20Poly1305Open(key, nonce, sealed, pt);
    crypto.aes256GcmOpen(key, nonce, crypto.aes256GcmSeal(key, nonce, pt, pt), pt);
    crypto.hkdfSha256(key, nonce, pt, 100);
    expect([toHex(key), toHex(nonce), toHex(pt)]).toEqual(snapshot);
    const e = await crypto.ed25519GenerateKeyPair();
    const eHex = toHex(e.secretKey);
    await crypto.ed25519Sign(e.secretKey, pt);
    expect(toHex(e.secretKey)).toBe(eHex);
    const kem = crypto.mlkem768GenerateKeyPair();
    const pkHex = toHex(kem.publicKey);
    const skHex = toHex(kem.secretKey);
    crypto.mlkem768Decapsulate(kem.secretKey, crypto.mlkem768Encapsulate(kem.publicKey).ciphertext);
    expect([toHex(kem.publicKey), toHex(kem.secretKey)]).toEqual([pkHex, skHex]);
  });

  describe('unsafeRandomSource (SECURITY.md A6)', () => {
    it('makes every key generation and encapsulation deterministic', async () => {
      const a = create({ unsafeRandomSource: seededSource(42) });
      const b = create({ unsafeRandomSource: seededSource(42) });
      expect(toHex(a.randomBytes(16))).toBe(toHex(b.randomBytes(16)));
      const [xa, xb] = [await a.x25519GenerateKeyPair(), await b.x25519GenerateKeyPair()];
      expect([toHex(xa.secretKey), toHex(xa.publicKey)]).toEqual([toHex(xb.secretKey), toHex(xb.publicKey)]);
      const [ea, eb] = [await a.ed25519GenerateKeyPair(), await b.ed25519GenerateKeyPair()];
      expect([toHex(ea.secretKey), toHex(ea.publicKey)]).toEqual([toHex(eb.secretKey), toHex(eb.publicKey)]);
      const [ka, kb] = [a.mlkem768GenerateKeyPair(), b.mlkem768GenerateKeyPair()];
      expect(toHex(ka.secretKey)).toBe(toHex(kb.secretKey));
      const [ca, cb] = [a.mlkem768Encapsulate(ka.publicKey), b.mlkem768Encapsulate(kb.publicKey)];
      expect([toHex(ca.ciphertext), toHex(ca.sharedSecret)]).toEqual([toHex(cb.ciphertext), toHex(cb.sharedSecret)]);
      // The secret key is exactly the drawn bytes (clamping happens inside X25519).
      expect(toHex((await create({ unsafeRandomSource: () => new Uint8Array(32).fill(0xff) }).x25519GenerateKeyPair()).secretKey)).toBe(
        'ff'.repeat(32),
      );
    });

    it('copies what the source returns, and refuses a source that returns the wrong length or type', async () => {
      const shared = new Uint8Array(64).fill(7);
      const c = create({ unsafeRandomSource: (n) => shared.subarray(0, n) });
      const out = c.randomBytes(32);
      shared.fill(9);
      expect(toHex(out)).toBe('07'.repeat(32));
      expectCompact(out, 32);
      const short = create({ unsafeRandomSource: (n) => new Uint8Array(n - 1) });
      expectInvalidArgument(() => short.randomBytes(8), 'unsafeRandomSource');
      await expectInvalidArgumentAsync(short.x25519GenerateKeyPair(), 'unsafeRandomSource');
      expectInvalidArgument(() => short.mlkem768GenerateKeyPair(), 'unsafeRandomSource');
      const wrongType = create({ unsafeRandomSource: (n) => Array.from({ length: n }, () => 1) as never });
      expectInvalidArgument(() => wrongType.randomBytes(4), 'unsafeRandomSource');
      expectInvalidArgument(() => create({ unsafeRandomSource: 'no' as never }), 'unsafeRandomSource');
    });
  });

  it('puts no key bytes in error messages or details', async () => {
    const secret = new Uint8Array(31).fill(0xab); // wrong length, distinctive bytes
    const errors = [
      await rejected(crypto.x25519(secret as never, new Uint8Array(32) as never)),
      await rejected(crypto.x25519(bytes(32) as never, hex('0100000000000000000000000000000000000000000000000000000000000000') as never)),
      caught(() => crypto.chacha20Poly1305Open(secret, bytes(12), bytes(40), bytes(0))),
      caught(() => crypto.chacha20Poly1305Open(new Uint8Array(32).fill(0xab), bytes(12), bytes(40), bytes(0))),
    ];
    for (const e of errors) {
      const text = `${String(e)} ${JSON.stringify((e as { details?: unknown }).details ?? null)}`;
      expect(text).not.toMatch(/abab|171,\s*171|0100000000/i);
    }
  });
});

// --- equalBytes ----------------------------------------------------------------------------------------

describe('equalBytes (SECURITY.md A3)', () => {
  const tag = bytes(16, 200);

  it('matches equal arrays, including sub-array views', () => {
    expect(equalBytes(tag, tag.slice())).toBe(true);
    expect(equalBytes(tag, embedded(tag))).toBe(true);
    expect(equalBytes(new Uint8Array(0), new Uint8Array(0))).toBe(true);
  });

  it('never matches a 16-byte tag with 0, 1 or 15 bytes, whatever they are', () => {
    for (const n of [0, 1, 15]) {
      expect(equalBytes(tag, tag.subarray(0, n))).toBe(false);
      expect(equalBytes(tag.subarray(0, n), tag)).toBe(false);
      expect(equalBytes(tag, new Uint8Array(n))).toBe(false);
    }
    expect(equalBytes(tag, new Uint8Array([...tag, 0]))).toBe(false);
  });

  it('detects a difference in any byte or bit', () => {
    for (let i = 0; i < 16; i++) {
      for (const bit of [0x01, 0x80]) {
        const other = tag.slice();
        other[i]! ^= bit;
        expect(equalBytes(tag, other)).toBe(false);
      }
    }
  });

  it('refuses non-Uint8Array arguments with INVALID_ARGUMENT', () => {
    expectInvalidArgument(() => equalBytes('a' as never, tag), 'a');
    expectInvalidArgument(() => equalBytes(tag, [1] as never), 'b');
  });
});

describe('node provider key import', () => {
  it('falls back to the RFC 8410 DER encodings if Node ever refuses the JWK form, with the same results', async () => {
    vi.resetModules();
    vi.doMock('node:crypto', async (importOriginal) => {
      const real = await importOriginal<typeof import('node:crypto')>();
      const refuseJwk =
        <A extends unknown[], R>(f: (...args: A) => R) =>
        (...args: A): R => {
          if ((args[0] as { format?: unknown } | undefined)?.format === 'jwk') throw new TypeError('JWK refused (test)');
          return f(...args);
        };
      return { ...real, createPrivateKey: refuseJwk(real.createPrivateKey), createPublicKey: refuseJwk(real.createPublicKey) };
    });
    try {
      const { createNodeCryptoProvider: createWithDer } = await import('../../src/crypto/node-provider.js');
      const crypto = createWithDer();
      expect(toHex(await crypto.x25519PublicKey(RFC7748.aliceSecret as never))).toBe(RFC7748.alicePublic);
      expect(toHex(await crypto.x25519(RFC7748.aliceSecret as never, hex(RFC7748.bobPublic) as never))).toBe(RFC7748.shared);
      expect(toHex(await crypto.ed25519PublicKey(RFC8032.secret as never))).toBe(RFC8032.public);
      const sig = await crypto.ed25519Sign(RFC8032.secret as never, RFC8032.message);
      expect(toHex(sig)).toBe(RFC8032.signature);
      expect(await crypto.ed25519Verify(hex(RFC8032.public), RFC8032.message, sig)).toBe(true);
    } finally {
      vi.doUnmock('node:crypto');
      vi.resetModules();
    }
  });
});

describe('createDefaultCryptoProvider', () => {
  it('resolves to the node provider under Node (#crypto-default "node" condition)', () => {
    expect(createDefaultCryptoProvider().name).toBe('node');
    const a = createDefaultCryptoProvider({ unsafeRandomSource: seededSource(1) });
    expect(toHex(a.randomBytes(8))).toBe(toHex(seededSource(1)(8)));
  });
});
