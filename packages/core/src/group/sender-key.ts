/**
 * Sender-key chains (docs/protocol.md §12.7): the symmetric ratchet each member
 * device encrypts its group messages with, and the receiving side's per-sender state.
 *
 * ```
 * MK_g     = HMAC-SHA256(CK_g, 0x01)
 * CK_{g+1} = HMAC-SHA256(CK_g, 0x02)
 * ```
 *
 * the KDF_CK of docs/protocol.md §6.1 (as libsignal's sender keys). `CK_0` is random and
 * belongs to this chain alone; message keys are expanded under their own label
 * (`Deadbolt_v1_GroupMessageKeys`, §12.7.1), so a group key never opens a pairwise message.
 *
 * Receivers never derive anything for a message that fails a cheap check: the generation
 * bounds are checked first (§12.8.3 step 4), the signature next, and only then are keys
 * derived, at most `maxGroupForwardSkip` of them. Skipped keys are capped per sender device
 * and evict the oldest. Every function here is pure: states in, new states out.
 *
 * @module
 */
import { ProtocolError } from '@deadbolt/spec';
import type { CryptoProvider } from '../crypto/provider.js';
import { CHAIN_MESSAGE_KEY_SEED, CHAIN_NEXT_KEY_SEED, Limits } from '../protocol/constants.js';
import { groupLimit, unknownGroupKey } from './group-errors.js';

/** One step of the chain: the message key of this generation and the next chain key. */
export function chainStep(crypto: CryptoProvider, chainKey: Uint8Array): { readonly mk: Uint8Array; readonly next: Uint8Array } {
  return { mk: crypto.hmacSha256(chainKey, CHAIN_MESSAGE_KEY_SEED), next: crypto.hmacSha256(chainKey, CHAIN_NEXT_KEY_SEED) };
}

/** A message key kept for a generation that was skipped. */
export interface SkippedKey {
  readonly generation: number;
  readonly mk: Uint8Array;
}

/** A sender key as a receiver holds it (§12.11 SenderKeyState). */
export interface SenderKeyState {
  readonly keyId: number;
  readonly createdEpoch: number;
  /** The sender-chain signing key (SSK public) every message under this key is signed with. */
  readonly signingKey: Uint8Array;
  /** The next generation not yet received in order. */
  readonly nextGeneration: number;
  /** `CK_nextGeneration`. */
  readonly chainKey: Uint8Array;
  /** Keys of skipped generations, ascending. */
  readonly skipped: readonly SkippedKey[];
}

/** Everything a receiver keeps about one sender device of one group (§12.11 SenderRecord). */
export interface SenderRecord {
  /**
   * The retirement floor: keys with a smaller id were deleted (or are older than every key
   * kept) and are never installed again, so their messages cannot be replayed (§12.7.2).
   */
  readonly minKeyId: number;
  /** At most `maxGroupSenderKeysPerDevice`, largest key id first. */
  readonly keys: readonly SenderKeyState[];
}

/** What installing a distributed key did (§12.7.2 step 5). */
export type InstallOutcome = 'installed' | 'known' | 'stale';

/** A key as distributed: the fields of a `SenderKeyDistribution` (§12.7.2). */
export interface DistributedKey {
  readonly keyId: number;
  readonly createdEpoch: number;
  readonly generation: number;
  readonly chainKey: Uint8Array;
  readonly signingKey: Uint8Array;
}

/**
 * Installs a distributed key (§12.7.2 step 5). A key already held is left alone (a repeat
 * never rewinds a chain); a key below the retirement floor, or older than every key kept
 * when the record is full, is ignored (a deleted key is never re-installed, so its old
 * messages cannot be replayed). An older key never seen before is installed: its
 * distribution may simply have arrived after a newer one's.
 */
export function installSenderKey(record: SenderRecord | undefined, key: DistributedKey): { readonly outcome: InstallOutcome; readonly record?: SenderRecord } {
  if (key.generation >= Limits.maxGroupMessagesPerKey) throw groupLimit('maxGroupMessagesPerKey', Limits.maxGroupMessagesPerKey);
  const keys = record?.keys ?? [];
  if (keys.some((k) => k.keyId === key.keyId)) return { outcome: 'known' };
  if (record && isRetired(record, key.keyId)) return { outcome: 'stale' };
  const state: SenderKeyState = {
    keyId: key.keyId,
    createdEpoch: key.createdEpoch,
    signingKey: key.signingKey.slice(),
    nextGeneration: key.generation,
    chainKey: key.chainKey.slice(),
    skipped: [],
  };
  const next = [...keys, state].sort((a, b) => b.keyId - a.keyId);
  let minKeyId = record?.minKeyId ?? 0;
  // Beyond the cap the smallest key id goes, and the floor rises past it.
  while (next.length > Limits.maxGroupSenderKeysPerDevice) minKeyId = (next.pop() as SenderKeyState).keyId + 1;
  return { outcome: 'installed', record: { minKeyId, keys: next } };
}

