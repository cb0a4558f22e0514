/**
 * Device-link answers in transit (docs/relay-protocol.md PROVISION_PUT / PROVISION_TAKE,
 * docs/protocol.md §3.4): a sealed blob left by an authenticated device under a 16-byte
 * channel the new device chose, taken once by whoever names the channel.
 *
 * Memory only, never the store: a blob is useless after its 10-minute lifetime and is
 * sealed to a key the relay never sees, so losing it on restart costs a retry of the link,
 * while keeping it on disk would only keep metadata longer (SECURITY.md F43).
 *
 * Bounded (SECURITY.md F42): at most `maxBlobs` channels (a taken channel keeps a
 * SHA-256 tombstone until it expires, so a second different PUT stays refused and the
 * blob is never handed out twice) and `maxWaiters` waiting takes in total. Channels and
 * blobs are never logged.
 *
 * @module
 */
import { createHash } from 'node:crypto';

/** What {@link ProvisionTable.put} did. */
export type ProvisionPutResult =
  /** Kept until taken or expired. */
  | 'stored'
  /** Handed at once to a waiting take. */
  | 'delivered'
  /** The same bytes were already put on this channel (a retried PUT): nothing changed. */
  | 'unchanged'
  /** Other bytes were put on this channel: refused. */
  | 'conflict'
  /** The table is full. */
  | 'full';

export interface ProvisionTable {
  put(channel: Uint8Array, sealed: Uint8Array): ProvisionPutResult;
  /**
   * Takes the blob of `channel`, waiting up to `waitMs` for one; `undefined` if none came
   * (or a signal aborted the wait), `'busy'` if too many takes already wait.
   */
  take(channel: Uint8Array, waitMs: number, signals: readonly AbortSignal[]): Promise<Uint8Array | undefined | 'busy'>;
  /** Milliseconds until the oldest channel expires (what a refused PUT should wait). */
  retryAfterMs(): number;
  /** Channels held (blobs and tombstones). */
  readonly size: number;
  /** Takes waiting. */
  readonly waiting: number;
  /** Releases every waiting take (with nothing) and forgets every blob. */
  close(): void;
}

interface Entry {
  /** The blob until it is taken. */
  sealed: Uint8Array | undefined;
  /** SHA-256 of the blob, to recognise a retried PUT after the blob was taken. */
  readonly digest: string;
  readonly expiresAt: number;
}

interface Waiter {
  readonly resolve: (sealed: Uint8Array | undefined) => void;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function digestOf(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function createProvisionTable(options: { maxBlobs: number; maxWaiters: number; lifetimeMs: number; now: () => number }): ProvisionTable {
  /** Insertion order is creation order, and every entry lives `lifetimeMs`: oldest first is first to expire. */
  const entries = new Map<string, Entry>();
  const waiters = new Map<string, Set<Waiter>>();
  let waiting = 0;

  function sweep(t: number): void {
    for (const [key, e] of entries) {
      if (e.expiresAt > t) break;
      entries.delete(key);
    }
  }

  return {
    put(channel, sealed) {
      const t = options.now();
      sweep(t);
      const key = hex(channel);
      const digest = digestOf(sealed);
      const existing = entries.get(key);
      if (existing !== undefined) return existing.digest === digest ? 'unchanged' : 'conflict';
      if (entries.size >= options.maxBlobs) return 'full';
      const copy = sealed.slice();
      const first = waiters.get(key)?.values().next().value;
      entries.set(key, { sealed: first === undefined ? copy : undefined, digest, expiresAt: t + options.lifetimeMs });
      if (first === undefined) return 'stored';
      first.resolve(copy);
      return 'delivered';
    },

    take(channel, waitMs, signals) {
      sweep(options.now());
      const key = hex(channel);
      const e = entries.get(key);
      if (e?.sealed !== undefined) {
        const sealed = e.sealed;
        e.sealed = undefined; // taken: the tombstone stays until the channel expires
        return Promise.resolve(sealed);
      }
      if (waitMs <= 0 || signals.some((s) => s.aborted)) return Promise.resolve(undefined);
      if (waiting >= options.maxWaiters) return Promise.resolve('busy');
      return new Promise<Uint8Array | undefined>((resolve) => {
        let set = waiters.get(key);
        if (set === undefined) waiters.set(key, (set = new Set()));
        waiting++;
        const onAbort = (): void => waiter.resolve(undefined);
        const timer = setTimeout(onAbort, waitMs);
        const waiter: Waiter = {
          resolve(sealed) {
            const mine = waiters.get(key);
            if (mine === undefined || !mine.delete(waiter)) return; // settled already
            if (mine.size === 0) waiters.delete(key);
            waiting--;
            clearTimeout(timer);
            for (const s of signals) s.removeEventListener('abort', onAbort);
            resolve(sealed);
          },
        };
        set.add(waiter);
        for (const s of signals) s.addEventListener('abort', onAbort);
      });
    },

    retryAfterMs() {
      const oldest = entries.values().next().value;
      return oldest === undefined ? 0 : Math.max(1, oldest.expiresAt - options.now());
    },

    get size() {
      return entries.size;
    },

    get waiting() {
      return waiting;
    },

    close() {
      for (const set of [...waiters.values()]) for (const w of [...set]) w.resolve(undefined);
      entries.clear();
    },
  };
}
