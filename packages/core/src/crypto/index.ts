/**
 * Deadbolt's crypto layer: the {@link CryptoProvider} interface, its three implementations,
 * and the platform default.
 *
 * @example
 * ```ts
 * import { createDefaultCryptoProvider, equalBytes } from '@deadbolt/core';
 *
 * const crypto = createDefaultCryptoProvider();
 * const tag = crypto.hmacSha256(key, data);
 * equalBytes(tag, receivedTag);
 * ```
 *
 * @module
 */
export { SIZES, type CryptoProvider, type CryptoProviderOptions, type RandomSource } from './provider.js';
export { createNodeCryptoProvider } from './node-provider.js';
export { createWebCryptoProvider } from './web-provider.js';
export { createNobleCryptoProvider } from './noble-provider.js';
export { equalBytes } from './checks.js';
export { createDefaultCryptoProvider } from '#crypto-default';
