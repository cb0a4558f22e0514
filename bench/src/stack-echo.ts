/**
 * The baseline of `pnpm bench:stack`: raw `ws` clients against the echo server
 * (stack-server.ts), 1 KiB binary messages, a fixed number kept in flight per connection.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import type { RunResult } from './harness.js';
import { waitUntil, withTimeout } from './stack-ipc.js';

export interface EchoClients {
  /** One timed run of `ms`: echoes received within it. */
  run(ms: number): Promise<RunResult>;
  close(): void;
}

/** Opens `connections` sockets to `wsUrl`, each of which will keep `window` messages in flight. */
export async function openEchoClients(wsUrl: string, connections: number, window: number, messageBytes: number): Promise<EchoClients> {
  const payload = new Uint8Array(messageBytes).fill(0x5a);
  const sockets = await withTimeout(
    Promise.all(
      Array.from(
        { length: connections },
        () =>
          new Promise<WebSocket>((resolve, reject) => {
            const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
            ws.once('open', () => resolve(ws));
            ws.once('error', reject);
          }),
      ),
    ),
    10_000,
    'opening the echo connections',
  );
  let end = 0;
  let start = 0;
  let counted = 0;
  let outstanding = 0;
  for (const ws of sockets) {
    ws.on('message', () => {
      outstanding--;
      const now = performance.now();
      if (now <= end) {
        counted++;
        outstanding++;
        ws.send(payload);
      }
    });
  }
  return {
    async run(ms) {
      counted = 0;
      start = performance.now();
      end = start + ms;
      for (const ws of sockets) {
        for (let i = 0; i < window; i++) {
          outstanding++;
          ws.send(payload);
        }
      }
      // Every message sent before `end` comes back; none is sent after it.
      await waitUntil(() => performance.now() > end && outstanding === 0, ms + 10_000, 'the echo run', 2);
      return { ops: counted, elapsed: end - start };
    },
    close() {
      for (const ws of sockets) ws.terminate();
    },
  };
}
