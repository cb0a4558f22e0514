/**
 * The method of the storage benches, shared by storage-main.ts (Node) and
 * storage-browser-page.ts (real Chromium): two clients get a confirmed session through the
 * relay, then the sender's transport captures its frames instead of sending them, and the
 * captured frames are handed straight to the recipient's frame handler, one at a time, as
 * its transport would.
 *
 * Bundled into the browser page: nothing Node-only may be imported here.
 *
 * @module
 */
import { createClient, type Client } from '@deadbolt/core';
import type { FrameHandler, InboundFrame, OutboundMessage, SharedRecipient, StorageAdapter, TransportAdapter } from '@deadbolt/spec';

/** Every message's body: 1 KiB. */
export const BODY = new Uint8Array(1024).fill(0x61);

/** The key of encryption at rest (`createEncryptedStorage`, §7.5) in the "+ at rest" adapters. */
export const AT_REST_KEY = new Uint8Array(32).fill(0x42);

/** A transport's two switches: `capture` keeps sent frames instead of sending them; `handler` is the frame handler the client registered. */
export interface FrameCapture {
  capture: boolean;
  readonly captured: Uint8Array[];
  handler: FrameHandler | undefined;
}

/** A fresh {@link FrameCapture}, not capturing. */
export function frameCapture(): FrameCapture {
  return { capture: false, captured: [], handler: undefined };
}

/**
 * The members of `inner` that {@link FrameCapture} switches: `send` and `sendShared` (one
 * copy per recipient, as each would receive it) keep their frames while `capture` is on,
 * and `onFrame` records the handler.
 */
export function captureOverrides(inner: TransportAdapter, state: FrameCapture): Pick<TransportAdapter, 'send' | 'sendShared' | 'onFrame'> {
  return {
    async send(messages: readonly OutboundMessage[]) {
      if (!state.capture) return inner.send(messages);
      for (const m of messages) state.captured.push(m.frame.slice());
    },
    async sendShared(recipients: readonly SharedRecipient[], frame: Uint8Array) {
      if (!state.capture) return inner.sendShared(recipients, frame);
      for (const _ of recipients) state.captured.push(frame.slice());
    },
    onFrame(handler: FrameHandler) {
      state.handler = handler;
      return inner.onFrame(handler);
    },
  };
}

/** Two clients with a confirmed session, Alice's frames captured. */
export interface CapturedPair {
  readonly alice: Client;
  readonly bob: Client;
  readonly aliceT: { readonly state: FrameCapture };
  readonly bobT: { readonly state: FrameCapture };
  /** What Bob's store really holds (under any encryption wrapper). */
  readonly bobStored: StorageAdapter;
  /** Frames handed to Bob so far (their ids). */
  seq: number;
}

/** Resolves on `client`'s next `message-received`. */
export function nextMessage(client: Client): Promise<void> {
  return new Promise((resolve) => {
    const off = client.on('message-received', () => {
      off();
      resolve();
    });
  });
}

/** One side of {@link openPair}: the store the client sees and its transport. */
export interface PairSide {
  readonly storage: StorageAdapter;
  readonly transport: TransportAdapter;
}

/** Alice (`alice<n>`) and Bob (`bob<n>`) started, with a confirmed session both ways over the relay. */
export async function openPair(n: number, a: PairSide, b: PairSide): Promise<{ alice: Client; bob: Client }> {
  const prekeyBatch = { oneTime: 5, pqOneTime: 2 };
  const alice = await createClient({ userId: `alice${n}`, deviceId: 'phone', storage: a.storage, transport: a.transport, prekeyBatch });
  const bob = await createClient({ userId: `bob${n}`, deviceId: 'laptop', storage: b.storage, transport: b.transport, prekeyBatch });
  await alice.start();
  await bob.start();
  const atBob = nextMessage(bob);
  await alice.send(`bob${n}`, 'hello');
  await atBob;
  const atAlice = nextMessage(alice);
  await bob.send(`alice${n}`, 'hi');
  await atAlice;
  return { alice, bob };
}

/** Alice sends `count` messages (captured); returns the time taken in ms. */
export async function sendRun(pair: CapturedPair, count: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await pair.alice.send(pair.bob.address.userId, BODY);
  return performance.now() - t0;
}

/** Hands every captured frame to Bob's handler, one at a time; returns the time taken in ms. `bench` names the script in an error. */
export async function receiveRun(pair: CapturedPair, frames: readonly Uint8Array[], bench: string): Promise<number> {
  const handler = pair.bobT.state.handler;
  if (handler === undefined) throw new Error(`${bench}: the client registered no frame handler`);
  const t0 = performance.now();
  for (const bytes of frames) {
    const frame: InboundFrame = { id: `bench-${pair.seq++}`, from: pair.alice.address, receivedAt: Date.now(), bytes };
    await handler(frame);
  }
  return performance.now() - t0;
}

/** Alice's captured frames, taken out. */
export const take = (pair: CapturedPair): Uint8Array[] => pair.aliceT.state.captured.splice(0);

/** Bytes of keys (UTF-16 code units of every segment) and values under `prefix`, as the store holds them. */
export async function logicalBytes(storage: StorageAdapter, prefix: string[]): Promise<number> {
  let bytes = 0;
  for (const e of await storage.range(prefix, { limit: 1_000_000 })) {
    bytes += e.value.length;
    for (const s of e.key) bytes += s.length;
  }
  return bytes;
}
