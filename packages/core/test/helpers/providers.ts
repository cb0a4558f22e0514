/**
 * The crypto providers every provider-level test runs through (SECURITY.md A1: where several
 * implementations exist for one operation, each is tested and they must agree), and a
 * deterministic random source to inject into them.
 */
import {
  createNobleCryptoProvider,
  createNodeCryptoProvider,
  createWebCryptoProvider,
  type CryptoProvider,
  type CryptoProviderOptions,
  type RandomSource,
} from '../../src/crypto/index.js';

/** Each provider factory with its short name, for `describe.each(CRYPTO_PROVIDERS)('%s provider', ...)`. */
export const CRYPTO_PROVIDERS = [
  ['node', createNodeCryptoProvider],
  ['web', createWebCryptoProvider],
  ['noble', createNobleCryptoProvider],
] as const satisfies readonly (readonly [string, (o?: CryptoProviderOptions) => CryptoProvider])[];

/** One provider of each kind with default options, for `describe.each(eachProvider())('$name provider', ...)`. */
export function eachProvider(): CryptoProvider[] {
  return CRYPTO_PROVIDERS.map(([, create]) => create());
}

/**
 * A deterministic byte stream (xorshift32), the same for every provider given the same
 * seed. For tests only, like `unsafeRandomSource` itself.
 */
export function seededSource(seed: number): RandomSource {
  let x = seed >>> 0 || 1;
  return (length) => {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      out[i] = x & 0xff;
    }
    return out;
  };
}
