/**
 * `@deadbolt/test-kit`: the conformance suites every Deadbolt adapter package runs, and
 * the byte helpers they use. Test-only: it imports `vitest` (a peer dependency) and never
 * `@deadbolt/core`.
 *
 * @example
 * ```ts
 * import { describeStorageConformance } from '@deadbolt/test-kit';
 * import { createMemoryStorage } from '@deadbolt/storage-memory';
 *
 * describeStorageConformance('memory', { create: async () => createMemoryStorage() });
 * ```
 *
 * @module
 */
export { expectBytesEqual, patternBytes } from './bytes.js';
export { manualTimers, type ManualTimers } from './manual-timers.js';
export { rejectionOf } from './rejection.js';
export { describeStorageConformance, type StorageConformanceFactory } from './storage-conformance.js';
export {
  describeRelayStoreConformance,
  type RelayStoreConformanceFactory,
  type RelayStoreContract,
  type RelayStoreContractAddress,
  type RelayStoreContractEnqueueResult,
  type RelayStoreContractListVersion,
  type RelayStoreContractMessage,
  type RelayStoreContractPrekey,
  type RelayStoreContractQuota,
} from './relay-store-conformance.js';
export * from './transport-conformance.js';
