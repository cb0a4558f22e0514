/**
 * Timers a test fires itself, so that a bound (a connection attempt's) ends exactly when
 * the test says, not when a busy machine happens to let it.
 */
import type { Timers } from '../../src/index.js';

export class ManualTimers implements Timers {
  readonly #pending = new Map<number, { callback: () => void; ms: number }>();
  #next = 1;

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#pending.set(id, { callback, ms });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#pending.delete(handle as number);
  }

  /** Timers pending with this delay. */
  count(ms: number): number {
    return [...this.#pending.values()].filter((t) => t.ms === ms).length;
  }

  /** Fires every pending timer with this delay; returns how many. */
  fire(ms: number): number {
    const due = [...this.#pending.entries()].filter(([, t]) => t.ms === ms);
    for (const [id, t] of due) {
      this.#pending.delete(id);
      t.callback();
    }
    return due.length;
  }
}
