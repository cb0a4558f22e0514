/**
 * The storage conformance suite: every numbered invariant of the storage contract
 * (`@deadbolt/spec`, `storage.ts`), as one vitest `describe` block that every storage
 * adapter package calls once.
 *
 * @module
 */
import { describe, it } from 'vitest';
import { STORAGE_LIMITS, STORAGE_SPECIFICATION_VERSION, type StorageAdapter } from '@deadbolt/spec';
import { storageConformanceCases, type StorageCaseContext, type StorageConformanceCase } from './storage-conformance-cases.js';

/**
 * How the suite opens the adapter under test.
 *
 * Each case calls `create()` (once, or a few times) for a fresh, *empty* store. After each
 * case the suite closes every adapter it obtained (`close()` is idempotent), then calls
 * `teardown()`; a failing case still gets its adapters closed and torn down.
 *
 * @example
 * ```ts
 * const dir = await mkdtemp(join(tmpdir(), 'deadbolt-'));
 * let n = 0;
 * let file = '';
 * const factory: StorageConformanceFactory = {
 *   async create() {
 *     file = join(dir, `${n++}.db`);
 *     return createSqliteStorage({ file });
 *   },
 *   async reopen(previous) {
 *     await previous.close();
 *     return createSqliteStorage({ file });
 *   },
 *   async teardown() {
 *     await rm(dir, { recursive: true, force: true });
 *   },
 * };
 * ```
 */
export interface StorageConformanceFactory {
  /** A new adapter over a new, empty backend. */
  create(): Promise<StorageAdapter>;
  /**
   * For persistent adapters: closes `previous` (if it is not closed yet) and opens a new
   * adapter over the *same* backend. Without it, the durability cases (invariant 8) are
   * reported as skipped.
   */
  reopen?(previous: StorageAdapter): Promise<StorageAdapter>;
  /**
   * A second adapter over the same backend as `first`, which stays open: another tab or
   * process sharing the store. Without it, the cross-instance lock case (invariant 11) is
   * reported as skipped.
   */
  openShared?(first: StorageAdapter): Promise<StorageAdapter>;
  /**
   * `false` declares that the adapter has no `exclusive` lock (invariant 11 is optional);
   * its cases are then reported as skipped. Otherwise they run, and fail if it is missing.
   */
  readonly exclusive?: boolean;
  /**
   * The largest value the adapter stores, when it is less than `STORAGE_LIMITS.maxValueBytes`
   * (an adapter that wraps another and adds bytes, such as encryption at rest, says so here).
   */
  readonly maxValueBytes?: number;
  /** Releases whatever `create()` allocated (files, databases), after each case. */
  teardown?(): Promise<void>;
}

const INVARIANT_TITLES: Readonly<Record<number, string>> = {
  0: 'the adapter interface',
  1: '1. keys are arrays of strings',
  2: '2. prefix ranges are by whole segments',
  3: '3. ordering',
  4: '4. copies',
  5: '5. atomic batches',
  6: '6. deletion is real',
  7: '7. values',
  8: '8. durability',
  9: '9. close',
  10: '10. concurrency',
  11: '11. exclusive lock',
  12: '12. range windows',
};

/** Generous: real backends (IndexedDB, SQLite) are slower than memory on the 4 MiB and 10,000-op cases. */
const CASE_TIMEOUT_MS = 30_000;

/**
 * @internal Used by {@link describeStorageConformance} and by the test-kit's own tests.
 *
 * Runs one case against `factory`, closing every adapter it opened and tearing down after
 * it, whether it passes or fails. An error from the case wins over a cleanup error.
 */
