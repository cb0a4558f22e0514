/**
 * The Double Ratchet (Signal's Double Ratchet specification, revision 4; docs/protocol.md
 * §6), as pure functions: each takes a state and returns a new one, and never mutates its
 * input. A failed decrypt therefore leaves the caller's state untouched, and the session
 * layer persists nothing (SECURITY.md B14).
 *
 * ```
 * KDF_RK(RK, dh_out) = HKDF-SHA256(ikm = dh_out, salt = RK, info = "Deadbolt_v1_RatchetRoot", L = 64)
 *                      -> RK' = [0..32), CK = [32..64)
 * KDF_CK(CK)         = MK = HMAC-SHA256(CK, 0x01), CK' = HMAC-SHA256(CK, 0x02)
 * ```
 *
 * State variables keep the specification's names (§3.2): DHs, DHr, RK, CKs, CKr, Ns, Nr,
 * PN, MKSKIPPED.
 *
 * @module
 */
import { ProtocolError, type KeyPair, type X25519PublicKey, type X25519SecretKey } from '@deadbolt/spec';
import { toHex, utf8 } from '../codec/bytes.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { CHAIN_MESSAGE_KEY_SEED, CHAIN_NEXT_KEY_SEED, Label, Limits } from './constants.js';
import { decryptFailed } from '../crypto/checks.js';
import { deriveMessageKeys, openCommitted, sealCommitted } from './message-keys.js';
import { encodeRatchetHeader, type RatchetMessage } from './ratchet-message.js';

/** A skipped message key, kept to decrypt a late message (§3.2 MKSKIPPED). */
export interface SkippedKey {
  readonly dh: X25519PublicKey;
  readonly n: number;
  readonly mk: Uint8Array;
}

/** The Double Ratchet state (§3.2). Treat as immutable. */
export interface RatchetState {
  readonly RK: Uint8Array;
  readonly DHs: KeyPair<X25519PublicKey, X25519SecretKey>;
  readonly DHr: X25519PublicKey | undefined;
  readonly CKs: Uint8Array | undefined;
  readonly CKr: Uint8Array | undefined;
  readonly Ns: number;
  readonly Nr: number;
  readonly PN: number;
  /** Skipped keys by `hex(dh):n`, oldest first (a Map keeps insertion order). */
  readonly MKSKIPPED: ReadonlyMap<string, SkippedKey>;
  /** Hex of the last few receiving ratchet keys, newest last, to recognise duplicates. */
  readonly previousDHr: readonly string[];
}

/** Limits applied on decrypt (docs/protocol.md §8). */
export interface RatchetLimits {
  /** Largest jump within one receiving chain (libsignal: 25,000). */
  readonly maxForwardSkip: number;
  /** Skipped keys stored per session; the oldest are evicted beyond it (libsignal: 2,000). */
  readonly maxSkippedKeys: number;
}

const ROOT_INFO = utf8(Label.ratchetRoot);
const MAX_COUNTER = 0xffffffff;

function kdfRk(crypto: CryptoProvider, rk: Uint8Array, dhOut: Uint8Array): [Uint8Array, Uint8Array] {
  const okm = crypto.hkdfSha256(dhOut, rk, ROOT_INFO, 64);
  return [okm.slice(0, 32), okm.slice(32, 64)];
}

function kdfCk(crypto: CryptoProvider, ck: Uint8Array): [mk: Uint8Array, next: Uint8Array] {
  return [crypto.hmacSha256(ck, CHAIN_MESSAGE_KEY_SEED), crypto.hmacSha256(ck, CHAIN_NEXT_KEY_SEED)];
}

function skippedId(dhHex: string, n: number): string {
  return `${dhHex}:${n}`;
}

/** §3.3 RatchetInitAlice: the initiator, given SK and the responder's signed prekey. */
export async function ratchetInitInitiator(
  crypto: CryptoProvider,
  sk: Uint8Array,
  responderRatchetKey: X25519PublicKey,
): Promise<RatchetState> {
  const DHs = await crypto.x25519GenerateKeyPair();
  const [RK, CKs] = kdfRk(crypto, sk, await crypto.x25519(DHs.secretKey, responderRatchetKey));
  return { RK, DHs, DHr: responderRatchetKey, CKs, CKr: undefined, Ns: 0, Nr: 0, PN: 0, MKSKIPPED: new Map(), previousDHr: [] };
}

