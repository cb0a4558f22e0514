/** The error `fn` throws, or undefined when it returns: lets a loop over vectors collect failures instead of stopping at the first. */
export function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}
