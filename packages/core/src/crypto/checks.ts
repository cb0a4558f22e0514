/**
 * Input checks and the rules every crypto provider applies identically.
 *
 * The three providers wrap three different implementations (OpenSSL through node:crypto,
 * WebCrypto, and @noble/*). Left alone they disagree at the edges: which X25519 public keys
 * they refuse, which Ed25519 encodings they decode, what they do with a 15-byte
 * ciphertext. Everything that decides *whether* an input is acceptable therefore lives
 * here, runs before the primitive is called, and is the same code for every provider. The
 * primitives are then only asked questions on which they are known to agree (and
 * `test/unit/provider-equivalence.test.ts` plus the Wycheproof suites check that they do).
 *
 * Errors name the field and the expected length or form, never the bytes (STYLE.md).
 *
 * @module
 */
import { ProtocolError, UsageError } from '@deadbolt/spec';
import { SIZES, type CryptoProviderOptions, type RandomSource } from './provider.js';

// --- errors ---------------------------------------------------------------------------------

/** A `UsageError` `INVALID_ARGUMENT` naming `field` and what was expected. Never includes the value. */
export function invalidArgument(field: string, expected: string): UsageError<'INVALID_ARGUMENT'> {
  return new UsageError('INVALID_ARGUMENT', { message: `${field}: expected ${expected}`, details: { field, expected } });
}

/** A `ProtocolError` `INVALID_KEY` naming what kind of key was refused. Never includes the key. */
export function invalidKey(what: string): ProtocolError<'INVALID_KEY'> {
  return new ProtocolError('INVALID_KEY', { message: `invalid ${what}`, details: { what } });
}

/**
 * A `ProtocolError` `DECRYPT_FAILED`. Deliberately the same for every cause (bad tag, short
 * input, wrong key), so nothing about the failure is revealed (SECURITY.md E36). The cause
 * is not attached: the underlying library's message would differ per provider.
 */
export function decryptFailed(): ProtocolError<'DECRYPT_FAILED'> {
  return new ProtocolError('DECRYPT_FAILED', { message: 'authenticated decryption failed' });
}

// --- argument checks --------------------------------------------------------------------------

/**
 * Whether `value` is a `Uint8Array` (a Node `Buffer` counts; so does a `Uint8Array` from
 * another realm, such as an iframe, which `instanceof` alone would miss).
 */
export function isBytes(value: unknown): value is Uint8Array {
  return (
    value instanceof Uint8Array ||
    (ArrayBuffer.isView(value) && (value as { constructor?: { name?: unknown } }).constructor?.name === 'Uint8Array')
  );
}

/**
 * Throws `INVALID_ARGUMENT` unless `value` is a `Uint8Array`, of exactly `length` bytes if
 * given. Only the bytes the view covers count: a sub-array of a larger buffer is fine.
 */
export function assertBytes(value: unknown, field: string, length?: number): asserts value is Uint8Array {
  if (!isBytes(value)) throw invalidArgument(field, length === undefined ? 'a Uint8Array' : `a Uint8Array of ${length} bytes`);
  if (length !== undefined && value.length !== length) throw invalidArgument(field, `${length} bytes`);
}

/** Throws `INVALID_ARGUMENT` unless `value` is an integer from `min` to `max` inclusive. */
export function assertInteger(value: unknown, field: string, min: number, max: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw invalidArgument(field, `an integer from ${min} to ${max}`);
  }
}

/** Checks the arguments every AEAD call shares: a 256-bit key, a 96-bit nonce, and byte-array data. */
export function assertAeadArguments(key: unknown, nonce: unknown, data: unknown, dataField: string, aad: unknown): void {
  assertBytes(key, 'key', SIZES.aeadKey);
  assertBytes(nonce, 'nonce', SIZES.aeadNonce);
  assertBytes(data, dataField);
  assertBytes(aad, 'aad');
}

// --- constant-time comparison -----------------------------------------------------------------

