/**
 * Timers a test fires by hand, for adapters that take injectable timers (the transports'
 * `timers` option): a test sees every delay the adapter asked for (backoff, timeouts)
 * and decides when each fires, with no waiting.
 *
 * @module
 */

/** Timers a test fires by hand, recording each requested delay. */
export interface ManualTimers {
  readonly timers: { setTimeout(callback: () => void, ms: number): unknown; clearTimeout(handle: unknown): void };
  /** Delays of every timer ever set, in order. */
  readonly requested: number[];
  /** Delays of the timers set and not yet fired or cleared. */
  pending(): number[];
  /** Fires (once) every pending timer whose delay matches; returns how many fired. */
  fire(match: (ms: number) => boolean): number;
}

/**
 * Creates {@link ManualTimers}.
 *
 * @example
 * ```ts
 * const clock = manualTimers();
 * const transport = createWebSocketTransport({ url, WebSocket, timers: clock.timers });
 * clock.fire((ms) => ms >= 10_000); // the connect timeout
 * ```
 */
export function manualTimers(): ManualTimers {
  const live = new Map<number, { callback: () => void; ms: number }>();
  const requested: number[] = [];
  let next = 1;
  return {
    timers: {
      setTimeout(callback, ms) {
        const id = next++;
        live.set(id, { callback, ms });
        requested.push(ms);
        return id;
      },
      clearTimeout(handle) {
        live.delete(handle as number);
      },
    },
    requested,
    pending: () => [...live.values()].map((t) => t.ms),
    fire(match) {
      let fired = 0;
      for (const [id, t] of [...live]) {
        if (!match(t.ms)) continue;
        live.delete(id);
        fired++;
        t.callback();
      }
      return fired;
    },
  };
}
