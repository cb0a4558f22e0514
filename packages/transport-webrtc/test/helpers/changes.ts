/**
 * Waits on events (never sleeps): whatever can change what a test observes calls `poke`,
 * and each pending `until` checks its condition again, failing after the deadline
 * (`within`) with what it waited for. Test use only.
 */
import { within } from './stack.js';

/** Wakes waiters when anything observable changes. */
export class Changes {
  readonly #waiters = new Set<() => void>();
  poke = (): void => {
    for (const w of [...this.#waiters]) w();
  };
  until(check: () => boolean, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    let waiter!: () => void;
    const done = new Promise<void>((resolve) => {
      waiter = () => {
        if (check()) resolve();
      };
      this.#waiters.add(waiter);
    });
    return within(done, what).finally(() => this.#waiters.delete(waiter));
  }
}
