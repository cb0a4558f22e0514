/**
 * `@deadbolt/relay`: the reference Deadbolt relay. It authenticates devices by signature,
 * keeps one mailbox per device and a prekey directory, and moves end-to-end encrypted
 * frames it never reads, over WebSocket and HTTP (docs/relay-protocol.md).
 *
 * @example
 * ```ts
 * import { createRelay, createSqliteRelayStore } from '@deadbolt/relay';
 *
 * const relay = await createRelay({ store: createSqliteRelayStore({ path: './deadbolt-relay.db' }) });
 * console.log(relay.wsUrl);
 * process.on('SIGTERM', () => void relay.close());
 * ```
 *
 * @module
 */
export { createRelay, type Relay, type RelayOptions } from './relay.js';
export { DEFAULT_RELAY_LIMITS, resolveRelayLimits, type RateLimit, type RelayLimits } from './limits.js';
export { createJsonRelayLogger, silentRelayLogger, type JsonRelayLoggerOptions, type RelayLogFields, type RelayLogger, type RelayLogLevel } from './logger.js';
export * from './store.js';
export { createMemoryRelayStore } from './memory-store.js';
export { createSqliteRelayStore, type SqliteRelayStoreOptions } from './sqlite-store.js';
