/**
 * The default crypto provider where the `#crypto-default` import resolves to the
 * `browser` condition (package.json "imports"): WebCrypto for X25519/Ed25519 and @noble/*
 * for the rest.
 *
 * @module
 */
import type { CryptoProvider, CryptoProviderOptions } from './provider.js';
import { createWebCryptoProvider } from './web-provider.js';

/**
 * The crypto provider for the current platform, chosen at bundle or load time by the
 * `#crypto-default` import conditions (`node`, `browser`, otherwise noble). Here: the
 * `web` provider.
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
  return createWebCryptoProvider(options);
}
