/**
 * SECURITY.md D24 (issue 6, 1:1 part): Bob's client on SQLite storage is killed with
 * SIGKILL at random moments, 200 times, while Alice streams messages to him over the real
 * relay; he replies to every 5th message. Each time he starts again on the same database.
 * At the end every message is in his history exactly once, and every reply he recorded as
 * accepted by the relay reached Alice (a reused sending key would make her drop one as a
 * duplicate), and the session still works.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { expect, test } from 'vitest';
import { decodeKey } from '../../packages/storage-sqlite/src/key-encoding.js';
import { prng } from './fault-proxy.js';
import { startClient, startRelay, text } from './stack.js';

const KILLS = Number(process.env.DEADBOLT_CRASH_KILLS ?? 200);
const PER_ROUND = 2;
const CHILD = fileURLToPath(new URL('./crash-child.ts', import.meta.url));

function spawnBob(args: string[]): { child: ChildProcess; started: Promise<void>; exited: Promise<void>; output: () => string } {
  const child = spawn(process.execPath, ['--conditions=@deadbolt/source', '--import', 'tsx', CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const started = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', () => out.includes('started') && resolve());
    void exited.then(() => (out.includes('started') ? resolve() : reject(new Error(`bob exited before starting: ${err.slice(-2000)}`))));
  });
  started.catch(() => undefined); // a kill before start is expected; awaiting callers still see the rejection
  return { child, started, exited, output: () => out };
}

test(`SIGKILL at random points, ${KILLS} times: every message exactly once, no sending key reused`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'deadbolt-crash-'));
  const dbPath = join(dir, 'bob.db');
  const sentLog = join(dir, 'sent.log');
  writeFileSync(sentLog, '');
  const relay = await startRelay({ dbPath: join(dir, 'relay.db') });
  const rand = prng(424242);
  const alice = await startClient('websocket', relay, 'alice', 'phone');
  const rejected: string[] = [];
  alice.client.on('message-rejected', (r) => rejected.push(r.code));
  try {
    // Bob's first run registers him and publishes his prekeys.
    let bob = spawnBob([dbPath, relay.wsUrl, sentLog, 'run']);
    await bob.started;
    let sent = 0;
    let killsDuringWork = 0;
    let killedWhileStarting = 0;
    for (let k = 0; k < KILLS; k++) {
      // Most rounds: Bob is up, Alice's messages arrive, and the kill lands while he
      // receives, decrypts, persists and replies. Some rounds: the kill lands while he starts.
      const waitForStart = rand() < 0.8;
      if (waitForStart) await bob.started;
      for (let i = 0; i < PER_ROUND; i++) await alice.client.send('bob', `m-${sent++}`);
      const delay = Math.floor(rand() * (waitForStart ? 60 : 400));
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        void bob.exited.then(() => {
          clearTimeout(t);
          resolve();
        });
      });
      if (bob.child.exitCode === null) {
        if (!bob.output().includes('started')) killedWhileStarting++;
        bob.child.kill('SIGKILL');
        killsDuringWork++;
      }
      await bob.exited;
      bob = spawnBob([dbPath, relay.wsUrl, sentLog, 'run']);
    }
    bob.child.kill('SIGKILL');
    await bob.exited;

    // A final, uninterrupted run reports Bob's history once everything has arrived.
    const report = spawnBob([dbPath, relay.wsUrl, sentLog, 'report', String(sent)]);
    await report.exited;
    const history = JSON.parse(report.output().trim().split('\n').at(-1)!) as string[];
    const counts = new Map<string, number>();
    for (const t of history) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (let i = 0; i < sent; i++) expect(counts.get(`m-${i}`), `m-${i}`).toBe(1);
    expect(history).toHaveLength(sent);

    // Every reply Bob recorded as accepted reached Alice: no sending key was reused.
    const replies = readFileSync(sentLog, 'utf8').split('\n').filter(Boolean);
    await alice.waitForMessages(replies.length, 60_000);
    const got = new Set(alice.received.map(text));
    for (const r of replies) expect(got.has(r), r).toBe(true);
    expect(rejected).toEqual([]);
    console.log(`crash consistency: ${KILLS} rounds, ${killsDuringWork} SIGKILLs (${killedWhileStarting} while starting), ${sent} messages delivered exactly once, ${replies.length} replies all received`);

    // Prekey uploads survived the kills too: every one-time prekey whose private half
    // Bob holds was published (it is at the relay, or was already handed out), so no
    // key is orphaned and a crash mid-upload re-published the same keys (issue 6).
    const bobDb = new Database(dbPath, { readonly: true });
    const bobKeys = (bobDb.prepare('SELECT k FROM kv').all() as { k: Uint8Array }[]).map((r) => decodeKey(r.k));
    bobDb.close();
    const relayDb = new Database(join(dir, 'relay.db'), { readonly: true });
    const known = new Set(
      (relayDb
        .prepare(`SELECT kind, key_id FROM one_time_prekeys WHERE user_id = 'bob' UNION SELECT kind, key_id FROM consumed_prekeys WHERE user_id = 'bob'`)
        .all() as { kind: number; key_id: number }[]).map((r) => r.key_id),
    );
    const lastResort = relayDb.prepare(`SELECT last_resort_prekey FROM devices WHERE user_id = 'bob'`).pluck().get() as Uint8Array;
    relayDb.close();
    const lastResortId = new DataView(lastResort.buffer, lastResort.byteOffset).getUint32(0);
    const held = bobKeys
      .filter((k) => k[0] === 'prekey' && (k[1] === 'one-time' || k[1] === 'pq'))
      .map((k) => Number(k[2]))
      .filter((id) => id !== lastResortId);
    expect(held.length).toBeGreaterThan(0);
    for (const id of held) expect(known.has(id), `prekey ${id} held by Bob but never published`).toBe(true);
    expect(bobKeys.some((k) => k[0] === 'client' && k[1] === 'pending-upload')).toBe(false);

    // And the session still works after all that.
    const last = spawnBob([dbPath, relay.wsUrl, sentLog, 'report', String(sent + 1)]);
    await alice.client.send('bob', 'm-final');
    await last.exited;
    expect(JSON.parse(last.output().trim().split('\n').at(-1)!)).toContain('m-final');
  } finally {
    await alice.client.close();
    await relay.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, 900_000);