/**
 * Constant-time equality of two byte arrays (SECURITY.md A3).
 *
 * Lengths are compared first and unequal lengths never match: a tag of 0, 1 or 15 bytes
 * never equals a 16-byte tag, however the bytes it does have compare. Lengths are public,
 * so returning early on them leaks nothing; the byte loop always runs over the whole input
 * and accumulates differences with OR, so its time does not depend on where (or whether)
 * the arrays differ.
 *
 * @example
 * ```ts
 * const expected = crypto.hmacSha256(macKey, data);
 * if (!equalBytes(expected, receivedTag)) throw new Error('bad MAC');
 * ```
 */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  assertBytes(a, 'a');
  assertBytes(b, 'b');
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

// --- randomness -------------------------------------------------------------------------------

/** WebCrypto's `getRandomValues` refuses more than 65,536 bytes per call. */
const GET_RANDOM_VALUES_MAX = 65_536;

/** Largest single request `randomBytes` accepts (1 GiB, far beyond any use). */
export const MAX_RANDOM_BYTES = 2 ** 30;

/**
 * The platform CSPRNG through WebCrypto (`globalThis.crypto.getRandomValues`), available in
 * browsers, workers and Node >= 19. Used by the web and noble providers.
 */
export function webRandomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += GET_RANDOM_VALUES_MAX) {
    globalThis.crypto.getRandomValues(out.subarray(offset, Math.min(length, offset + GET_RANDOM_VALUES_MAX)));
  }
  return out;
}

/**
 * The random source a provider uses: the platform CSPRNG, or (for deterministic test
 * vectors only, SECURITY.md A6) the injected `unsafeRandomSource`.
 *
 * The injected source is checked on every call: it must return a `Uint8Array` of exactly
 * the requested length, else `INVALID_ARGUMENT` (`field: 'unsafeRandomSource'`). Its output
 * is copied, so a source that hands out views of one buffer cannot alias keys.
 */
export function resolveRandomSource(options: CryptoProviderOptions | undefined, platform: RandomSource): RandomSource {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw invalidArgument('options', 'an object or undefined');
  }
  const unsafe = options?.unsafeRandomSource;
  if (unsafe === undefined) return platform;
  if (typeof unsafe !== 'function') throw invalidArgument('unsafeRandomSource', 'a function (length) => Uint8Array');
  return (length: number): Uint8Array => {
    const out: unknown = unsafe(length);
    if (!isBytes(out) || out.length !== length) {
      throw invalidArgument('unsafeRandomSource', `a Uint8Array of exactly ${length} bytes`);
    }
    return out.slice();
  };
}

/** Checks the argument of `randomBytes(length)`. */
export function assertRandomLength(length: unknown): asserts length is number {
  assertInteger(length, 'length', 0, MAX_RANDOM_BYTES);
}

// --- X25519 (RFC 7748) ------------------------------------------------------------------------

/**
 * The canonical encodings (u < p, top bit clear) of every X25519 public key of low order:
 * the points whose multiples by a clamped scalar (a multiple of the cofactor 8) are the
 * identity, so they yield the all-zero shared secret whatever the secret key is.
 *
 * - `u = 0`: the point of order 2;
 * - `u = 1` and `u = p - 1`: the points of order 4 (one on the curve, one on the twist);
 * - the two `u` of the points of order 8.
 *
 * Non-canonical encodings of these values (u + p, or the top bit set) are refused earlier
 * by the canonical check, so the list needs no more entries (libsodium keeps the same
 * seven-entry blocklist; its two extra entries are the non-canonical ones).
 */
const X25519_LOW_ORDER: readonly Uint8Array[] = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map(hexToBytes);

/**
 * Whether a 32-byte little-endian field element encoding (top bit ignored) is >= p = 2^255 - 19.
 * In little endian, p is `ed ff ff ... ff 7f`.
 */
function isAtLeastP(bytes: Uint8Array): boolean {
  if ((bytes[31]! & 0x7f) !== 0x7f) return false;
  for (let i = 30; i >= 1; i--) if (bytes[i] !== 0xff) return false;
  return bytes[0]! >= 0xed;
}

