/**
 * Settings shared by both suites and the orchestrator.
 *
 * @module
 */
import { createRequire } from 'node:module';

/** Every message carries a 1 KiB plaintext. */
export const PLAINTEXT_LENGTH = 1024;

/** How long and how many times to measure. */
export interface Config {
  /** Minimum duration of each of the 3 timed runs of a figure. */
  readonly figureMs: number;
  /** The same for each primitive. */
  readonly primitiveMs: number;
  /** Set-ups: warm-up inputs, and bounds on the inputs generated per run. */
  readonly setupWarmup: number;
  readonly setupMinPerRun: number;
  readonly setupMaxPerRun: number;
}

export const FULL: Config = { figureMs: 1000, primitiveMs: 300, setupWarmup: 40, setupMinPerRun: 50, setupMaxPerRun: 3000 };
/** `--quick`: tiny iteration counts, for the smoke test. The numbers mean nothing. */
export const QUICK: Config = { figureMs: 5, primitiveMs: 2, setupWarmup: 2, setupMinPerRun: 2, setupMaxPerRun: 3 };

export function config(quick: boolean): Config {
  return quick ? QUICK : FULL;
}

/** Throws unless a decryption returned the whole plaintext (every timed op checks it). */
export function checkLength(n: number): void {
  if (n !== PLAINTEXT_LENGTH) throw new Error(`bench: decrypted ${n} bytes, expected ${PLAINTEXT_LENGTH}`);
}

/** The installed libsignal-client version (read from its package.json, without loading the library). */
export const LIBSIGNAL_VERSION: string = (createRequire(import.meta.url)('@signalapp/libsignal-client/package.json') as { version: string }).version;

/** Size samples taken after the runs (libsignal's sizes move with its SPQR ratchet's phase). */
export function sizeSamples(quick: boolean): number {
  return quick ? 3 : 21;
}

/** `{ [name]: median, [name + 'Min']: min, [name + 'Max']: max }` of a non-empty sample. */
export function sizeStats(name: string, values: readonly number[]): Record<string, number> {
  const sorted = [...values].sort((a, b) => a - b);
  return { [name]: sorted[sorted.length >> 1]!, [`${name}Min`]: sorted[0]!, [`${name}Max`]: sorted[sorted.length - 1]! };
}
