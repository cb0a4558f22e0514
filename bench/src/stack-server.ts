/**
 * A server process of `pnpm bench:stack` (forked by stack-child.ts; never run by hand).
 * As in production, a server does not share its CPU with the clients.
 *
 * ```
 * stack-server.ts echo            a raw `ws` server echoing every binary message back
 * stack-server.ts relay <db path> the reference relay: createRelay + createSqliteRelayStore,
 *                                 rate limits loosened with LOOSE_TEST_LIMITS
 * ```
 *
 * Prints `{"url","wsUrl"}` as its first stdout line, then answers IPC requests
 * `{ id, type }` with `{ id, ok, value }` ({@link ServerRequest}): its memory, CPU time and
 * event-loop utilisation, and a CPU profile of a chosen stretch (node:inspector, the same
 * `.cpuprofile` format as `node --cpu-prof`, without the start-up). It closes the server and
 * exits when the parent disconnects; the parent owns and removes the database's folder.
 *
 * @module
 */
import { statSync, writeFileSync } from 'node:fs';
import { WebSocketServer } from 'ws';
import { createRelay, createSqliteRelayStore, silentRelayLogger } from '@deadbolt/relay';
import { LOOSE_TEST_LIMITS } from '@deadbolt/relay/testing';
import { performance } from 'node:perf_hooks';
import { startProfile, usageSnapshot, type ProfileHandle, type ServerRequest, type ServerStats, type StoreCounters } from './stack-ipc.js';

const [mode, dbPath] = process.argv.slice(2);
let close: () => Promise<void>;
let address: { url: string; wsUrl: string };
let counters: { -readonly [K in keyof StoreCounters]: StoreCounters[K] } | undefined;

if (mode === 'echo') {
  // perMessageDeflate off: the relay's server does not compress either.
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  const { port } = wss.address() as { port: number };
  address = { url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}` };
  close = () =>
    new Promise((resolve) => {
      for (const c of wss.clients) c.terminate();
      wss.close(() => resolve());
    });
} else if (mode === 'relay' && dbPath) {
  // The store, with its hot calls counted (a pass-through: same methods, same results).
  // Enqueues and acks queued in one event-loop turn share one commit (group commit); a
  // group is counted on the first of them in a turn, and the turn's end is marked with a
  // setImmediate queued just before the store queues its flush.
  const inner = createSqliteRelayStore({ path: dbPath });
  const c = (counters = { enqueues: 0, acks: 0, fetches: 0, fetchMs: 0, groups: 0 });
  let groupOpen = false;
  const grouped = (): void => {
    if (groupOpen) return;
    groupOpen = true;
    c.groups++;
    setImmediate(() => (groupOpen = false));
  };
  const store: typeof inner = {
    ...inner,
    enqueue(batch, quota) {
      c.enqueues++;
      grouped();
      return inner.enqueue(batch, quota);
    },
    ack(mailbox, ids) {
      c.acks++;
      grouped();
      return inner.ack(mailbox, ids);
    },
    fetch(mailbox, options) {
      c.fetches++;
      const t = performance.now();
      try {
        return inner.fetch(mailbox, options);
      } finally {
        c.fetchMs += performance.now() - t;
      }
    },
  };
  // Only the rate limits are loosened (a benchmark measures throughput, not the abuse
  // limits); mailbox quotas and everything else keep their defaults.
  const relay = await createRelay({
    host: '127.0.0.1',
    port: 0,
    store,
    logger: silentRelayLogger,
    limits: LOOSE_TEST_LIMITS,
  });
  address = { url: relay.url, wsUrl: relay.wsUrl };
  close = () => relay.close();
} else {
  process.stderr.write('usage: stack-server.ts echo | relay <db path>\n');
  process.exit(2);
}

function databaseBytes(): number {
  if (!dbPath) return 0;
  let bytes = 0;
  for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) {
    try {
      bytes += statSync(f).size;
    } catch {
      // absent
    }
  }
  return bytes;
}

let profile: ProfileHandle | undefined;

async function answer(req: ServerRequest): Promise<unknown> {
  switch (req.type) {
    case 'stats': {
      // After a full collection, so that the heap figure is what is live, not garbage.
      globalThis.gc?.();
      const mem = process.memoryUsage();
      const stats: ServerStats = { rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, external: mem.external, dbBytes: databaseBytes() };
      return stats;
    }
    case 'usage':
      return usageSnapshot(counters);
    case 'profile-start':
      if (profile) throw new Error('a profile is already running');
      profile = await startProfile();
      return null;
    case 'profile-stop': {
      if (!profile || !req.file) throw new Error('no profile running, or no file');
      const p = await profile.stop();
      profile = undefined;
      writeFileSync(req.file, JSON.stringify(p));
      return req.file;
    }
  }
}

process.on('message', (raw) => {
  const req = raw as ServerRequest;
  answer(req).then(
    (value) => process.send?.({ id: req.id, ok: true, value }),
    (e: unknown) => process.send?.({ id: req.id, ok: false, value: e instanceof Error ? e.message : String(e) }),
  );
});

let closing = false;
function shutdown(): void {
  if (closing) return;
  closing = true;
  // Bounded: a server that cannot close within 5 s exits anyway.
  setTimeout(() => process.exit(0), 5000).unref();
  void close()
    .catch(() => undefined)
    .finally(() => process.exit(0));
}
process.on('disconnect', shutdown);
process.on('SIGTERM', shutdown);

// Started: the parent reads this line.
process.stdout.write(`${JSON.stringify(address)}\n`);
