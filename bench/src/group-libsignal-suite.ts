/**
 * The libsignal-client process of the group benchmark (see group-isolation.ts): Sender
 * Keys encrypt + decrypt with both in-memory stores. This module never imports Deadbolt.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { PLAINTEXT_LENGTH, checkLength } from './config.js';
import { groupConfig } from './group-config.js';
import { LibsignalGroupPair, ObjectSenderKeyStore, SerializedSenderKeyStore } from './group-libsignal.js';
import type { OpBench } from './harness.js';
import type { Suite, SuiteOptions } from './isolation.js';

export async function groupLibsignalSuite({ quick }: SuiteOptions): Promise<Suite> {
  const cfg = groupConfig(quick);
  const plaintext = new Uint8Array(randomBytes(PLAINTEXT_LENGTH)); // a plain Uint8Array<ArrayBuffer>
  const serialized = await LibsignalGroupPair.establish(() => new SerializedSenderKeyStore());
  const objects = await LibsignalGroupPair.establish(() => new ObjectSenderKeyStore());
  // The untimed warm-up Deadbolt's figures get (warmupOps messages), before the harness's own.
  for (const p of [serialized, objects]) for (let i = 0; i < cfg.warmupOps; i++) checkLength(await p.roundTrip(plaintext));
  const op = (name: string, pair: LibsignalGroupPair): OpBench => ({ name, fn: async () => checkLength(await pair.roundTrip(plaintext)), minMs: cfg.figureMs });

  return {
    benches: [op('libsignal group/enc-dec/serialized', serialized), op('libsignal group/enc-dec/objects', objects)],
    async info() {
      return { messageLength: await objects.messageLength(plaintext), distributionLength: objects.distributionLength };
    },
  };
}