/** §3.3 RatchetInitBob: the responder, whose first ratchet key is its signed prekey. */
export function ratchetInitResponder(sk: Uint8Array, signedPrekey: KeyPair<X25519PublicKey, X25519SecretKey>): RatchetState {
  return { RK: sk.slice(), DHs: signedPrekey, DHr: undefined, CKs: undefined, CKr: undefined, Ns: 0, Nr: 0, PN: 0, MKSKIPPED: new Map(), previousDHr: [] };
}

/** The result of {@link ratchetEncrypt}. */
export interface RatchetEncryptResult {
  readonly state: RatchetState;
  /** The 42 header bytes (also part of the AD). */
  readonly headerBytes: Uint8Array;
  /** commitment | ciphertext | tag. */
  readonly body: Uint8Array;
}

/**
 * §3.4 RatchetEncrypt. `adPrefix` is the session's associated data (§6.3); the header
 * bytes are appended to it. `label` is the message-key purpose (pairwise by default).
 */
export function ratchetEncrypt(
  crypto: CryptoProvider,
  state: RatchetState,
  paddedPlaintext: Uint8Array,
  adPrefix: Uint8Array,
): RatchetEncryptResult {
  if (!state.CKs) throw new ProtocolError('NOT_INITIALIZED', { message: 'no sending chain', details: { what: 'sending chain' } });
  if (state.Ns >= MAX_COUNTER) {
    throw new ProtocolError('LIMIT_EXCEEDED', { message: 'sending chain exhausted', details: { limit: 'Ns', max: MAX_COUNTER } });
  }
  const [mk, CKs] = kdfCk(crypto, state.CKs);
  const headerBytes = encodeRatchetHeader({ dh: state.DHs.publicKey, pn: state.PN, n: state.Ns });
  const ad = new Uint8Array(adPrefix.length + headerBytes.length);
  ad.set(adPrefix);
  ad.set(headerBytes, adPrefix.length);
  const body = sealCommitted(crypto, deriveMessageKeys(crypto, mk, Label.pairwiseMessageKeys), paddedPlaintext, ad);
  return { state: { ...state, CKs, Ns: state.Ns + 1 }, headerBytes, body };
}

function limitError(max: number): ProtocolError<'LIMIT_EXCEEDED'> {
  return new ProtocolError('LIMIT_EXCEEDED', { message: 'message number too far ahead', details: { limit: 'maxForwardSkip', max } });
}

/**
 * Derives the keys of chain `ck` from `from` up to (not including) `until`, keeping only
 * the last `keep` of them (older ones would be evicted at once anyway).
 */
function skipKeys(
  crypto: CryptoProvider,
  ck: Uint8Array,
  dh: X25519PublicKey,
  dhHex: string,
  from: number,
  until: number,
  keep: number,
  out: Map<string, SkippedKey>,
): Uint8Array {
  let chain = ck;
  for (let n = from; n < until; n++) {
    const [mk, next] = kdfCk(crypto, chain);
    if (until - n <= keep) out.set(skippedId(dhHex, n), { dh, n, mk });
    chain = next;
  }
  return chain;
}

/**
 * The chain steps decrypting `message` would derive on `state` (skipped keys included),
 * computed without deriving anything. Callers use it to bound the work one message may
 * cause across several sessions.
 */
export function skipCost(state: RatchetState, message: RatchetMessage): number {
  const { header } = message;
  const dhHex = toHex(header.dh);
  if (state.MKSKIPPED.has(skippedId(dhHex, header.n))) return 0;
  if (state.DHr !== undefined && dhHex === toHex(state.DHr)) return Math.max(0, header.n - state.Nr);
  const pnSkip = state.CKr && header.pn > state.Nr ? header.pn - state.Nr : 0;
  return pnSkip + header.n;
}

/** The result of {@link ratchetDecrypt}. */
export interface RatchetDecryptResult {
  readonly state: RatchetState;
  readonly paddedPlaintext: Uint8Array;
}

/**
 * §3.5 RatchetDecrypt, with the checks that make it safe to run on attacker input:
 * duplicates are recognised (`DUPLICATE_MESSAGE`), jumps past `maxForwardSkip` are
 * refused before any key is derived (SECURITY.md B13), and a failure returns nothing, so
 * the caller keeps its old state.
 */
