/**
 * The change log of one group and the resolution of concurrent changes
 * (docs/protocol.md §12.5).
 *
 * A log is a **base** state and a set of accepted changes above it, each valid on its
 * parent. The head is chosen greedily from the base: at each state, the child change with
 * the smallest `(class, changeHash)` wins, class 0 being revoking changes (removals and
 * demotions), so a removal always beats a concurrent addition. The head depends only on the
 * set of changes held, never on the order they arrived in: every member holding the same
 * changes holds the same head.
 *
 * States are not stored per change: an entry keeps its change and its state hash, and a
 * state is rebuilt by replaying changes from the base (without re-verifying signatures the
 * device already checked) only when a new change names it as parent or the base moves.
 *
 * @module
 */
import { InternalError } from '@deadbolt/spec';
import { toHex } from '../codec/bytes.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { Limits } from '../protocol/constants.js';
import { groupLimit } from './group-errors.js';
import { groupChangeHash, isRevoking, type SignedGroupChange } from './group-change.js';
import { applyChange } from './membership.js';
import { encodeGroupState, groupStateHash, type GroupState } from './group-state.js';

/** One accepted change (§12.5). */
export interface LogEntry {
  readonly change: SignedGroupChange;
  readonly changeHash: Uint8Array;
  /** The hash of the state this change makes. */
  readonly stateHash: Uint8Array;
}

/** A group's log: a base state and the accepted changes above it. */
export interface GroupLog {
  readonly base: GroupState;
  readonly baseHash: Uint8Array;
  readonly entries: readonly LogEntry[];
}

/** States known during one operation, by hex state hash (a replay cache). */
export type StateCache = Map<string, GroupState>;

/** Compares hashes as unsigned bytes. */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
}

/** The fork-choice order of §12.5: revoking changes first, then the smaller change hash. */
export function compareEntries(a: LogEntry, b: LogEntry): number {
  const ca = isRevoking(a.change) ? 0 : 1;
  const cb = isRevoking(b.change) ? 0 : 1;
  return ca - cb || compareBytes(a.changeHash, b.changeHash);
}

function childrenIndex(log: GroupLog): Map<string, LogEntry[]> {
  const children = new Map<string, LogEntry[]>();
  for (const e of log.entries) {
    const key = toHex(e.change.parentHash);
    const list = children.get(key);
    if (list) list.push(e);
    else children.set(key, [e]);
  }
  return children;
}

/**
 * The head's chain of entries from the base (§12.5): at each state, the smallest child.
 * Bounded by the number of entries (epochs strictly increase along a chain).
 */
export function headPath(log: GroupLog): LogEntry[] {
  const children = childrenIndex(log);
  const path: LogEntry[] = [];
  let at = toHex(log.baseHash);
  for (let i = 0; i <= log.entries.length; i++) {
    const kids = children.get(at);
    if (!kids || kids.length === 0) break;
    let best = kids[0] as LogEntry;
    for (const k of kids) if (compareEntries(k, best) < 0) best = k;
    path.push(best);
    at = toHex(best.stateHash);
  }
  return path;
}

/** The hash of the head state. */
export function headHash(log: GroupLog): Uint8Array {
  const path = headPath(log);
  return path.length === 0 ? log.baseHash : (path[path.length - 1] as LogEntry).stateHash;
}

/** The entries from the base to the state `stateHash` (empty for the base), or undefined. */
function pathTo(log: GroupLog, stateHash: Uint8Array): LogEntry[] | undefined {
  const byState = new Map(log.entries.map((e) => [toHex(e.stateHash), e] as const));
  const baseHex = toHex(log.baseHash);
  const out: LogEntry[] = [];
  let at = toHex(stateHash);
  for (let i = 0; i <= log.entries.length; i++) {
    if (at === baseHex) return out.reverse();
    const e = byState.get(at);
    if (!e) return undefined;
    out.push(e);
    at = toHex(e.change.parentHash);
  }
  return undefined;
}

/** Whether `stateHash` is the base or the state of an entry. */
export function knowsState(log: GroupLog, stateHash: Uint8Array): boolean {
  const hex = toHex(stateHash);
  return hex === toHex(log.baseHash) || log.entries.some((e) => toHex(e.stateHash) === hex);
}

/**
 * The state with hash `stateHash`, replaying verified changes from the base (or from the
 * nearest state in `cache`). Undefined if the log does not hold it.
 */
