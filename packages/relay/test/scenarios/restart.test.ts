/**
 * SECURITY.md F44: a relay restart loses no message it acknowledged. The relay runs as a
 * child process (the `deadbolt-relay` CLI over SQLite) and is killed with SIGKILL — no
 * graceful close, no checkpoint — while SENDs are in flight; a new process on the same
 * database must deliver every message it answered OK to, and none it had deleted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import type { RelayFrame } from '@deadbolt/spec';
import { expectBytesEqual, patternBytes } from '@deadbolt/test-kit';
import { createDevice } from '../helpers/devices.js';
import { connectWs, deadline, expectOk, httpAuth, httpRpc, type WsClient } from '../helpers/clients.js';

/** Burst message `i`: 2,000 pattern bytes whose first four carry `i`. */
function burstFrame(i: number): Uint8Array {
  const f = patternBytes(2000, i);
  new DataView(f.buffer).setUint32(0, i);
  return f;
}

function indexOf(frame: Uint8Array): number {
  return new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(0);
}

const PACKAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface RelayProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly wsUrl: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the CLI on `dbPath` and resolves once it printed its listening line. */
function startCli(dbPath: string): Promise<RelayProcess> {
  const child = spawn(process.execPath, ['--conditions=@deadbolt/source', '--import', 'tsx', 'src/cli.ts', '--port', '0', '--db', dbPath, '--log-level', 'warn'], {
    cwd: PACKAGE_DIR,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = new Promise<RelayProcess>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+) \(WebSocket (ws:\/\/\S+?);/.exec(out);
      if (m) resolve({ child, url: m[1]!, wsUrl: m[2]!, exited });
    });
    void exited.then((e) => reject(new Error(`relay exited early (${e.code ?? e.signal}): ${stderr}`)));
  });
  return deadline(ready, 20_000, 'the relay CLI to listen');
}

let dir: string | undefined;
const children: ChildProcess[] = [];
const clients: WsClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

it('SIGKILL during a burst of SENDs: every message answered OK, and only those not acknowledged, survive the restart', { timeout: 60_000 }, async () => {
  dir = await mkdtemp(join(tmpdir(), 'deadbolt-relay-restart-'));
  const db = join(dir, 'relay.db');
  const first = await startCli(db);
  children.push(first.child);

  const alice = await createDevice('alice', 'phone');
  const bob = await createDevice('bob', 'laptop', { oneTime: 7, pqOneTime: 4 });
  const b = (await connectWs(first.wsUrl, bob)).client;
  clients.push(b);
  expectOk(await b.request({ kind: 'publish-prekeys', upload: bob.upload() }));
  const a = (await connectWs(first.wsUrl, alice)).client;
  clients.push(a);

  // Ten messages Bob receives and acknowledges before the crash: they must stay deleted.
  for (let i = 0; i < 10; i++) expectOk(await a.request({ kind: 'send', messages: [{ to: bob.address, frame: patternBytes(300, 1000 + i) }] }));
  const early = await b.delivered(10);
  expectOk(await b.request({ kind: 'ack', ids: early.map((m) => m.id) }));
  await b.close();

  // Then a burst of 45 SENDs, not awaited one by one; SIGKILL once 15 have been answered OK.
  const acknowledged = new Set<number>();
  let killed = false;
  const burst = Array.from({ length: 45 }, (_, i) =>
    a.request({ kind: 'send', messages: [{ to: bob.address, frame: burstFrame(i) }] }, 20_000).then(
      (answer: RelayFrame) => {
        if (answer.kind === 'ok' && !killed) acknowledged.add(i);
        if (acknowledged.size >= 15 && !killed) {
          killed = true;
          first.child.kill('SIGKILL');
        }
      },
      () => {}, // no answer: the relay died first
    ),
  );
  const exit = await first.exited;
  expect(exit.signal).toBe('SIGKILL');
  await Promise.allSettled(burst);
  expect(acknowledged.size).toBeGreaterThanOrEqual(15);

  // A new process on the same database. Bob reads over HTTP: one FETCH returns the whole
  // queue in arrival order (no WebSocket push racing it).
  const second = await startCli(db);
  children.push(second.child);
  const { token, authOk } = await httpAuth(second.url, bob);
  expect(authOk).toMatchObject({ oneTimePrekeys: 7, pqPrekeys: 4 });
  const fetched = (await httpRpc(second.url, { kind: 'fetch', waitMs: 0, max: 100 }, { token })).frame;
  if (fetched?.kind !== 'deliver') throw new Error('expected DELIVER');
  // Every OK'd message is there; possibly some the relay committed but could not answer
  // before it died; never an acknowledged (deleted) early one.
  const order: number[] = [];
  for (const m of fetched.messages) {
    expect(m.frame.length, 'only burst messages remain').toBe(2000);
    const i = indexOf(m.frame);
    expectBytesEqual(m.frame, burstFrame(i), `message ${i}`);
    expect(m.from).toEqual(alice.address);
    order.push(i);
  }
  for (const i of acknowledged) expect(order.includes(i), `message ${i} was answered OK before the kill`).toBe(true);
  expect(new Set(order).size).toBe(order.length);
  expect(order).toEqual([...order].sort((x, y) => x - y)); // arrival order survived
  expectOk((await httpRpc(second.url, { kind: 'ack', ids: fetched.messages.map((m) => m.id) }, { token })).frame);

  // A graceful stop of the second process (SIGTERM) exits 0.
  second.child.kill('SIGTERM');
  expect(await second.exited).toEqual({ code: 0, signal: null });
});
