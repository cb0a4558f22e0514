/**
 * In-process wake-ups for mailboxes: SEND notifies, WebSocket connections and long-poll
 * FETCH waiters listen. Holds no message data, only listeners, which are removed when
 * their connection or request ends.
 *
 * @module
 */

export interface MailboxHub {
  /** Calls `listener` whenever mail arrives for `key`; returns the unsubscribe function. */
  subscribe(key: string, listener: () => void): () => void;
  /** Wakes every listener of `key`. */
  notify(key: string): void;
}

export function createMailboxHub(): MailboxHub {
  const listeners = new Map<string, Set<() => void>>();
  return {
    subscribe(key, listener) {
      let set = listeners.get(key);
      if (set === undefined) listeners.set(key, (set = new Set()));
      set.add(listener);
      return () => {
        const s = listeners.get(key);
        if (s === undefined) return;
        s.delete(listener);
        if (s.size === 0) listeners.delete(key);
      };
    },
    notify(key) {
      const set = listeners.get(key);
      if (set === undefined) return;
      for (const l of [...set]) {
        try {
          l();
        } catch {
          // A listener's failure is its own; the others still wake.
        }
      }
    },
  };
}
