/**
 * The Deadbolt process of the group benchmark (see group-isolation.ts): the raw primitives
 * of a group message, the sender cost at each group size, and encrypt + decrypt at the
 * engine and manager layers; `info()` reads the sizes and measures the cost of a removal
 * in pairwise traffic (no timing). This module never imports libsignal-client.
 *
 * @module
 */
import { paddedLength } from '@deadbolt/core';
import { PLAINTEXT_LENGTH, checkLength } from './config.js';
import { labelPrefix, Label } from './core-internals.js';
import { REMOVAL_MEMBERS, SEND_SIZES, groupConfig } from './group-config.js';
import { PairFixture, SenderFixture, benchCrypto, removalCost } from './group-deadbolt.js';
import { decodeGroupMessage } from './group-internals.js';
import { GROUP_PRIMITIVES, groupPrimitiveBenches, type GroupMessageShapes } from './group-primitives.js';
import type { PoolBench } from './harness.js';
import type { Suite, SuiteOptions } from './isolation.js';

/** The shapes of a real group message, for the primitive benchmarks. */
export function shapesOf(message: Uint8Array): GroupMessageShapes {
  const m = decodeGroupMessage(message);
  return {
    paddedLength: paddedLength(PLAINTEXT_LENGTH),
    adLength: labelPrefix(Label.groupAd).length + m.headerBytes.length,
    signedLength: labelPrefix(Label.groupMessageSignature).length + m.signed.length,
  };
}

export async function groupDeadboltSuite({ quick }: SuiteOptions): Promise<Suite> {
  const cfg = groupConfig(quick);
  const crypto = benchCrypto();
  const plaintext = crypto.randomBytes(PLAINTEXT_LENGTH);

  const senders = new Map<number, SenderFixture>();
  for (const n of SEND_SIZES) senders.set(n, await SenderFixture.create(crypto, n, plaintext));
  const enginePair = await PairFixture.create(crypto, plaintext);
  const managerPair = await PairFixture.create(crypto, plaintext);
  checkLength(await enginePair.engineRoundTrip());
  checkLength(await managerPair.managerRoundTrip());
  const shapes = shapesOf(await enginePair.message());
  const prims = await groupPrimitiveBenches(crypto, shapes, cfg.primitiveMs);

  /** A figure whose runs must each fit in one sender key: `ensureHeadroom` rotates untimed before a run if needed. */
  const pool = (name: string, ensureHeadroom: (n: number) => Promise<void>, fn: () => Promise<unknown>): PoolBench<number> => ({
    name,
    generate: async (n) => {
      await ensureHeadroom(n);
      return new Array<number>(n).fill(0);
    },
    fn,
    minMs: cfg.figureMs,
    warmupOps: cfg.warmupOps,
    minOpsPerRun: 5,
    maxOpsPerRun: cfg.maxOpsPerRun,
  });

  return {
    benches: [
      ...GROUP_PRIMITIVES.map((p) => prims[p]),
      ...SEND_SIZES.map((n) => {
        const f = senders.get(n)!;
        return pool(`deadbolt group/send/${n}`, (k) => f.ensureHeadroom(k), () => f.send());
      }),
      pool('deadbolt group/enc-dec/engine', (k) => enginePair.ensureHeadroom(k), async () => checkLength(await enginePair.engineRoundTrip())),
      pool('deadbolt group/enc-dec/manager', (k) => managerPair.ensureHeadroom(k), async () => checkLength(await managerPair.managerRoundTrip())),
    ],
    async info() {
      const message = await enginePair.message();
      const distribution = await enginePair.distribution();
      const removal = await removalCost(crypto, REMOVAL_MEMBERS, plaintext);
      return {
        ...shapes,
        messageLength: message.length,
        distributionLength: distribution.length,
        removalMembers: removal.members,
        removalDevicesInformed: removal.devicesInformed,
        removalRotatingSenders: removal.rotatingSenders,
        removalChangeMessages: removal.change.messages,
        removalChangePayloadBytes: removal.change.payloadBytes,
        removalChangePairwiseBytes: removal.change.pairwiseBytes,
        removalRotationMessages: removal.rotation.messages,
        removalRotationPayloadBytes: removal.rotation.payloadBytes,
        removalRotationPairwiseBytes: removal.rotation.pairwiseBytes,
        removalTriggerMessages: removal.triggerMessages,
        removalTriggerMessageBytes: removal.triggerMessageBytes,
        removalFanOutCopies: removal.fanOutCopies,
      };
    },
  };
}
