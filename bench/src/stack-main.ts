/**
 * `pnpm bench:stack`: the whole stack on loopback (client, WebSocket transport, relay with
 * SQLite, transport, client) beside a raw `ws` echo server measured in the same run.
 *
 * - sustained 1 KiB messages/s between 50 client pairs (each client keeps one send in
 *   flight; a message counts when its recipient decrypted and persisted it), against the
 *   raw echo rate of 50 connections with the same in-flight window (target: >= 40%);
 * - end-to-end latency p50/p99 at half that load;
 * - relay memory (RSS, heap) and database size after 100,000 messages queued for offline
 *   devices.
 *
 * Servers run in their own processes; clients in this one. `--json` prints one object per
 * line; `--quick` shrinks everything for the smoke test.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { createClient, type Client } from '@deadbolt/core';
import { conformanceDevice } from '@deadbolt/relay/testing';
import { address } from '@deadbolt/spec';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import { createWebSocketTransport, type WebSocketConstructor } from '@deadbolt/transport-websocket';
import { formatInt, jsonLines, printTable, rateLine, valueLine, type RateLine, type ValueLine } from './harness.js';

const json = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
const PAIRS = quick ? 4 : 50;
const SECONDS = quick ? 0.5 : 4;
const QUEUED = quick ? 1000 : 100_000;
const BODY = 'x'.repeat(1024);
const log = (s: string): void => {
  if (!json) console.log(s);
  else process.stderr.write(`${s}\n`);
};

interface Server {
  readonly child: ChildProcess;
  readonly url: string;
  readonly wsUrl: string;
}

function startServer(mode: 'echo' | 'relay'): Promise<Server> {
  const script = fileURLToPath(new URL('./stack-server.ts', import.meta.url));
  // STACK_PROFILE_DIR=/tmp/x writes a CPU profile of each server process there.
  const profile = process.env.STACK_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.STACK_PROFILE_DIR}`] : [];
  const child = fork(script, [mode], { execArgv: ['--conditions=@deadbolt/source', '--import', 'tsx', '--expose-gc', ...profile], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve({ child, ...(JSON.parse(buf.slice(0, nl)) as { url: string; wsUrl: string }) });
    });
    child.once('exit', (code) => reject(new Error(`${mode} server exited (${code})`)));
  });
}

function stats(server: Server): Promise<{ rss: number; heapUsed: number; dbBytes: number }> {
  return new Promise((resolve) => {
    server.child.once('message', (m) => resolve(m as { rss: number; heapUsed: number; dbBytes: number }));
    server.child.send({ type: 'stats' });
  });
}

/** Raw ws echo: 50 connections, one message in flight each, for SECONDS. */
async function rawEcho(server: Server): Promise<number> {
  const payload = new Uint8Array(1024);
  const sockets = await Promise.all(
    Array.from({ length: PAIRS }, () => new Promise<WebSocket>((resolve) => {
      const ws = new WebSocket(server.wsUrl);
      ws.on('open', () => resolve(ws));
    })),
  );
  let count = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          ws.on('message', () => {
            count++;
            if (performance.now() < end) ws.send(payload);
            else resolve();
          });
          ws.send(payload);
        }),
    ),
  );
  for (const ws of sockets) ws.close();
  return count / SECONDS;
}

async function makeClients(server: Server): Promise<[Client, Client][]> {
  const pairs: [Client, Client][] = [];
  for (let i = 0; i < PAIRS; i++) {
    const make = async (user: string): Promise<Client> => {
      const c = await createClient({
        userId: user,
        deviceId: 'd',
        storage: createMemoryStorage(),
        transport: createWebSocketTransport({ url: server.wsUrl, WebSocket: WebSocket as unknown as WebSocketConstructor }),
        prekeyBatch: { oneTime: 2, pqOneTime: 1 },
      });
      await c.start();
      return c;
    };
    pairs.push([await make(`a${i}`), await make(`b${i}`)]);
  }
  // Establish every session outside the timed part.
  for (const [a, b] of pairs) {
    const got = new Promise<void>((resolve) => {
      const off = a.on('message-received', () => {
        off();
        resolve();
      });
    });
    await a.send(b.address.userId, 'hi');
    await b.send(a.address.userId, 'hi');
    await got;
  }
  return pairs;
}