function equalPublic(a: Uint8Array, b: Uint8Array): boolean {
  // Public values only: an early exit leaks nothing secret.
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return a.length === b.length;
}

/**
 * Refuses an X25519 public key Deadbolt will not use (SECURITY.md A2), with `ProtocolError`
 * `INVALID_KEY` (`what: 'x25519 public key'`). Expects 32 bytes (checked by the caller).
 *
 * RFC 7748 §5 tells receivers to mask the top bit and accept u >= p; §7 recommends accepting
 * both. Deadbolt refuses both instead: honest keys never have them, so they only ever come
 * from an attacker probing for implementations that disagree on them (our three providers
 * would, without this check). Low-order keys are refused before any work, and the all-zero
 * result is refused after it ({@link assertX25519SharedSecret}, RFC 7748 §6.1), which also
 * catches any low-order point this list might have missed.
 *
 * Points on the twist are accepted: X25519 is defined on them (RFC 7748 §5), Curve25519's
 * twist is secure, and refusing them would need a costly square-root test.
 */
export function assertX25519PublicKey(publicKey: Uint8Array): void {
  if ((publicKey[31]! & 0x80) !== 0 || isAtLeastP(publicKey)) throw invalidKey('x25519 public key');
  for (const low of X25519_LOW_ORDER) if (equalPublic(publicKey, low)) throw invalidKey('x25519 public key');
}

/**
 * Refuses an all-zero X25519 output (RFC 7748 §6.1), with `INVALID_KEY`. The check runs in
 * constant time: the output is the shared secret.
 */
export function assertX25519SharedSecret(shared: Uint8Array): void {
  let acc = 0;
  for (let i = 0; i < shared.length; i++) acc |= shared[i]!;
  if (acc === 0) throw invalidKey('x25519 public key');
}

// --- Ed25519 (RFC 8032, strict) ---------------------------------------------------------------

/** The group order L = 2^252 + 27742317777372353535851937790883648493, little endian. */
const ED25519_L = hexToBytes('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010');

/**
 * The canonical encodings of the eight points of the Edwards25519 torsion subgroup (orders
 * 1, 2, 4 and 8). Non-canonical encodings of the same points are refused by
 * {@link isCanonicalEd25519Point}, so these eight suffice.
 */
const ED25519_SMALL_ORDER: readonly Uint8Array[] = [
  '0100000000000000000000000000000000000000000000000000000000000000', // identity
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // order 2
  '0000000000000000000000000000000000000000000000000000000000000000', // order 4
  '0000000000000000000000000000000000000000000000000000000000000080', // order 4
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa', // order 8
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85', // order 8
].map(hexToBytes);

/**
 * Whether a 32-byte point encoding is canonical (RFC 8032 §5.1.3): y < p, and the sign bit
 * is clear when x = 0 (that is, when y = 1 or y = p - 1). Whether y is on the curve at all
 * is left to the decoder; the providers agree on that.
 */
export function isCanonicalEd25519Point(bytes: Uint8Array): boolean {
  if (isAtLeastP(bytes)) return false;
  if ((bytes[31]! & 0x80) === 0) return true;
  // Sign bit set: refuse y = 1 and y = p - 1 (x = 0 has no negative).
  let yIsOne = bytes[0] === 0x01;
  let yIsPMinus1 = bytes[0] === 0xec;
  for (let i = 1; i < 31; i++) {
    if (bytes[i] !== 0) yIsOne = false;
    if (bytes[i] !== 0xff) yIsPMinus1 = false;
  }
  if ((bytes[31]! & 0x7f) !== 0) yIsOne = false;
  if ((bytes[31]! & 0x7f) !== 0x7f) yIsPMinus1 = false;
  return !yIsOne && !yIsPMinus1;
}

/** Whether a (canonical) point encoding is one of the eight small-order points. */
export function isSmallOrderEd25519Point(bytes: Uint8Array): boolean {
  for (const small of ED25519_SMALL_ORDER) if (equalPublic(bytes, small)) return true;
  return false;
}

