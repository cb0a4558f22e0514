/**
 * Settings of the group benchmark (`pnpm bench:group`), shared by its suites and its
 * orchestrator.
 *
 * @module
 */

/** Group sizes of the sender-cost figure (members, one device each, the sender included). */
export const SEND_SIZES = [2, 100, 1000] as const;

/** Members of the group one member is removed from (figure 3). */
export const REMOVAL_MEMBERS = 100;

/** Target of figure 1: the 1,000-member send costs at most this multiple of the 2-member one. */
export const SEND_SCALING_TARGET = 1.2;

/** Target of figure 2: Deadbolt's encrypt + decrypt rate at least this multiple of libsignal's. */
export const ROUND_TRIP_TARGET = 1.2;

/** How long and how many times to measure. */
export interface GroupConfig {
  /** Minimum duration of each of the 3 timed runs of a figure (runs are also capped by `maxOpsPerRun`). */
  readonly figureMs: number;
  /** The same for each primitive. */
  readonly primitiveMs: number;
  /** Operations of the untimed warm-up of each Deadbolt figure. */
  readonly warmupOps: number;
  /**
   * Operations of one timed run at most: a run must fit in one sender key (10,000 messages,
   * §12.7.3), which is rotated untimed between runs when it has no room left.
   */
  readonly maxOpsPerRun: number;
}

export const GROUP_FULL: GroupConfig = { figureMs: 1000, primitiveMs: 300, warmupOps: 2000, maxOpsPerRun: 9000 };
/** `--quick`: tiny iteration counts, for the smoke test. The numbers mean nothing. */
export const GROUP_QUICK: GroupConfig = { figureMs: 5, primitiveMs: 2, warmupOps: 3, maxOpsPerRun: 20 };

export function groupConfig(quick: boolean): GroupConfig {
  return quick ? GROUP_QUICK : GROUP_FULL;
}
