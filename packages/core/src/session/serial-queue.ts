/**
 * Runs async tasks one at a time, in call order. The session manager runs every
 * operation through one queue, so two decrypts never read the same session state and
 * both write a successor (which would fork the ratchet), and two initial messages never
 * both consume one one-time prekey. Cross-process exclusion is the storage adapter's
 * lock (SECURITY.md D26).
 *
 * @module
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  /** Runs `task` after every task queued before it; its result or error is passed through. */
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task, task);
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
