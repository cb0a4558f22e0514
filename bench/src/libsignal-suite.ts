/**
 * The libsignal-client process's benchmarks (see isolation.ts): every figure's libsignal
 * side. This module never imports Deadbolt.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { CiphertextMessageType } from '@signalapp/libsignal-client';
import { PLAINTEXT_LENGTH, checkLength, config, sizeSamples, sizeStats } from './config.js';
import type { OpBench, PoolBench } from './harness.js';
import type { Suite, SuiteOptions } from './isolation.js';
import { LibsignalPair, LibsignalSetups, ObjectSessionStore, SerializedSessionStore, type SetupInput } from './libsignal.js';

export async function libsignalSuite({ quick }: SuiteOptions): Promise<Suite> {
  const cfg = config(quick);
  const plaintext = new Uint8Array(randomBytes(PLAINTEXT_LENGTH)); // a plain Uint8Array<ArrayBuffer>

  const proto = await LibsignalPair.establish(() => new ObjectSessionStore(), plaintext);
  const api = await LibsignalPair.establish(() => new SerializedSessionStore(), plaintext);
  for (const p of [proto, api]) {
    checkLength(await p.steady(plaintext));
    checkLength(await p.pingPong(plaintext));
    checkLength(await p.pingPong(plaintext));
  }

  const setups = new LibsignalSetups();
  const setup: PoolBench<SetupInput> = {
    name: 'libsignal protocol/setup',
    generate: async (n) => setups.inputs(n),
    fn: async (input) => checkLength(await setups.run(input, plaintext)),
    minMs: cfg.figureMs,
    warmupOps: cfg.setupWarmup,
    minOpsPerRun: cfg.setupMinPerRun,
    maxOpsPerRun: cfg.setupMaxPerRun,
  };
  const op = (name: string, fn: () => Promise<number>): OpBench => ({ name, fn: async () => checkLength(await fn()), minMs: cfg.figureMs });

  return {
    benches: [
      op('libsignal protocol/steady', () => proto.steady(plaintext)),
      op('libsignal protocol/ping-pong', () => proto.pingPong(plaintext)),
      setup,
      op('libsignal session-api/steady', () => api.steady(plaintext)),
      op('libsignal session-api/ping-pong', () => api.pingPong(plaintext)),
    ],
    async info() {
      // Sizes over a few messages (they move with the SPQR ratchet's phase): the records
      // after each session-API ping-pong message, and the wire length of steady messages.
      const initiator: number[] = [];
      const responder: number[] = [];
      const wire: number[] = [];
      for (let i = 0; i < sizeSamples(quick); i++) {
        checkLength(await api.pingPong(plaintext));
        const r = await api.recordSizes();
        initiator.push(r.initiator);
        responder.push(r.responder);
        const m = await proto.steadyMessage(plaintext);
        if (m.type !== CiphertextMessageType.Whisper) throw new Error('bench: expected a SignalMessage');
        wire.push(m.length);
      }
      return { ...sizeStats('recordInitiator', initiator), ...sizeStats('recordResponder', responder), ...sizeStats('steadyWireLength', wire) };
    },
  };
}
