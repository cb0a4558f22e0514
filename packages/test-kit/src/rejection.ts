/**
 * The error a promise rejects with, for tests that check a rejection's type and details.
 *
 * @module
 */

/**
 * Resolves with what `promise` rejects with; rejects if it resolves instead.
 *
 * @example
 * ```ts
 * const e = await rejectionOf(storage.get(['k']));
 * expect(isDeadboltError(e, 'CLOSED')).toBe(true);
 * ```
 */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection, but the promise resolved');
}
