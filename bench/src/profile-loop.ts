/**
 * The loop profile.ts and group-profile.ts run their workload in: V8's CPU profiler on only
 * around the timed loop (sampling every 100 µs), so that the profile holds nothing but the
 * workload; the profile is written as a `.cpuprofile` file (cpuprofile-top.ts lists it).
 *
 * @module
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';

/** What {@link profileLoop} runs, for how long, and where the profile goes. */
export interface ProfileLoop {
  /** The workload's name, for the closing line on stderr. */
  readonly workload: string;
  readonly seconds: number;
  /** The `.cpuprofile` file written. */
  readonly output: string;
  /** Stop after this many operations even if `seconds` have not elapsed (default: no limit). */
  readonly limit?: number;
}

/** Runs `op` one call at a time for `seconds` (or `limit` calls) under the profiler, writes the profile and reports the rate. */
export async function profileLoop(op: () => Promise<unknown>, { workload, seconds, output, limit = Number.POSITIVE_INFINITY }: ProfileLoop): Promise<void> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  let n = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end && n < limit) {
    await op();
    n++;
  }
  const elapsed = (performance.now() - start) / 1000;
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  writeFileSync(output, JSON.stringify(profile));
  process.stderr.write(`${workload}: ${n} ops in ${elapsed.toFixed(1)} s (${Math.round(n / elapsed)}/s with the profiler on) -> ${output}\n`);
}
