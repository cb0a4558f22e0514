/**
 * The client side of `pnpm bench:stack`: pairs of real Deadbolt clients (`createClient`,
 * memory storage, WebSocket transport) in this process, each sending 1 KiB messages to its
 * partner, and a timed run of them.
 *
 * Every client's transport is wrapped (same adapter, timed at its boundary) so that a
 * message's end-to-end time splits into three stretches, all on this process's clock:
 *
 * 1. sender: from the moment the message was due to its SEND leaving (the client's send
 *    queue, encryption, storing the outgoing message);
 * 2. relay: from the SEND leaving to the frame reaching the recipient's handler (both
 *    WebSocket hops, the relay's commit and push, and any wait for this process's event
 *    loop);
 * 3. recipient: the handler (decrypt, store, `message-received`).
 *
 * Frames reach a transport's handler one at a time, and each client's sends are awaited one
 * at a time, so each stretch is attributed to the right message.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { createClient, type Client } from '@deadbolt/core';
import type { FrameHandler, OutboundMessage, TransportAdapter } from '@deadbolt/spec';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import { createWebSocketTransport, type WebSocketConstructor } from '@deadbolt/transport-websocket';
import { forwardTransport } from './forward-transport.js';
import { waitUntil, withTimeout } from './stack-ipc.js';

/** Bytes at the start of each body that carry its tag; the rest is filler up to the body size. */
const TAG_BYTES = 48;

interface Tracked {
  /** When the message was due (paced runs) or handed to client.send (full load). */
  readonly due: number;
  /** When its SEND left (transport.send called). */
  sendAt?: number;
  /** When the relay's OK came back. */
  okAt?: number;
}

/** What one timed run measured. */
export interface StackRun {
  /** Messages received (decrypted and stored) inside the window. */
  readonly received: number;
  /** The window, ms. */
  readonly elapsed: number;
  /** Messages sent in the run (all of them were received before it returned). */
  readonly sent: number;
  /** End to end, due → message-received, ms (every message of the run). */
  readonly latencies: number[];
  /** The three stretches, ms, per message (see the module comment). */
  readonly senderMs: number[];
  readonly relayMs: number[];
  readonly recipientMs: number[];
  /** The SEND round trip (transport.send → the relay's OK), ms. */
  readonly okMs: number[];
}

export interface Fleet {
  readonly clients: number;
  /** The length of a 1 KiB message's frame on the wire (as the relay stores it). */
  frameBytes(): number;
  /**
   * One run of `ms`. Without `perSecond`: every client keeps one send in flight (full
   * load). With it: each client sends on a fixed schedule adding up to `perSecond`
   * messages/s; a message's latency counts from when it was due.
   */
  run(ms: number, perSecond?: number): Promise<StackRun>;
  close(): Promise<void>;
}

class Recorder {
  readonly tracked = new Map<string, Tracked>();
  readonly latencies: number[] = [];
  readonly senderMs: number[] = [];
  readonly relayMs: number[] = [];
  readonly recipientMs: number[] = [];
  readonly okMs: number[] = [];
  inWindow = 0;
  total = 0;
  constructor(
    readonly run: number,
    readonly start: number,
    readonly end: number,
  ) {}
}

/**
 * Starts `pairs` pairs of clients against the relay at `wsUrl` and establishes every
 * pair's session both ways (not timed).
 */
