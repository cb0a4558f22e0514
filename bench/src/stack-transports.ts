/**
 * A diagnostic of `pnpm bench:stack`: the same traffic as the client pairs, through the
 * same relay and WebSocket transport, but with no Deadbolt client on either end —
 * opaque frames of a real message's length, no encryption, no client storage. Each
 * transport keeps one SEND in flight to its partner; a frame counts when the partner's
 * frame handler got it (the transport acknowledges it after the handler, as for a client).
 * The gap between this rate and the clients' is what the client layer costs; the gap
 * between this rate and the raw echo is what the relay and transport cost.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { conformanceDevice } from '@deadbolt/relay/testing';
import type { Address, TransportAdapter } from '@deadbolt/spec';
import { createWebSocketTransport, type WebSocketConstructor } from '@deadbolt/transport-websocket';
import type { RunResult } from './harness.js';
import { waitUntil, withTimeout } from './stack-ipc.js';

export interface TransportPairs {
  run(ms: number): Promise<RunResult>;
  close(): Promise<void>;
}

export async function startTransportPairs(wsUrl: string, pairs: number, frameBytes: number): Promise<TransportPairs> {
  const frame = new Uint8Array(randomBytes(frameBytes));
  let start = 0;
  let end = 0;
  let inWindow = 0;
  let received = 0;
  const ends: { transport: TransportAdapter; address: Address }[] = [];
  for (let i = 0; i < 2 * pairs; i += 10) {
    const batch = await withTimeout(
      Promise.all(
        Array.from({ length: Math.min(10, 2 * pairs - i) }, async (_, k) => {
          const device = await conformanceDevice(`t${i + k}`, 'd');
          const transport = createWebSocketTransport({ url: wsUrl, WebSocket: WebSocket as unknown as WebSocketConstructor });
          transport.onFrame(() => {
            received++;
            const now = performance.now();
            if (now >= start && now <= end) inWindow++;
          });
          await transport.connect(device.auth);
          return { transport, address: device.address };
        }),
      ),
      30_000,
      'connecting the bare transports',
    );
    ends.push(...batch);
  }
  return {
    async run(ms) {
      received = 0;
      inWindow = 0;
      start = performance.now();
      end = start + ms;
      let sent = 0;
      await withTimeout(
        Promise.all(
          ends.map(async (e, i) => {
            const to = ends[i ^ 1]!.address;
            while (performance.now() < end) {
              await e.transport.send([{ to, frame }]);
              sent++;
            }
          }),
        ),
        ms + 30_000,
        'the bare transports sending',
      );
      await waitUntil(() => received >= sent, 30_000, `the bare transports receiving ${sent} frames`);
      return { ops: inWindow, elapsed: ms };
    },
    async close() {
      await withTimeout(Promise.all(ends.map((e) => e.transport.close())), 15_000, 'closing the bare transports').catch(() => undefined);
    },
  };
}