export async function runStorageConformanceCase(
  testCase: StorageConformanceCase,
  factory: StorageConformanceFactory,
): Promise<void> {
  const opened: StorageAdapter[] = [];
  const ctx: StorageCaseContext = {
    async open() {
      const storage = await factory.create();
      opened.push(storage);
      return storage;
    },
    async reopen(previous) {
      if (factory.reopen === undefined) throw new Error('this factory cannot reopen: the case should have been skipped');
      const storage = await factory.reopen(previous);
      opened.push(storage);
      return storage;
    },
    maxValueBytes: factory.maxValueBytes ?? STORAGE_LIMITS.maxValueBytes,
    async openShared(first) {
      if (factory.openShared === undefined) throw new Error('this factory cannot open a shared adapter: the case should have been skipped');
      const storage = await factory.openShared(first);
      opened.push(storage);
      return storage;
    },
  };
  let failure: { error: unknown } | undefined;
  try {
    await testCase.run(ctx);
  } catch (error) {
    failure = { error };
  }
  const cleanupErrors: unknown[] = [];
  for (const storage of opened) {
    try {
      await storage.close();
    } catch (error) {
      cleanupErrors.push(error);
    }
  }
  try {
    await factory.teardown?.();
  } catch (error) {
    cleanupErrors.push(error);
  }
  if (failure !== undefined) throw failure.error;
  if (cleanupErrors.length === 1) throw cleanupErrors[0];
  if (cleanupErrors.length > 1) throw new AggregateError(cleanupErrors, 'closing the adapters or teardown failed');
}

/**
 * Registers the storage conformance suite for one adapter: a vitest `describe` block with
 * one test per checked behaviour, grouped by the numbered invariants of the storage
 * contract (`storage.ts` in `@deadbolt/spec`). What it checks, beyond the obvious:
 *
 * - keys that naive encodings collide (`['a','b']` / `['a/b']` / `['a\u0000b']`, empty
 *   segments, lone surrogates, `__proto__`, decomposed vs precomposed `é`);
 * - prefix ranges by whole segments (`['a']` never returns `['ab']`), `range([])` rejected,
 *   `limit` applied after prefix filtering, `limit: 0` returning nothing;
 * - UTF-16 code unit order (not code point order: `'😀' < '\ue000'`);
 * - copies in and out, `subarray` inputs storing only their window, compact plain returns,
 *   inputs never mutated or detached;
 * - a batch with one invalid operation anywhere applying nothing, operations applied in
 *   order, 10,000-operation batches, 1 MiB and 4 MiB values, empty values;
 * - durability across `reopen` (skipped, visibly, when the factory has none);
 * - idempotent `close`, and `CLOSED` rejections (not synchronous throws) afterwards;
 * - concurrent readers never seeing half a batch, concurrent writers never losing one;
 * - the exclusive lock: results and errors passed through, released after a throw, no two
 *   sections overlapping on one adapter or on two adapters sharing a backend
 *   (`openShared`), `CLOSED` after close.
 *
 * The cases wait on promises only, never on timers. Call it once per adapter package, at
 * the top level of a test file.
 *
 * @param name - the adapter's name, shown in the test report
 * @param factory - how to create (and optionally reopen and tear down) the adapter
 *
 * @example
 * ```ts
 * // packages/storage-memory/test/conformance.test.ts
 * import { describeStorageConformance } from '@deadbolt/test-kit';
 * import { createMemoryStorage } from '../src/index.js';
 *
 * describeStorageConformance('memory', {
 *   async create() {
 *     return createMemoryStorage();
 *   },
 * });
 * ```
 */
export function describeStorageConformance(name: string, factory: StorageConformanceFactory): void {
  describe(`storage conformance (${STORAGE_SPECIFICATION_VERSION}): ${name}`, () => {
    const invariants = [...new Set(storageConformanceCases.map((c) => c.invariant))].sort((a, b) => a - b);
    for (const invariant of invariants) {
      describe(INVARIANT_TITLES[invariant] ?? `invariant ${invariant}`, () => {
        for (const testCase of storageConformanceCases.filter((c) => c.invariant === invariant)) {
          const missing =
            testCase.needsReopen === true && factory.reopen === undefined
              ? 'the factory has no reopen'
              : testCase.needsExclusive === true && factory.exclusive === false
                ? 'the adapter has no exclusive lock'
                : testCase.needsShared === true && factory.openShared === undefined
                  ? 'the factory has no openShared'
                  : undefined;
          const canRun = missing === undefined;
          const title = canRun ? testCase.name : `${testCase.name} (skipped: ${missing})`;
          it.skipIf(!canRun)(title, { timeout: CASE_TIMEOUT_MS }, () => runStorageConformanceCase(testCase, factory));
        }
      });
    }
  });
}