/** Whether the 32 little-endian bytes `s` encode an integer below the group order L. */
export function isEd25519ScalarReduced(s: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    if (s[i]! < ED25519_L[i]!) return true;
    if (s[i]! > ED25519_L[i]!) return false;
  }
  return false; // s == L
}

/**
 * The strict rules Deadbolt adds to Ed25519 verification so that OpenSSL, WebCrypto and noble
 * accept exactly the same signatures (SECURITY.md A2). Returns `false` if the signature must
 * be refused without asking the primitive; `true` means "now run the verification equation".
 *
 * - the public key is exactly 32 bytes and the signature exactly 64 (no truncation, no
 *   trailing bytes: RFC 8032 §5.1.7 step 1);
 * - S < L (RFC 8032 §5.1.7 step 1; §8.4: otherwise signatures are malleable);
 * - A and R are canonical encodings (RFC 8032 §5.1.3: y < p, no "negative zero" x);
 * - neither A nor R is a small-order point. RFC 8032 does not require this, but the
 *   identity as public key "verifies" a signature forged without any secret (OpenSSL and
 *   WebCrypto accept it, noble's strict mode does not), and a small-order R is only ever
 *   made by someone crafting signatures for keys with a torsion component. libsodium
 *   refuses both, and so does Deadbolt.
 *
 * The equation itself is then the cofactorless one, `[S]B = R + [k]A` with R compared as an
 * encoding (RFC 8032 §5.1.7 step 3, "sufficient" form), which is what OpenSSL and BoringSSL
 * (and so WebCrypto in Node and Chromium) compute; the noble provider computes the same
 * equation rather than noble's cofactored default (see `noble-provider.ts`).
 */
export function ed25519SignatureShapeOk(publicKey: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== SIZES.ed25519PublicKey || signature.length !== SIZES.ed25519Signature) return false;
  const r = signature.subarray(0, 32);
  if (!isEd25519ScalarReduced(signature.subarray(32, 64))) return false;
  if (!isCanonicalEd25519Point(publicKey) || !isCanonicalEd25519Point(r)) return false;
  if (isSmallOrderEd25519Point(publicKey) || isSmallOrderEd25519Point(r)) return false;
  return true;
}

/** Checks the arguments of `ed25519Verify`: byte arrays of any length (bad lengths just fail). */
export function assertEd25519VerifyArguments(publicKey: unknown, message: unknown, signature: unknown): void {
  assertBytes(publicKey, 'publicKey');
  assertBytes(message, 'message');
  assertBytes(signature, 'signature');
}

// --- HKDF (RFC 5869) --------------------------------------------------------------------------

/** Checks the arguments of `hkdfSha256`. `length` is 1..255*HashLen (RFC 5869 §2.3). */
export function assertHkdfArguments(ikm: unknown, salt: unknown, info: unknown, length: unknown): asserts length is number {
  assertBytes(ikm, 'ikm');
  assertBytes(salt, 'salt');
  assertBytes(info, 'info');
  assertInteger(length, 'length', 1, SIZES.hkdfMaxLength);
}

// --- ML-KEM-768 (FIPS 203) ----------------------------------------------------------------------

/**
 * FIPS 203 §7.2 input check, type part: an encapsulation key of the wrong length is refused
 * with `INVALID_KEY` (the contract treats it like a key failing the modulus check: both come
 * from the peer).
 */
export function assertMlKemPublicKeyLength(publicKey: unknown): asserts publicKey is Uint8Array {
  assertBytes(publicKey, 'publicKey');
  if (publicKey.length !== SIZES.mlkem768PublicKey) throw invalidKey('ml-kem-768 public key');
}

// --- helpers ------------------------------------------------------------------------------------

/** Decodes a hex constant. Only for the fixed tables in this module. */
function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Overwrites secret bytes once they are no longer needed (best effort in a garbage-collected language). */
export function wipe(...arrays: Uint8Array[]): void {
  for (const a of arrays) a.fill(0);
}
