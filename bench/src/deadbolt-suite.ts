/**
 * The Deadbolt process's benchmarks (see isolation.ts): the raw primitives, then every
 * figure's Deadbolt side. This module never imports libsignal-client.
 *
 * @module
 */
import { createNodeCryptoProvider, paddedLength, type PrekeyBundle } from '@deadbolt/core';
import { PLAINTEXT_LENGTH, checkLength, config, sizeSamples, sizeStats } from './config.js';
import { ProtocolPair, Responder, SessionApiPair, makeDevice, setupOnce } from './deadbolt.js';
import type { OpBench, PoolBench } from './harness.js';
import type { Suite, SuiteOptions } from './isolation.js';
import { PRIMITIVES, primitiveBenches } from './primitives.js';

export async function deadboltSuite({ quick }: SuiteOptions): Promise<Suite> {
  const cfg = config(quick);
  const crypto = createNodeCryptoProvider();
  const plaintext = crypto.randomBytes(PLAINTEXT_LENGTH);
  const padded = paddedLength(PLAINTEXT_LENGTH);

  const proto = await ProtocolPair.establish(crypto, plaintext);
  const api = await SessionApiPair.establish(crypto, plaintext);
  for (const p of [proto, api]) {
    checkLength(await p.steady(plaintext));
    checkLength(await p.pingPong(plaintext));
    checkLength(await p.pingPong(plaintext));
  }
  const adPrefixLength = proto.adPrefixLength();
  const prims = await primitiveBenches(crypto, { paddedLength: padded, adLength: adPrefixLength + 42 }, cfg.primitiveMs);

  const initiator = await makeDevice(crypto, 'alice', 'phone');
  const responder = await Responder.create(crypto, await makeDevice(crypto, 'bob', 'laptop'));
  const setup: PoolBench<PrekeyBundle> = {
    name: 'deadbolt protocol/setup',
    generate: (n) => responder.bundles(n),
    fn: async (bundle) => checkLength((await setupOnce(crypto, initiator, responder, bundle, plaintext)).plaintext.length),
    minMs: cfg.figureMs,
    warmupOps: cfg.setupWarmup,
    minOpsPerRun: cfg.setupMinPerRun,
    maxOpsPerRun: cfg.setupMaxPerRun,
  };
  const op = (name: string, fn: () => Promise<number>): OpBench => ({ name, fn: async () => checkLength(await fn()), minMs: cfg.figureMs });

  return {
    benches: [
      ...PRIMITIVES.map((p) => prims[p]),
      op('deadbolt protocol/steady', () => proto.steady(plaintext)),
      op('deadbolt protocol/ping-pong', () => proto.pingPong(plaintext)),
      setup,
      op('deadbolt session-api/steady', () => api.steady(plaintext)),
      op('deadbolt session-api/ping-pong', () => api.pingPong(plaintext)),
    ],
    async info() {
      // Sizes over a few messages: the records after each session-API ping-pong message,
      // and the wire length of steady messages.
      const initiator: number[] = [];
      const responder: number[] = [];
      const wire: number[] = [];
      for (let i = 0; i < sizeSamples(quick); i++) {
        checkLength(await api.pingPong(plaintext));
        const r = await api.recordSizes();
        initiator.push(r.initiator);
        responder.push(r.responder);
        wire.push(await proto.steadyWireLength(plaintext));
      }
      return {
        paddedLength: padded,
        adPrefixLength,
        ...sizeStats('recordInitiator', initiator),
        ...sizeStats('recordResponder', responder),
        ...sizeStats('steadyWireLength', wire),
      };
    },
  };
}
