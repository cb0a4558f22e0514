/**
 * What the page bundle gets for `import ... from 'vitest'` (an esbuild alias set in
 * chromium-harness.ts): vitest's own `expect` matchers (`@vitest/expect`, the chai plugin
 * vitest itself is built from), so the shared conformance cases run in the page
 * unchanged, with the same assertions as in Node. Nothing is weakened: a failing
 * assertion throws the same `AssertionError`, which the page reports back to the vitest
 * test in Node.
 *
 * `describe`/`it` exist only because `storage-conformance.ts` imports them for
 * `describeStorageConformance`, which the page never calls; tests are registered in Node.
 */
import { chai, JestAsymmetricMatchers, JestChaiExpect, JestExtend } from '@vitest/expect';

chai.use(JestExtend);
chai.use(JestChaiExpect);
chai.use(JestAsymmetricMatchers);

/** vitest's `expect(value, message?)`, without the test-runner state the cases do not use. */
export const expect = (value: unknown, message?: string): Chai.Assertion => chai.expect(value, message);

function registeredInNode(): never {
  throw new Error('vitest describe/it cannot run in the page: tests are registered by the vitest file in Node');
}
export const describe = registeredInNode;
export const it = registeredInNode;