/**
 * Whether a key id the record does not hold can never be installed (§12.7.2): below the
 * retirement floor, or older than every key kept when the record is full.
 */
export function isRetired(record: SenderRecord, keyId: number): boolean {
  const oldest = record.keys[record.keys.length - 1];
  return keyId < record.minKeyId || (record.keys.length >= Limits.maxGroupSenderKeysPerDevice && oldest !== undefined && keyId < oldest.keyId);
}

/** How a message's generation will be served, decided before any derivation. */
export type GenerationPlan = { readonly kind: 'skipped'; readonly index: number } | { readonly kind: 'forward'; readonly steps: number };

/**
 * The cheap checks of §12.8.3 step 4, with no derivation: a generation at or past the
 * per-key maximum or too far ahead is `LIMIT_EXCEEDED`; an old generation without a
 * skipped key is `DUPLICATE_MESSAGE`.
 */
export function planGeneration(state: SenderKeyState, generation: number, maxForwardSkip: number): GenerationPlan {
  if (generation >= Limits.maxGroupMessagesPerKey) throw groupLimit('maxGroupMessagesPerKey', Limits.maxGroupMessagesPerKey);
  if (generation < state.nextGeneration) {
    const index = state.skipped.findIndex((s) => s.generation === generation);
    if (index === -1) throw new ProtocolError('DUPLICATE_MESSAGE');
    return { kind: 'skipped', index };
  }
  const steps = generation - state.nextGeneration;
  if (steps > maxForwardSkip) throw groupLimit('maxGroupForwardSkip', maxForwardSkip);
  return { kind: 'forward', steps };
}

/**
 * The message key for a planned generation, and the sender record with that key consumed
 * (deleted) and any skipped keys stored. Derives `steps + 1` chain steps at most.
 */
export function takeMessageKey(
  crypto: CryptoProvider,
  record: SenderRecord,
  keyIndex: number,
  plan: GenerationPlan,
  maxSkippedKeys: number,
): { readonly mk: Uint8Array; readonly record: SenderRecord } {
  const state = record.keys[keyIndex];
  if (!state) throw unknownGroupKey('sender key');
  let next: SenderKeyState;
  let mk: Uint8Array;
  if (plan.kind === 'skipped') {
    mk = (state.skipped[plan.index] as SkippedKey).mk;
    next = { ...state, skipped: state.skipped.filter((_, i) => i !== plan.index) };
  } else {
    const skipped = state.skipped.slice();
    let ck = state.chainKey;
    // Of one long skip only the newest `maxSkippedKeys` keys can survive the cap below;
    // the older ones are stepped over without being kept.
    const keepFrom = plan.steps - maxSkippedKeys;
    for (let i = 0; i < plan.steps; i++) {
      const step = chainStep(crypto, ck);
      if (i >= keepFrom) skipped.push({ generation: state.nextGeneration + i, mk: step.mk });
      ck = step.next;
    }
    const step = chainStep(crypto, ck);
    mk = step.mk;
    next = { ...state, nextGeneration: state.nextGeneration + plan.steps + 1, chainKey: step.next, skipped };
  }
  const keys = record.keys.slice();
  keys[keyIndex] = next;
  return { mk, record: { minKeyId: record.minKeyId, keys: capSkipped(keys, maxSkippedKeys) } };
}

/**
 * Evicts skipped keys until at most `max` remain for the sender device: the oldest key's
 * first (keys are ordered largest id first), lowest generation first (§12.8.3 step 6).
 */
function capSkipped(keys: SenderKeyState[], max: number): SenderKeyState[] {
  let total = 0;
  for (const k of keys) total += k.skipped.length;
  for (let i = keys.length - 1; i >= 0 && total > max; i--) {
    const k = keys[i] as SenderKeyState;
    const drop = Math.min(k.skipped.length, total - max);
    if (drop > 0) {
      keys[i] = { ...k, skipped: k.skipped.slice(drop) };
      total -= drop;
    }
  }
  return keys;
}

/** Total skipped keys held for a sender device. */
export function skippedCount(record: SenderRecord): number {
  let n = 0;
  for (const k of record.keys) n += k.skipped.length;
  return n;
}
