/**
 * The figures both suites of `pnpm bench` build the same way around their own library
 * (deadbolt-suite.ts, libsignal-suite.ts): the conversations checked before the runs, the
 * five figures' benchmarks in the order main.ts measures them, and the size samples taken
 * after the runs. This module imports neither library.
 *
 * @module
 */
import { checkLength, sizeSamples, sizeStats, type Config } from './config.js';
import type { OpBench, PoolBench } from './harness.js';

/** An established conversation of one library; each operation returns the decrypted length. */
export interface ConversationPair<P> {
  /** One message one way. */
  steady(plaintext: P): Promise<number>;
  /** One message with a DH ratchet step. */
  pingPong(plaintext: P): Promise<number>;
}

/** A conversation whose session records can be sized. */
export interface RecordedPair<P> extends ConversationPair<P> {
  recordSizes(): Promise<{ initiator: number; responder: number }>;
}

/** Checks every pair before the runs: a steady message and two ping-pong messages each. */
export async function checkPairs<P>(pairs: readonly ConversationPair<P>[], plaintext: P): Promise<void> {
  for (const p of pairs) {
    checkLength(await p.steady(plaintext));
    checkLength(await p.pingPong(plaintext));
    checkLength(await p.pingPong(plaintext));
  }
}

/** How a library sets up sessions, both sides, from pre-generated inputs (see harness.ts `PoolBench`). */
export interface SetupPool<T> {
  generate(n: number): Promise<readonly T[]>;
  /** One set-up; returns the decrypted length of its first message. */
  run(input: T): Promise<number>;
}

/**
 * The figures of `lib` ('deadbolt' or 'libsignal'), named `<lib> <figure>`: protocol-level
 * steady and ping-pong on `proto`, the set-up, session-API steady and ping-pong on `api`.
 * Every op checks the decrypted length.
 */
export function figureBenches<P, T>(
  lib: string,
  cfg: Config,
  pairs: { readonly proto: ConversationPair<P>; readonly api: ConversationPair<P> },
  setup: SetupPool<T>,
  plaintext: P,
): (OpBench | PoolBench<T>)[] {
  const op = (name: string, fn: () => Promise<number>): OpBench => ({ name: `${lib} ${name}`, fn: async () => checkLength(await fn()), minMs: cfg.figureMs });
  const setupBench: PoolBench<T> = {
    name: `${lib} protocol/setup`,
    generate: (n) => setup.generate(n),
    fn: async (input) => checkLength(await setup.run(input)),
    minMs: cfg.figureMs,
    warmupOps: cfg.setupWarmup,
    minOpsPerRun: cfg.setupMinPerRun,
    maxOpsPerRun: cfg.setupMaxPerRun,
  };
  return [
    op('protocol/steady', () => pairs.proto.steady(plaintext)),
    op('protocol/ping-pong', () => pairs.proto.pingPong(plaintext)),
    setupBench,
    op('session-api/steady', () => pairs.api.steady(plaintext)),
    op('session-api/ping-pong', () => pairs.api.pingPong(plaintext)),
  ];
}

/**
 * Sizes over a few messages (`sizeSamples`; libsignal's move with its SPQR ratchet's
 * phase): the records after each session-API ping-pong message on `api`, and the wire
 * length of a steady message (`wireLength`), as `sizeStats` of `recordInitiator`,
 * `recordResponder` and `steadyWireLength`.
 */
export async function sizeFigures<P>(quick: boolean, api: RecordedPair<P>, plaintext: P, wireLength: () => Promise<number>): Promise<Record<string, number>> {
  const initiator: number[] = [];
  const responder: number[] = [];
  const wire: number[] = [];
  for (let i = 0; i < sizeSamples(quick); i++) {
    checkLength(await api.pingPong(plaintext));
    const r = await api.recordSizes();
    initiator.push(r.initiator);
    responder.push(r.responder);
    wire.push(await wireLength());
  }
  return { ...sizeStats('recordInitiator', initiator), ...sizeStats('recordResponder', responder), ...sizeStats('steadyWireLength', wire) };
}