export async function startFleet(wsUrl: string, pairs: number, bodyBytes: number, log: (s: string) => void): Promise<Fleet> {
  const filler = 'x'.repeat(bodyBytes - TAG_BYTES);
  let recorder: Recorder | undefined;
  let runNumber = 0;
  let lastFrameBytes = 0;
  let handlerOverlap = false;

  interface Member {
    readonly index: number;
    readonly client: Client;
    /** The tag of the message being sent now (sends are awaited one at a time). */
    current: string | undefined;
    /** When the frame being handled now reached the handler. */
    arrivedAt: number;
    handling: number;
  }

  /** The transport, timed at its boundary for `member`. */
  function timedTransport(inner: TransportAdapter, member: () => Member): TransportAdapter {
    // `sendShared` is not timed: the stack bench measures pairwise messages, which core sends with `send`.
    return forwardTransport(inner, {
      async send(messages: readonly OutboundMessage[]) {
        const m = member();
        const t = m.current !== undefined ? recorder?.tracked.get(m.current) : undefined;
        if (t) t.sendAt = performance.now();
        if (messages.length === 1) lastFrameBytes = messages[0]!.frame.byteLength;
        await inner.send(messages);
        if (t) t.okAt = performance.now();
      },
      onFrame(handler: FrameHandler) {
        return inner.onFrame(async (frame) => {
          const m = member();
          if (m.handling > 0) handlerOverlap = true;
          m.handling++;
          m.arrivedAt = performance.now();
          try {
            await handler(frame);
          } finally {
            m.handling--;
          }
        });
      },
    });
  }

  async function makeMember(index: number, userId: string): Promise<Member> {
    let self: Member | undefined;
    const transport = timedTransport(createWebSocketTransport({ url: wsUrl, WebSocket: WebSocket as unknown as WebSocketConstructor }), () => self!);
    const client = await createClient({ userId, deviceId: 'd', storage: createMemoryStorage(), transport });
    const member: Member = { index, client, current: undefined, arrivedAt: 0, handling: 0 };
    self = member;
    client.on('error', (e) => log(`client ${userId}: background error ${e instanceof Error ? e.message : String(e)}`));
    client.on('message-received', (msg) => {
      const done = performance.now();
      const tag = new TextDecoder().decode(msg.body.subarray(0, TAG_BYTES)).trim();
      const rec = recorder;
      if (!rec || !tag.startsWith(`r${rec.run}:`)) return; // set-up messages
      const t = rec.tracked.get(tag);
      if (!t) return;
      rec.tracked.delete(tag);
      rec.total++;
      if (done >= rec.start && done <= rec.end) rec.inWindow++;
      rec.latencies.push(done - t.due);
      if (t.sendAt !== undefined && t.okAt !== undefined) {
        rec.senderMs.push(t.sendAt - t.due);
        rec.relayMs.push(member.arrivedAt - t.sendAt);
        rec.recipientMs.push(done - member.arrivedAt);
        rec.okMs.push(t.okAt - t.sendAt);
      }
    });
    await withTimeout(client.start(), 30_000, `starting client ${userId}`);
    return member;
  }

  // Start the clients ten at a time (key generation is CPU; the relay is another process).
  const members: Member[] = [];
  for (let i = 0; i < pairs; i += 5) {
    const batch: Promise<Member>[] = [];
    for (let j = i; j < Math.min(pairs, i + 5); j++) batch.push(makeMember(2 * j, `a${j}`), makeMember(2 * j + 1, `b${j}`));
    members.push(...(await Promise.all(batch)));
  }
  members.sort((x, y) => x.index - y.index);
  const partnerOf = (m: Member): Member => members[m.index ^ 1]!;

  // Establish every session, both ways (the first message of each direction carries PQXDH).
  let established = 0;
  const offs = members.map((m) => m.client.on('message-received', () => void established++));
  await withTimeout(
    Promise.all(members.filter((m) => m.index % 2 === 0).map(async (a) => {
      const b = partnerOf(a);
      await a.client.send(b.client.address.userId, 'hello');
      await b.client.send(a.client.address.userId, 'hello');
    })),
    60_000,
    'establishing the sessions',
  );
  await waitUntil(() => established >= members.length, 30_000, 'receiving the set-up messages');
  for (const off of offs) off();

  return {
    clients: members.length,
    frameBytes: () => lastFrameBytes,
    async run(ms, perSecond) {
      const run = ++runNumber;
      const start = performance.now();
      const rec = new Recorder(run, start, start + ms);
      recorder = rec;
      let seq = 0;
      let sent = 0;
      const body = (tag: string): string => tag.padEnd(TAG_BYTES) + filler;
      const gap = perSecond ? (members.length * 1000) / perSecond : 0;
      const loop = async (m: Member): Promise<void> => {
        const to = partnerOf(m).client.address.userId;
        // Paced: each client's schedule starts at its own offset, so sends are spread out.
        let due = start + (gap * m.index) / members.length;
        for (;;) {
          const now = performance.now();
          if (gap > 0) {
            if (due >= rec.end) return;
            if (due > now) await new Promise((r) => setTimeout(r, due - now));
          } else {
            if (now >= rec.end) return;
            due = now;
          }
          const tag = `r${run}:${m.index}:${seq++}`;
          rec.tracked.set(tag, { due });
          m.current = tag;
          await m.client.send(to, body(tag));
          m.current = undefined;
          sent++;
          if (gap > 0) due += gap;
        }
      };
      await withTimeout(Promise.all(members.map(loop)), ms + 30_000, 'the sending clients');
      // Drain: every message of this run is received before the next run starts.
      await waitUntil(() => rec.total >= sent, 30_000, `receiving the ${sent} messages of run ${run}`);
      recorder = undefined;
      if (handlerOverlap) throw new Error('bench:stack: a transport ran two frame handlers at once; the per-stretch figures would be wrong');
      return {
        received: rec.inWindow,
        elapsed: ms,
        sent,
        latencies: rec.latencies,
        senderMs: rec.senderMs,
        relayMs: rec.relayMs,
        recipientMs: rec.recipientMs,
        okMs: rec.okMs,
      };
    },
    async close() {
      await withTimeout(
        Promise.all(members.map((m) => m.client.close())),
        15_000,
        'closing the clients',
      ).catch((e: unknown) => log(String(e)));
    },
  };
}
