/**
 * What every bench script's entry point does the same way: its command line (`--json`,
 * `--quick`, `--help`, and whatever flags of its own it accepts), progress on stderr (stdout
 * holds only the table or the `--json` lines), the closing lines, and the contention note.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import { formatInt, jsonLines, type Contention, type RateLine, type ValueLine } from './harness.js';

/** The flags every bench script takes. */
export interface CommonArgs {
  readonly json: boolean;
  readonly quick: boolean;
}

/**
 * Parses `argv`: `--json`, `--quick`, `--help` / `-h` (prints `help`, exits 0) and `--`
 * (ignored); any other argument goes to `extra`, which returns `false` for one it does not
 * take: then the script prints it with `help` and exits 2.
 *
 * @example
 * ```ts
 * const argv = process.argv.slice(2);
 * const { json, quick } = parseArgs(argv, HELP, (a) => a === '--cpu-time');
 * const cpuTime = argv.includes('--cpu-time');
 * ```
 */
export function parseArgs(argv: readonly string[], help: string, extra: (arg: string) => boolean = () => false): CommonArgs {
  let json = false;
  let quick = false;
  for (const a of argv) {
    if (a === '--json') json = true;
    else if (a === '--quick') quick = true;
    else if (extra(a)) continue;
    else if (a === '--help' || a === '-h') {
      process.stdout.write(help);
      process.exit(0);
    } else if (a !== '--') {
      process.stderr.write(`unknown argument ${a}\n${help}`);
      process.exit(2);
    }
  }
  return { json, quick };
}

/** Progress: one line on stderr, so that stdout holds only the output. */
export const log = (s: string): void => void process.stderr.write(`${s}\n`);

/** A rate for a table: thousands separators from 100/s, one decimal below. */
export function fmtRate(x: number): string {
  return x >= 100 ? formatInt(x) : x.toFixed(1);
}

/** Seconds since `started` (a `performance.now()` reading), one decimal. */
export function secondsSince(started: number): string {
  return ((performance.now() - started) / 1000).toFixed(1);
}

/** The `--json` output: the lines on stdout, then how long the script took on stderr. */
export function writeJson(lines: readonly (RateLine | ValueLine)[], started: number): void {
  process.stdout.write(jsonLines(lines));
  log(`done in ${secondsSince(started)} s`);
}

/** The table's last line: how long the script took, and whether the numbers mean anything. */
function totalLine(started: number, quick: boolean): string {
  return `total ${secondsSince(started)} s${quick ? ' (--quick: numbers are meaningless)' : ''}`;
}

/** Writes the table output `out` to stdout, closed by a blank line, `note` (the contention note) and {@link totalLine}. */
export function writeTable(out: string[], note: string, started: number, quick: boolean): void {
  out.push('', note, totalLine(started, quick));
  process.stdout.write(out.join('\n') + '\n');
}

/** The warning {@link contentionNote} adds by default when other processes kept more than a quarter of a core busy. */
export const CONTENDED_WARNING = ' — WARNING: the machine was contended; rerun on a quiet machine';

/**
 * How busy other processes kept the machine `when` (harness.ts `watchContention`), with
 * `contended` appended when that was more than a quarter of a core.
 */
export function contentionNote({ cores, othersBusyCores }: Contention, when: string, contended: string = CONTENDED_WARNING): string {
  return `other processes kept ${othersBusyCores.toFixed(2)} of ${cores} cores busy on average ${when}` + (othersBusyCores > 0.25 ? contended : '');
}
