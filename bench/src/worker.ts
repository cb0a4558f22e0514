/**
 * Child-process entry of the benchmark (see isolation.ts): `worker.ts <suite> [--quick]`.
 * Each suite module is imported only in its own process, so the Deadbolt process never
 * loads libsignal-client.
 *
 * @module
 */
import { serveSuite } from './isolation.js';

const suite = process.argv[2];
const quick = process.argv.includes('--quick');
if (suite === 'deadbolt') {
  const { deadboltSuite } = await import('./deadbolt-suite.js');
  serveSuite(deadboltSuite, { quick });
} else if (suite === 'libsignal') {
  const { libsignalSuite } = await import('./libsignal-suite.js');
  serveSuite(libsignalSuite, { quick });
} else {
  throw new Error(`unknown suite ${suite}`);
}