export async function ratchetDecrypt(
  crypto: CryptoProvider,
  state: RatchetState,
  message: RatchetMessage,
  adPrefix: Uint8Array,
  limits: RatchetLimits,
): Promise<RatchetDecryptResult> {
  const { header } = message;
  const ad = new Uint8Array(adPrefix.length + message.headerBytes.length);
  ad.set(adPrefix);
  ad.set(message.headerBytes, adPrefix.length);
  const dhHex = toHex(header.dh);

  // §3.5 TrySkippedMessageKeys
  const skipped = state.MKSKIPPED.get(skippedId(dhHex, header.n));
  if (skipped) {
    const paddedPlaintext = openCommitted(crypto, deriveMessageKeys(crypto, skipped.mk, Label.pairwiseMessageKeys), message.body, ad);
    const MKSKIPPED = new Map(state.MKSKIPPED);
    MKSKIPPED.delete(skippedId(dhHex, header.n)); // consumed keys are deleted (SECURITY.md D31)
    return { state: { ...state, MKSKIPPED }, paddedPlaintext };
  }

  const added = new Map<string, SkippedKey>();
  let { RK, DHs, DHr, CKs, CKr, Ns, Nr, PN, previousDHr } = state;
  const newChain = DHr === undefined || dhHex !== toHex(DHr);

  if (newChain) {
    if (state.previousDHr.includes(dhHex)) throw new ProtocolError('DUPLICATE_MESSAGE');
    // One budget for the whole message, checked before any DH or chain step, so a forged
    // header costs at most maxForwardSkip chain steps (no derivation storm).
    if (skipCost(state, message) > limits.maxForwardSkip) throw limitError(limits.maxForwardSkip);
    // §3.5 SkipMessageKeys(state, header.pn) on the current receiving chain
    if (CKr && DHr && header.pn > Nr) skipKeys(crypto, CKr, DHr, toHex(DHr), Nr, header.pn, limits.maxSkippedKeys, added);
    // §3.5 DHRatchet
    if (DHr) previousDHr = [...previousDHr, toHex(DHr)].slice(-Limits.maxPreviousChains);
    PN = Ns;
    Ns = 0;
    Nr = 0;
    DHr = header.dh;
    try {
      [RK, CKr] = kdfRk(crypto, RK, await crypto.x25519(DHs.secretKey, DHr));
      DHs = await crypto.x25519GenerateKeyPair();
      [RK, CKs] = kdfRk(crypto, RK, await crypto.x25519(DHs.secretKey, DHr));
    } catch (e) {
      // A low-order or non-canonical ratchet key in a header is an undecryptable
      // message like any other: the same error as every decrypt failure (§6.3).
      if (e instanceof ProtocolError && e.code === 'INVALID_KEY') throw decryptFailed();
      throw e;
    }
  } else if (header.n < Nr) {
    throw new ProtocolError('DUPLICATE_MESSAGE');
  } else if (header.n - Nr > limits.maxForwardSkip) {
    throw limitError(limits.maxForwardSkip);
  }
  if (!CKr || !DHr) throw decryptFailed();

  // §3.5 SkipMessageKeys(state, header.n), then the message's own key
  CKr = skipKeys(crypto, CKr, DHr, dhHex, Nr, header.n, limits.maxSkippedKeys, added);
  const [mk, nextCkr] = kdfCk(crypto, CKr);
  const paddedPlaintext = openCommitted(crypto, deriveMessageKeys(crypto, mk, Label.pairwiseMessageKeys), message.body, ad);

  let MKSKIPPED: ReadonlyMap<string, SkippedKey> = state.MKSKIPPED;
  if (added.size > 0) {
    const merged = new Map(state.MKSKIPPED);
    for (const [id, key] of added) merged.set(id, key);
    // Cap the store, evicting the oldest (SECURITY.md B13).
    for (const id of merged.keys()) {
      if (merged.size <= limits.maxSkippedKeys) break;
      merged.delete(id);
    }
    MKSKIPPED = merged;
  }
  return {
    state: { RK, DHs, DHr, CKs, CKr: nextCkr, Ns, Nr: header.n + 1, PN, MKSKIPPED, previousDHr },
    paddedPlaintext,
  };
}