/** Every client sends to its partner, one send in flight, for SECONDS; counts decrypted messages. */
async function sustained(pairs: [Client, Client][], pacedPerSecond?: number): Promise<{ rate: number; latencies: number[] }> {
  let received = 0;
  const latencies: number[] = [];
  const offs: (() => void)[] = [];
  for (const [a, b] of pairs) {
    for (const c of [a, b]) {
      offs.push(
        c.on('message-received', (m) => {
          received++;
          const sent = Number(new TextDecoder().decode(m.body.subarray(0, 20)).trim());
          if (Number.isFinite(sent)) latencies.push(performance.now() - sent);
        }),
      );
    }
  }
  const start = performance.now();
  const end = start + SECONDS * 1000;
  const perClientGapMs = pacedPerSecond ? (2 * pairs.length * 1000) / pacedPerSecond : 0;
  const loop = async (from: Client, to: string): Promise<void> => {
    let next = performance.now();
    while (performance.now() < end) {
      if (perClientGapMs > 0) {
        const wait = next - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        next += perClientGapMs;
      }
      await from.send(to, `${performance.now().toFixed(3).padStart(20)}${BODY.slice(20)}`);
    }
  };
  await Promise.all(pairs.flatMap(([a, b]) => [loop(a, b.address.userId), loop(b, a.address.userId)]));
  const elapsed = (performance.now() - start) / 1000;
  for (const off of offs) off();
  return { rate: received / elapsed, latencies };
}

function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

/** QUEUED opaque 1 KiB frames into 10 offline devices' mailboxes, through one sender's transport. */
async function queueForOffline(server: Server): Promise<void> {
  const sender = await conformanceDevice('flooder', 'd');
  const t = createWebSocketTransport({ url: server.wsUrl, WebSocket: WebSocket as unknown as WebSocketConstructor });
  await t.connect(sender.auth);
  const offline: ReturnType<typeof address>[] = [];
  for (let i = 0; i < 10; i++) {
    const d = await conformanceDevice(`offline${i}`, 'd');
    const r = createWebSocketTransport({ url: server.wsUrl, WebSocket: WebSocket as unknown as WebSocketConstructor });
    await r.connect(d.auth); // registers the device
    await r.close();
    offline.push(address(`offline${i}`, 'd'));
  }
  const frame = new Uint8Array(1024).fill(7);
  for (let sent = 0; sent < QUEUED; sent += 100) {
    await t.send(Array.from({ length: 100 }, (_, i) => ({ to: offline[(sent + i) % 10]!, frame })));
  }
  await t.close();
}

async function main(): Promise<void> {
  const lines: (RateLine | ValueLine)[] = [];
  log(`stack bench: ${PAIRS} client pairs, ${SECONDS} s per figure, 1 KiB messages; relay on SQLite in its own process, rate limits loosened`);
  const echo = await startServer('echo');
  const echoRate = await rawEcho(echo);
  echo.child.disconnect();

  const relay = await startServer('relay');
  const pairs = await makeClients(relay);
  const full = await sustained(pairs);
  const half = await sustained(pairs, full.rate / 2);
  for (const [a, b] of pairs) {
    await a.close();
    await b.close();
  }
  const before = await stats(relay);
  await queueForOffline(relay);
  const after = await stats(relay);
  relay.child.disconnect();

  const rate = rateLine('stack/sustained 1 KiB messages, 50 pairs', full.rate, { name: 'raw ws echo, 50 connections', perSecond: echoRate });
  lines.push(
    rate,
    valueLine('stack/latency p50 at half load', Math.round(percentile(half.latencies, 50) * 100) / 100, 'ms'),
    valueLine('stack/latency p99 at half load', Math.round(percentile(half.latencies, 99) * 100) / 100, 'ms'),
    valueLine(`relay/rss after ${QUEUED} queued`, after.rss, 'bytes'),
    valueLine(`relay/heap after ${QUEUED} queued`, after.heapUsed, 'bytes'),
    valueLine(`relay/rss growth for ${QUEUED} queued`, after.rss - before.rss, 'bytes'),
    valueLine(`relay/database after ${QUEUED} queued`, after.dbBytes, 'bytes'),
  );
  if (json) {
    process.stdout.write(jsonLines(lines));
    return;
  }
  log('');
  log(
    printTable(
      ['figure', 'Deadbolt', 'raw ws echo', 'ratio', 'target', 'mark'],
      [[rate.name, `${formatInt(rate.perSecond)}/s`, `${formatInt(rate.baselinePerSecond)}/s`, `${(rate.ratio * 100).toFixed(1)}%`, '>= 40%', rate.ratio >= 0.4 ? 'PASS' : 'BELOW']],
    ),
  );
  log('');
  log(printTable(['figure', 'value'], lines.slice(1).map((l) => [l.name, 'unit' in l ? `${l.unit === 'bytes' ? formatInt(l.value) : l.value} ${l.unit}` : ''])));
}

await main();
process.exit(0);
