/**
 * The default crypto provider where the `#crypto-default` import resolves to the
 * `default` condition (package.json "imports", neither `node` nor `browser`): @noble/* only,
 * for runtimes with neither node:crypto nor WebCrypto X25519/Ed25519.
 *
 * @module
 */
import type { CryptoProvider, CryptoProviderOptions } from './provider.js';
import { createNobleCryptoProvider } from './noble-provider.js';

/**
 * The crypto provider for the current platform, chosen at bundle or load time by the
 * `#crypto-default` import conditions (`node`, `browser`, otherwise noble). Here: the
 * `noble` provider.
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
  return createNobleCryptoProvider(options);
}
