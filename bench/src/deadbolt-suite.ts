/**
 * The Deadbolt process's benchmarks (see isolation.ts): the raw primitives, then every
 * figure's Deadbolt side. This module never imports libsignal-client.
 *
 * @module
 */
import { createNodeCryptoProvider, paddedLength, type PrekeyBundle } from '@deadbolt/core';
import { PLAINTEXT_LENGTH, config } from './config.js';
import { ProtocolPair, Responder, SessionApiPair, makeDevice, setupOnce } from './deadbolt.js';
import type { Suite, SuiteOptions } from './isolation.js';
import { checkPairs, figureBenches, sizeFigures, type SetupPool } from './pair-figures.js';
import { PRIMITIVES, primitiveBenches } from './primitives.js';

export async function deadboltSuite({ quick }: SuiteOptions): Promise<Suite> {
  const cfg = config(quick);
  const crypto = createNodeCryptoProvider();
  const plaintext = crypto.randomBytes(PLAINTEXT_LENGTH);
  const padded = paddedLength(PLAINTEXT_LENGTH);

  const proto = await ProtocolPair.establish(crypto, plaintext);
  const api = await SessionApiPair.establish(crypto, plaintext);
  await checkPairs([proto, api], plaintext);
  const adPrefixLength = proto.adPrefixLength();
  const prims = await primitiveBenches(crypto, { paddedLength: padded, adLength: adPrefixLength + 42 }, cfg.primitiveMs);

  const initiator = await makeDevice(crypto, 'alice', 'phone');
  const responder = await Responder.create(crypto, await makeDevice(crypto, 'bob', 'laptop'));
  const setup: SetupPool<PrekeyBundle> = {
    generate: (n) => responder.bundles(n),
    run: async (bundle) => (await setupOnce(crypto, initiator, responder, bundle, plaintext)).plaintext.length,
  };

  return {
    benches: [...PRIMITIVES.map((p) => prims[p]), ...figureBenches('deadbolt', cfg, { proto, api }, setup, plaintext)],
    async info() {
      return { paddedLength: padded, adPrefixLength, ...(await sizeFigures(quick, api, plaintext, () => proto.steadyWireLength(plaintext))) };
    },
  };
}
