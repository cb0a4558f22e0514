/**
 * `@deadbolt/spec`: the contracts every Deadbolt package shares.
 *
 * Adapters depend on this package only, never on `@deadbolt/core`.
 *
 * @example
 * ```ts
 * import { type StorageAdapter, isDeadboltError, userId } from '@deadbolt/spec';
 * ```
 *
 * @module
 */
export * from './async-lock.js';
export * from './errors.js';
export * from './ids.js';
export * from './storage.js';
export * from './transport.js';
export * from './validate.js';
export { ByteReader } from './codec/reader.js';
export { ByteWriter } from './codec/writer.js';
export { concatBytes, fromHex, fromUtf8, toHex, utf8, wipe } from './codec/bytes.js';
export * from './relay-protocol.js';
export * from './transport-kit.js';
export * from './relay-transport.js';
