/**
 * A small benchmark harness, reusable by every bench in this package.
 *
 * - {@link measure}: operations per second of a function, as the **median of 3 timed runs**
 *   of at least `minMs` each, after an untimed warm-up.
 * - {@link measurePool}: the same for operations that consume pre-generated inputs (session
 *   set-ups consume prekey bundles): the inputs of each run are generated before the run,
 *   outside the timed loop.
 * - {@link measureInterleaved} / {@link interleaveRuns}: several benchmarks with their runs
 *   taken round-robin, so that what they are compared with was measured in the same
 *   stretches of time ({@link prepareBench} warms one up; isolation.ts runs them in child
 *   processes).
 * - {@link watchContention}: how busy other processes kept the machine meanwhile.
 * - {@link printTable}: a plain-text table.
 * - {@link rateLine} / {@link valueLine}: the `--json` output, one JSON object per line.
 *
 * Benchmarks are scripts, not tests: nothing here asserts a speed.
 *
 * @module
 */
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';

/** Options of {@link measure}. */
export interface MeasureOptions {
  /** Minimum duration of each timed run, in milliseconds (default 1000). */
  readonly minMs?: number;
  /** Untimed warm-up before the runs, in milliseconds (default: a quarter of `minMs`, at most 300). */
  readonly warmupMs?: number;
  /** Stop a run after this many operations even if `minMs` has not elapsed. */
  readonly maxOps?: number;
  /** Timed runs; the median is reported (default 3). */
  readonly runs?: number;
}

/** The result of a measurement. */
export interface Measurement {
  readonly name: string;
  /** Median operations per second over the runs. */
  readonly perSecond: number;
  /** Operations per second of each run, in run order. */
  readonly runs: readonly number[];
  /** Operations executed in the timed runs, in total. */
  readonly ops: number;
}

type Op = () => unknown;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Runs `fn` for at least `ms` milliseconds (or `maxOps` operations) and returns the
 * operation count and the elapsed time. The clock is read every `stride` operations, so
 * that reading it costs nothing measurable even for sub-microsecond operations. A promise
 * returned by `fn` is awaited; a synchronous `fn` is never awaited (an `await` per call
 * would add a microtask to every operation).
 */
async function runFor(fn: Op, ms: number, maxOps: number, stride: number): Promise<{ ops: number; elapsed: number }> {
  let ops = 0;
  const start = performance.now();
  let elapsed = 0;
  for (;;) {
    const n = Math.min(stride, maxOps - ops);
    for (let i = 0; i < n; i++) {
      const r = fn();
      if (isThenable(r)) await r;
    }
    ops += n;
    elapsed = performance.now() - start;
    if (elapsed >= ms || ops >= maxOps) return { ops, elapsed };
  }
}

/** A benchmark of a plain operation, for {@link measureInterleaved}. */
export interface OpBench {
  readonly name: string;
  readonly fn: Op;
  /** Minimum duration of each timed run, in milliseconds (default 1000). */
  readonly minMs?: number;
  /** Untimed warm-up, in milliseconds (default: a quarter of `minMs`, at most 300). */
  readonly warmupMs?: number;
  /** Stop a run after this many operations even if `minMs` has not elapsed. */
  readonly maxOps?: number;
}

/**
 * A benchmark of an operation that consumes one pre-generated input per call, for
 * {@link measureInterleaved}. The warm-up runs `warmupOps` inputs and estimates the rate;
 * before each timed run, `generate(n)` makes enough inputs for about `minMs` at that rate
 * (untimed), and the run times them all.
 */
export interface PoolBench<T> {
  readonly name: string;
  // Method syntax on purpose: a PoolBench<T> is then usable where a PoolBench<unknown> is
  // expected (the benches of one interleaved measurement consume different inputs).
  generate(n: number): Promise<readonly T[]>;
  fn(input: T): unknown;
  /** Target duration of each timed run, in milliseconds (default 1000). */
  readonly minMs?: number;
  /** Inputs used by the warm-up, which also estimates the rate (default 40). */
  readonly warmupOps?: number;
  /** Never generate fewer than this many inputs for one run (default 5). */
  readonly minOpsPerRun?: number;
  /** Never generate more than this many inputs for one run (default 5000). */
  readonly maxOpsPerRun?: number;
}

function isPool(b: OpBench | PoolBench<unknown>): b is PoolBench<unknown> {
  return 'generate' in b;
}

/** The outcome of one timed run. */
export interface RunResult {
  readonly ops: number;
  /** Milliseconds. */
  readonly elapsed: number;
}

/** A warmed-up benchmark, ready for timed runs (possibly in another process, see isolation.ts). */
export interface PreparedBench {
  readonly name: string;
  /** One timed run. */
  run(): Promise<RunResult>;
}

