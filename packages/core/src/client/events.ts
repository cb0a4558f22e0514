/**
 * A small typed event emitter. Listeners run synchronously in registration order; a
 * throwing listener (or, for {@link Emitter.emitSettled}, a rejected promise it returned)
 * is reported to the `error` listeners and never breaks delivery.
 *
 * @module
 */

/**
 * Calls `listener` for `event`; returns a function that removes it. A listener may return a
 * promise: for the message events, the message counts as handled once it settles
 * (docs/protocol.md §11.4).
 */
export type Subscribe<E> = <K extends keyof E>(event: K, listener: (payload: E[K]) => unknown) => () => void;

/** An emitter over the event map `E`. */
export class Emitter<E extends { error: unknown }> {
  readonly #listeners = new Map<keyof E, Set<(payload: never) => void>>();

  on<K extends keyof E>(event: K, listener: (payload: E[K]) => unknown): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener as (payload: never) => void);
    return () => set.delete(listener as (payload: never) => void);
  }

  emit<K extends keyof E>(event: K, payload: E[K]): void {
    for (const listener of [...(this.#listeners.get(event) ?? [])]) {
      try {
        (listener as (p: E[K]) => void)(payload);
      } catch (e) {
        if (event !== 'error') this.emit('error', e as E['error']);
      }
    }
  }

  /**
   * Emits like {@link emit}, and resolves once every listener returned and every promise a
   * listener returned settled (a rejection is reported to the `error` listeners). Used for
   * the events whose handling is recorded (announcements, docs/protocol.md §11.4).
   */
  async emitSettled<K extends keyof E>(event: K, payload: E[K]): Promise<void> {
    const pending: Promise<unknown>[] = [];
    for (const listener of [...(this.#listeners.get(event) ?? [])]) {
      try {
        const result: unknown = (listener as (p: E[K]) => unknown)(payload);
        if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') pending.push(Promise.resolve(result));
      } catch (e) {
        if (event !== 'error') this.emit('error', e as E['error']);
      }
    }
    if (pending.length === 0) return;
    for (const r of await Promise.allSettled(pending)) {
      if (r.status === 'rejected' && event !== 'error') this.emit('error', r.reason as E['error']);
    }
  }

  clear(): void {
    this.#listeners.clear();
  }
}