export async function stateAt(crypto: CryptoProvider, log: GroupLog, stateHash: Uint8Array, cache: StateCache): Promise<GroupState | undefined> {
  const hit = cache.get(toHex(stateHash));
  if (hit) return hit;
  const path = pathTo(log, stateHash);
  if (!path) return undefined;
  let state = log.base;
  let hash = log.baseHash;
  let start = 0;
  for (let i = path.length - 1; i >= 0; i--) {
    const cached = cache.get(toHex((path[i] as LogEntry).stateHash));
    if (cached) {
      state = cached;
      hash = (path[i] as LogEntry).stateHash;
      start = i + 1;
      break;
    }
  }
  for (let i = start; i < path.length; i++) {
    const e = path[i] as LogEntry;
    // Replaying changes this device verified before it stored them (§12.5).
    state = await applyChange(crypto, state, hash, e.change, e.changeHash, { verify: false });
    hash = e.stateHash;
    cache.set(toHex(hash), state);
  }
  return state;
}

/** The outcome of offering a change to a log. */
export type InsertOutcome =
  | { readonly kind: 'duplicate' }
  /** The parent is unknown and the change is newer than the base: hold it (§12.5 step 3). */
  | { readonly kind: 'pending' }
  /** The parent is unknown and the change is not newer than the base: drop it. */
  | { readonly kind: 'stale' }
  | { readonly kind: 'inserted'; readonly log: GroupLog; readonly entry: LogEntry; readonly state: GroupState };

/**
 * Offers a change to the log (§12.5 steps 1–3). A change whose parent is known is verified
 * and authorized (§12.4): a failure throws and leaves the log as it was.
 */
export async function insertChange(crypto: CryptoProvider, log: GroupLog, change: SignedGroupChange, cache: StateCache): Promise<InsertOutcome> {
  const changeHash = groupChangeHash(crypto, change);
  const hex = toHex(changeHash);
  if (log.entries.some((e) => toHex(e.changeHash) === hex)) return { kind: 'duplicate' };
  const parent = await stateAt(crypto, log, change.parentHash, cache);
  if (!parent) return change.epoch <= log.base.epoch ? { kind: 'stale' } : { kind: 'pending' };
  const state = await applyChange(crypto, parent, change.parentHash, change, changeHash, { verify: true });
  if (log.entries.length >= Limits.maxGroupLogChanges) throw groupLimit('maxGroupLogChanges', Limits.maxGroupLogChanges);
  const stateHash = groupStateHash(crypto, encodeGroupState(state));
  cache.set(toHex(stateHash), state);
  const entry: LogEntry = { change, changeHash, stateHash };
  return { kind: 'inserted', log: { ...log, entries: [...log.entries, entry] }, entry, state };
}

/** The head of a log, with the base moved forward if the head is past the window (§12.5 step 5). */
export interface Resolved {
  readonly log: GroupLog;
  readonly head: GroupState;
  readonly headHash: Uint8Array;
  /** The head's chain from the log's base before the window moved (for orphan detection). */
  readonly path: readonly LogEntry[];
  /** Entries dropped because they do not descend from the new base. */
  readonly dropped: readonly LogEntry[];
}

/** Computes the head and applies the window. */
export async function resolveHead(crypto: CryptoProvider, log: GroupLog, cache: StateCache, maxDepth = Limits.maxGroupReorgDepth): Promise<Resolved> {
  const path = headPath(log);
  const tip = path[path.length - 1];
  const hash = tip ? tip.stateHash : log.baseHash;
  const head = await stateAt(crypto, log, hash, cache);
  if (!head) throw new InternalError('group log: the head is not in the log');
  if (head.epoch - log.base.epoch <= maxDepth) return { log, head, headHash: hash, path, dropped: [] };

  // Move the base along the head's chain to epoch head.epoch - maxDepth.
  const cut = path.findIndex((e) => e.change.epoch === head.epoch - maxDepth);
  const newBaseEntry = path[cut] as LogEntry;
  const newBase = await stateAt(crypto, log, newBaseEntry.stateHash, cache);
  if (!newBase) throw new InternalError('group log: the new base is not on the head chain');
  // Keep only the descendants of the new base.
  const children = childrenIndex(log);
  const keep = new Set<string>();
  const stack = [toHex(newBaseEntry.stateHash)];
  while (stack.length > 0) {
    for (const k of children.get(stack.pop() as string) ?? []) {
      const h = toHex(k.changeHash);
      if (!keep.has(h)) {
        keep.add(h);
        stack.push(toHex(k.stateHash));
      }
    }
  }
  const entries = log.entries.filter((e) => keep.has(toHex(e.changeHash)));
  const dropped = log.entries.filter((e) => !keep.has(toHex(e.changeHash)));
  return { log: { base: newBase, baseHash: newBaseEntry.stateHash, entries }, head, headHash: hash, path, dropped };
}
