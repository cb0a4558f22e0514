/**
 * Child-process entry of the group benchmark (see group-isolation.ts):
 * `group-worker.ts <group-deadbolt | group-libsignal> [--quick] [--cpu-time]`. Each suite
 * module is imported only in its own process, so the Deadbolt process never loads
 * libsignal-client.
 *
 * `--cpu-time`: the harness's clock (`performance.now`, which harness.ts reads around every
 * timed run) reads this process's CPU time (user + system, all its threads) instead of the
 * wall clock, so time the process spends descheduled while other processes run is not
 * counted. Set before any suite is loaded; this process runs nothing but its suite.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import { serveSuite } from './isolation.js';

const suite = process.argv[2];
const quick = process.argv.includes('--quick');
if (process.argv.includes('--cpu-time')) {
  const cpuMs = (): number => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  Object.defineProperty(performance, 'now', { value: cpuMs, configurable: true });
}
if (suite === 'group-deadbolt') {
  const { groupDeadboltSuite } = await import('./group-deadbolt-suite.js');
  serveSuite(groupDeadboltSuite, { quick });
} else if (suite === 'group-libsignal') {
  const { groupLibsignalSuite } = await import('./group-libsignal-suite.js');
  serveSuite(groupLibsignalSuite, { quick });
} else {
  throw new Error(`unknown suite ${suite}`);
}
