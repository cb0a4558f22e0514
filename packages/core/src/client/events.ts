/**
 * A small typed event emitter. Listeners run synchronously in registration order; a
 * throwing listener is reported to the `error` listeners and never breaks delivery.
 *
 * @module
 */

/** Calls `listener` for `event`; returns a function that removes it. */
export type Subscribe<E> = <K extends keyof E>(event: K, listener: (payload: E[K]) => void) => () => void;

/** An emitter over the event map `E`. */
export class Emitter<E extends { error: unknown }> {
  readonly #listeners = new Map<keyof E, Set<(payload: never) => void>>();

  on<K extends keyof E>(event: K, listener: (payload: E[K]) => void): () => void {
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

  clear(): void {
    this.#listeners.clear();
  }
}
