/**
 * The parent side of a bench whose libraries run in child processes (`pnpm bench`,
 * `pnpm bench:group`; isolation.ts): look-ups of what the suites prepared and reported,
 * and the timed rounds with the contention watch around them.
 *
 * @module
 */
import { interleaveRuns, ownCpuMs, watchContention, type Contention, type Measurement, type PreparedBench } from './harness.js';
import type { IsolatedSuite } from './isolation.js';

/** A look-up of `items` by name that throws `missing(name)` for a name none has. */
export function byName<T extends { readonly name: string }>(items: Iterable<T>, missing: (name: string) => string): (name: string) => T {
  const map = new Map<string, T>();
  for (const item of items) map.set(item.name, item);
  return (name) => {
    const item = map.get(name);
    if (!item) throw new Error(missing(name));
    return item;
  };
}

/** Builds and warms up `suite`'s benchmarks (in its process); returns them by name. */
export async function prepareSuite(suite: IsolatedSuite, label: string): Promise<(name: string) => PreparedBench> {
  return byName(await suite.prepare(), (name) => `${label}: no benchmark ${name}`);
}

/** A look-up of a suite's non-rate figures (`IsolatedSuite.info`) that throws for a missing key. */
export function infoReader(info: Record<string, number>, label: string): (key: string) => number {
  return (key) => {
    const v = info[key];
    if (v === undefined) throw new Error(`${label}: no ${key}`);
    return v;
  };
}

/** The medians of {@link timedRounds}, by name, and what other processes did meanwhile. */
export interface Rounds {
  readonly get: (name: string) => Measurement;
  readonly contention: Contention;
}

/**
 * Takes 3 rounds of `order`'s timed runs (harness.ts `interleaveRuns`), logging each round,
 * while watching contention: this process's CPU and `suites`' count as the benchmark's own.
 */
export async function timedRounds(order: readonly PreparedBench[], suites: readonly IsolatedSuite[], label: string, log: (s: string) => void): Promise<Rounds> {
  const contention = await watchContention(async () => {
    let ms = ownCpuMs();
    for (const s of suites) ms += await s.cpuMs();
    return ms;
  });
  const results = await interleaveRuns(order, { onRound: (r) => log(`round ${r} of 3...`) });
  return { get: byName(results, (name) => `${label}: no result for ${name}`), contention: await contention() };
}