/** Warms a benchmark up (and, for a {@link PoolBench}, sizes its runs). */
export async function prepareBench(b: OpBench | PoolBench<unknown>): Promise<PreparedBench> {
  const minMs = b.minMs ?? 1000;
  if (!isPool(b)) {
    const maxOps = b.maxOps ?? Number.POSITIVE_INFINITY;
    // The warm-up also sizes the stride: read the clock about every 0.2 ms.
    const warm = await runFor(b.fn, b.warmupMs ?? Math.min(300, minMs / 4), maxOps, 1);
    const perMs = warm.elapsed > 0 ? warm.ops / warm.elapsed : 1;
    const stride = Math.max(1, Math.floor(perMs * 0.2));
    return { name: b.name, run: () => runFor(b.fn, minMs, maxOps, stride) };
  }
  const timeAll = async (inputs: readonly unknown[]): Promise<number> => {
    const start = performance.now();
    for (const input of inputs) {
      const r = b.fn(input);
      if (isThenable(r)) await r;
    }
    return performance.now() - start;
  };
  const warmInputs = await b.generate(b.warmupOps ?? 40);
  const warmMs = await timeAll(warmInputs);
  const perMs = warmMs > 0 ? warmInputs.length / warmMs : 1;
  const perRun = Math.min(b.maxOpsPerRun ?? 5000, Math.max(b.minOpsPerRun ?? 5, Math.ceil(perMs * minMs * 1.1)));
  return {
    name: b.name,
    run: async () => {
      const inputs = await b.generate(perRun);
      return { ops: inputs.length, elapsed: await timeAll(inputs) };
    },
  };
}

/**
 * Measures several benchmarks **interleaved**: each is warmed up, then the timed runs go
 * round-robin (run 1 of every benchmark, then run 2 of every benchmark, ...), so that a
 * slow patch of the machine (another process, a frequency change) lands on all of them
 * alike and their ratios stay meaningful. Each result is the median of its runs.
 *
 * @example
 * ```ts
 * const [a, b] = await measureInterleaved([
 *   { name: 'mine', fn: () => mine() },
 *   { name: 'theirs', fn: () => theirs() },
 * ]);
 * ```
 */
export async function measureInterleaved(
  benches: readonly (OpBench | PoolBench<unknown>)[],
  options: { readonly runs?: number; readonly onRound?: (round: number) => void } = {},
): Promise<Measurement[]> {
  const prepared: PreparedBench[] = [];
  for (const b of benches) prepared.push(await prepareBench(b));
  return interleaveRuns(prepared, options);
}

/**
 * Takes the timed runs of prepared benchmarks round-robin (run 1 of each, then run 2 of
 * each, ...) and returns each one's median rate.
 */
export async function interleaveRuns(
  prepared: readonly PreparedBench[],
  options: { readonly runs?: number; readonly onRound?: (round: number) => void } = {},
): Promise<Measurement[]> {
  const runs = options.runs ?? 3;
  const rates: number[][] = prepared.map(() => []);
  const totals: number[] = prepared.map(() => 0);
  for (let r = 0; r < runs; r++) {
    options.onRound?.(r + 1);
    for (let i = 0; i < prepared.length; i++) {
      const { ops, elapsed } = await prepared[i]!.run();
      rates[i]!.push((ops * 1000) / elapsed);
      totals[i]! += ops;
    }
  }
  return prepared.map((b, i) => ({ name: b.name, perSecond: median(rates[i]!), runs: rates[i]!, ops: totals[i]! }));
}

/**
 * Measures `fn` in operations per second: the median of 3 runs of at least `minMs` each,
 * after an untimed warm-up.
 *
 * @example
 * ```ts
 * const m = await measure('hmac', () => crypto.hmacSha256(key, data), { minMs: 500 });
 * console.log(m.perSecond);
 * ```
 */
export async function measure(name: string, fn: Op, options: MeasureOptions = {}): Promise<Measurement> {
  const [m] = await measureInterleaved([{ name, fn, ...options }], options.runs !== undefined ? { runs: options.runs } : {});
  return m!;
}

/** Measures a {@link PoolBench} alone: the median of 3 runs. */
export async function measurePool<T>(bench: PoolBench<T>, options: { readonly runs?: number } = {}): Promise<Measurement> {
  const [m] = await measureInterleaved([bench], options);
  return m!;
}

/**
 * The rate of a composite operation made of several measured parts, each used `count`
 * times: the inverse of the summed per-operation costs.
 *
 * @example
 * ```ts
 * composeRate([{ perSecond: hmac, count: 4 }, { perSecond: seal, count: 1 }]);
 * ```
 */
