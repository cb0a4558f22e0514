/**
 * The default crypto provider where the `#crypto-default` import resolves to the
 * `node` condition (package.json "imports"): node:crypto (OpenSSL), the fastest on Node.
 *
 * @module
 */
import type { CryptoProvider, CryptoProviderOptions } from './provider.js';
import { createNodeCryptoProvider } from './node-provider.js';

/**
 * The crypto provider for the current platform, chosen at bundle or load time by the
 * `#crypto-default` import conditions (`node`, `browser`, otherwise noble). Here: the
 * `node` provider.
 *
 * @param options - `unsafeRandomSource` for deterministic tests only (SECURITY.md A6).
 * @example
 * ```ts
 * import { createDefaultCryptoProvider } from '@deadbolt/core';
 *
 * const crypto = createDefaultCryptoProvider();
 * const { publicKey, secretKey } = await crypto.x25519GenerateKeyPair();
 * ```
 */
export function createDefaultCryptoProvider(options?: CryptoProviderOptions): CryptoProvider {
  return createNodeCryptoProvider(options);
}
