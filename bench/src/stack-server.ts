/**
 * A server for the stack benchmark, run in its own process (as in production, the relay
 * does not share a CPU with its clients). Mode `echo`: a raw `ws` server echoing binary
 * messages. Mode `relay`: the reference relay on SQLite with rate limits loosened (the
 * benchmark measures throughput, not the abuse limits). Prints `{"url","wsUrl"}` on stdout,
 * then answers `{"type":"stats"}` IPC messages with its memory use.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { createRelay, createSqliteRelayStore, silentRelayLogger } from '@deadbolt/relay';
import { LOOSE_TEST_LIMITS } from '@deadbolt/relay/testing';

const mode = process.argv[2];
const dir = mkdtempSync(join(tmpdir(), 'deadbolt-stack-'));
const dbPath = join(dir, 'relay.db');
let close: () => Promise<void>;

if (mode === 'echo') {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  await new Promise<void>((resolve) => wss.on('listening', resolve));
  const { port } = wss.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}` })}\n`);
  close = () => new Promise((resolve) => wss.close(() => resolve()));
} else {
  const relay = await createRelay({
    host: '127.0.0.1',
    port: 0,
    store: createSqliteRelayStore({ path: dbPath }),
    logger: silentRelayLogger,
    limits: { ...LOOSE_TEST_LIMITS, senderQueuedPerMailbox: 100_000, mailboxMessages: 100_000, mailboxBytes: 1 << 30 },
  });
  process.stdout.write(`${JSON.stringify({ url: relay.url, wsUrl: relay.wsUrl })}\n`);
  close = () => relay.close();
}

process.on('message', (m: { type?: string }) => {
  if (m?.type !== 'stats') return;
  globalThis.gc?.();
  const mem = process.memoryUsage();
  let dbBytes = 0;
  for (const f of [dbPath, `${dbPath}-wal`]) {
    try {
      dbBytes += statSync(f).size;
    } catch {
      /* absent */
    }
  }
  process.send?.({ type: 'stats', rss: mem.rss, heapUsed: mem.heapUsed, dbBytes });
});
process.on('disconnect', () => {
  void close().finally(() => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
});