export function composeRate(parts: readonly { readonly perSecond: number; readonly count: number }[]): number {
  let seconds = 0;
  for (const p of parts) seconds += p.count / p.perSecond;
  return 1 / seconds;
}

// --- output ----------------------------------------------------------------------------------------

/** One `--json` line for a rate, compared with a baseline (and, where one applies, with its primitives). */
export interface RateLine {
  readonly name: string;
  readonly perSecond: number;
  readonly baseline: string;
  readonly baselinePerSecond: number;
  readonly ratio: number;
  readonly primitiveBaseline?: string;
  readonly primitivePerSecond?: number;
  readonly primitiveRatio?: number;
}

/** One `--json` line for a figure that is not a rate (a size). */
export interface ValueLine {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
}

/** Rounds a rate for output: integers above 100/s, two decimals below. */
export function roundRate(x: number): number {
  return x >= 100 ? Math.round(x) : Math.round(x * 100) / 100;
}

function roundRatio(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/**
 * Builds a {@link RateLine}. `ratio` is `perSecond / baselinePerSecond` and
 * `primitiveRatio` is `perSecond / primitivePerSecond` (both: higher is better; a
 * `primitiveRatio` of 0.5 means the figure costs twice its primitives).
 */
export function rateLine(
  name: string,
  perSecond: number,
  baseline: { readonly name: string; readonly perSecond: number },
  primitive?: { readonly name: string; readonly perSecond: number },
): RateLine {
  const line: RateLine = {
    name,
    perSecond: roundRate(perSecond),
    baseline: baseline.name,
    baselinePerSecond: roundRate(baseline.perSecond),
    ratio: roundRatio(perSecond / baseline.perSecond),
  };
  if (!primitive) return line;
  return {
    ...line,
    primitiveBaseline: primitive.name,
    primitivePerSecond: roundRate(primitive.perSecond),
    primitiveRatio: roundRatio(perSecond / primitive.perSecond),
  };
}

/** Builds a {@link ValueLine}. */
export function valueLine(name: string, value: number, unit: string): ValueLine {
  return { name, value, unit };
}

/** Serialises lines for `--json`: one object per line. */
export function jsonLines(lines: readonly (RateLine | ValueLine)[]): string {
  return lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
}

/** Formats an integer with thousands separators. */
export function formatInt(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

/**
 * A plain-text table: the first column left-aligned, the others right-aligned unless
 * `align` says otherwise.
 *
 * @example
 * ```ts
 * console.log(printTable(['figure', 'ops/s'], [['steady', '12,000']]));
 * ```
 */
export function printTable(headers: readonly string[], rows: readonly (readonly string[])[], align?: readonly ('l' | 'r')[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const side = (i: number): 'l' | 'r' => align?.[i] ?? (i === 0 ? 'l' : 'r');
  const cell = (text: string, i: number): string => (side(i) === 'l' ? text.padEnd(widths[i]!) : text.padStart(widths[i]!));
  const line = (cells: readonly string[]): string => cells.map((c, i) => cell(c, i)).join(' | ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('-+-');
  return [line(headers), rule, ...rows.map((r) => line(headers.map((_, i) => r[i] ?? '')))].join('\n');
}

// --- contention -------------------------------------------------------------------------------------

/** What other processes did to the machine while a benchmark ran. */
export interface Contention {
  /** Cores the machine has. */
  readonly cores: number;
  /** Average cores kept busy by everything except this process. */
  readonly othersBusyCores: number;
}

/** CPU time used so far by this process (user + system), in milliseconds. */
export function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * Starts watching the machine's CPU time (os.cpus(): every core's busy milliseconds)
 * against the CPU time of the benchmark's own processes (`cpuMs`: by default this
 * process's; pass one that adds child processes' when benchmarks run in them); the
 * returned function tells how many cores, on average, everything else kept busy in
 * between. The benchmarks run one at a time, so anything well above zero means the figures
 * were taken on a contended machine.
 */
export async function watchContention(cpuMs: () => Promise<number> = async () => ownCpuMs()): Promise<() => Promise<Contention>> {
  const busy = (): number => cpus().reduce((s, c) => s + c.times.user + c.times.nice + c.times.sys + c.times.irq, 0);
  const t0 = performance.now();
  const b0 = busy();
  const own0 = await cpuMs();
  return async () => {
    const wall = performance.now() - t0;
    const own = (await cpuMs()) - own0;
    const others = busy() - b0 - own;
    return { cores: cpus().length, othersBusyCores: wall > 0 ? Math.max(0, others / wall) : 0 };
  };
}
