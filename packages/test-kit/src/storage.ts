/**
 * `@deadbolt/test-kit/storage`: the storage conformance suite alone, without the relay and
 * transport suites (which need Node), so that it can also be bundled into a browser page
 * and run against a real browser's storage. `storageConformanceCases` and
 * `runStorageConformanceCase` let a harness run each case where the adapter lives and
 * report the result to the test runner.
 *
 * @example
 * ```ts
 * import { runStorageConformanceCase, storageConformanceCases } from '@deadbolt/test-kit/storage';
 *
 * for (const testCase of storageConformanceCases) await runStorageConformanceCase(testCase, factory);
 * ```
 *
 * @module
 */
export { describeStorageConformance, runStorageConformanceCase, type StorageConformanceFactory } from './storage-conformance.js';
export { storageConformanceCases, type StorageCaseContext, type StorageConformanceCase } from './storage-conformance-cases.js';
