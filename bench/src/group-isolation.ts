/**
 * Parent side of the group benchmark's process isolation: isolation.ts's
 * {@link IsolatedSuite}, with the children started from `group-worker.ts` (which runs
 * isolation.ts's `serveSuite` over the group suites).
 *
 * Why each library runs in its own process: see isolation.ts (libsignal's native code
 * slows allocation-heavy JavaScript that runs later in the same process).
 *
 * @module
 */
import { IsolatedSuite } from './isolation.js';

/** The group suites. */
export type GroupSuiteName = 'group-deadbolt' | 'group-libsignal';

/** Starts `group-worker.ts` for `suite`; its stdout goes to the parent's stderr (`--json` stays clean). */
export function startGroupSuite(suite: GroupSuiteName, args: readonly string[]): IsolatedSuite {
  return IsolatedSuite.start(suite, args, new URL('./group-worker.ts', import.meta.url));
}
