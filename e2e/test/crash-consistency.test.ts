/**
 * SECURITY.md D24 (issue 6): Bob's client on SQLite storage is killed with SIGKILL at
 * random moments, 200 times, while Alice streams an interleaved mix of 1:1 messages and
 * messages in a group she made with him (once he first started) over the real relay; he
 * replies to every 5th of each, 1:1 or in the group. Each time he starts again on the same
 * database. At the end every 1:1 and every group message is in his histories exactly once
 * and reached the application exactly once (the client announces each committed message
 * at least once and flags every repeat, docs/protocol.md §11.4; the app checks the ids of
 * flagged ones); every reply he recorded as
 * accepted by the relay reached Alice (a reused sending or sender key would make her drop
 * one as a duplicate or fail to decrypt it), and the session and the group still work.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { expect, test } from 'vitest';
import { decodeKey } from '../../packages/storage-sqlite/src/key-encoding.js';
import { prng } from './fault-proxy.js';
import type { Client, StoredGroupMessage } from '@deadbolt/core';
import { conformanceDevice } from '@deadbolt/relay/testing';
import { makeTransport, startClient, startRelay, text } from './stack.js';

const KILLS = Number(process.env.DEADBOLT_CRASH_KILLS ?? 200);
const PER_ROUND = 3;
const CHILD_SOURCE = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
/**
 * The child, bundled once per run: starting it 200 times through the TypeScript loader
 * costs most of a second each on a busy machine, the bundle a fraction of that. It sits
 * under e2e/node_modules so that its externals (native SQLite, ws) resolve as they would
 * for the source (one file per run, removed at the end).
 */
const CHILD = fileURLToPath(new URL(`../node_modules/.cache/deadbolt-e2e/crash-child-${process.pid}.mjs`, import.meta.url));

async function bundleChild(): Promise<void> {
  const esbuild = await import('esbuild');
  await esbuild.build({
    entryPoints: [CHILD_SOURCE],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['@deadbolt/source'],
    external: ['better-sqlite3', 'ws'],
    outfile: CHILD,
    logLevel: 'warning',
  });
}

/** Resolves once `check()` holds, re-checked on each of `client`'s `events`; rejects at the deadline. */
function until(client: Client, events: readonly ('message-received' | 'group-message-received')[], check: () => boolean, what: string, deadlineMs = 60_000): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const offs: (() => void)[] = [];
    const stop = (): void => {
      clearTimeout(timer);
      for (const off of offs) off();
    };
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`timed out waiting for ${what}`));
    }, deadlineMs);
    for (const e of events) {
      const listener = (): void => {
        if (!check()) return;
        stop();
        resolve();
      };
      offs.push(client.on(e, listener));
    }
  });
}

function spawnBob(args: string[]): { child: ChildProcess; started: Promise<void>; exited: Promise<void>; output: () => string } {
  const child = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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

test(`SIGKILL at random points, ${KILLS} times: every 1:1 and group message exactly once, no sending key reused`, async () => {
  await bundleChild();
  const dir = mkdtempSync(join(tmpdir(), 'deadbolt-crash-'));
  const dbPath = join(dir, 'bob.db');
  const sentLog = join(dir, 'sent.log');
  const deliveryLog = join(dir, 'delivered.log');
  writeFileSync(sentLog, '');
  writeFileSync(deliveryLog, '');
  const relay = await startRelay({ dbPath: join(dir, 'relay.db') });
  const bobArgs = (mode: string, ...rest: string[]): string[] => [dbPath, relay.wsUrl, sentLog, deliveryLog, mode, ...rest];
  const rand = prng(424242);
  const alice = await startClient('websocket', relay, 'alice', 'phone');
  // Someone who keeps taking Bob's bundles (as new contacts would): each take spends one of
  // his few one-time prekeys and makes the relay tell him PREKEYS_LOW, so he generates and
  // uploads new keys in most of his runs, and kills land in the middle of those uploads.
  const taker = await conformanceDevice('taker', 'x');
  const takerTransport = makeTransport('websocket', relay);
  await takerTransport.connect(taker.auth);
  let takes = 0;
  const rejected: string[] = [];
  alice.client.on('message-rejected', (r) => rejected.push(r.code));
  const groupRejected: string[] = [];
  alice.client.on('group-rejected', (r) => groupRejected.push(r.code));
  const deliveryFailed: string[] = [];
  alice.client.on('group-delivery-failed', (f) => deliveryFailed.push(f.code));
  const groupReceived: StoredGroupMessage[] = [];
  alice.client.on('group-message-received', (m) => groupReceived.push(m));
  const started = Date.now();
  try {
    // Bob's first run registers him and publishes his prekeys.
    let bob = spawnBob(bobArgs('run'));
    await bob.started;
    const group = await alice.client.createGroup({ name: 'crash', members: ['bob'] });
    let sent = 0;
    let sentGroup = 0;
    let killsDuringWork = 0;
    let killedWhileStarting = 0;
    for (let k = 0; k < KILLS; k++) {
      // Most rounds: Bob is up, Alice's messages arrive, and the kill lands while he
      // receives, decrypts, persists and replies. Some rounds: the kill lands while he starts.
      const waitForStart = rand() < 0.8;
      if (waitForStart) await bob.started;
      if (rand() < 0.7) {
        await takerTransport.fetchBundles('bob');
        takes++;
      }
      for (let i = 0; i < PER_ROUND; i++) {
        if (rand() < 0.5) await alice.client.send('bob', `m-${sent++}`);
        else await group.send(`g-${sentGroup++}`);
      }
      const delay = Math.floor(rand() * (waitForStart ? 60 : 200));
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
      bob = spawnBob(bobArgs('run'));
    }
    bob.child.kill('SIGKILL');
    await bob.exited;
    const loopSeconds = (Date.now() - started) / 1000;

    // A final, uninterrupted run reports Bob's history once everything has arrived.
    const report = spawnBob(bobArgs('report', String(sent), String(sentGroup)));
    await report.exited;
    const history = JSON.parse(report.output().trim().split('\n').at(-1)!) as { direct: string[]; group: string[] };
    const tally = (xs: readonly string[]): Map<string, number> => {
      const counts = new Map<string, number>();
      for (const t of xs) counts.set(t, (counts.get(t) ?? 0) + 1);
      return counts;
    };
    const counts = tally(history.direct);
    for (let i = 0; i < sent; i++) expect(counts.get(`m-${i}`), `m-${i}`).toBe(1);
    expect(history.direct).toHaveLength(sent);
    const groupCounts = tally(history.group);
    for (let i = 0; i < sentGroup; i++) expect(groupCounts.get(`g-${i}`), `g-${i}`).toBe(1);
    expect(history.group).toHaveLength(sentGroup);

    // Application-level deliveries (§11.4): a committed message is announced at least once
    // (its marker is in the commit's batch), and a repeat only ever comes flagged
    // `redelivered` (the process died after the event, before recording it as handled).
    // Bob's app checks the ids of flagged events against its own log, so every message
    // reached it exactly once: none missing, none twice, no unflagged repeat.
    const delivered = readFileSync(deliveryLog, 'utf8').split('\n').filter(Boolean).map((line) => line.slice(0, line.lastIndexOf(':')));
    const deliveredCounts = tally(delivered);
    const dupes = [...deliveredCounts].filter(([, c]) => c > 1).map(([t]) => t);
    expect(dupes, 'delivered to the application more than once').toEqual([]);
    const expectedEvents = [...Array.from({ length: sent }, (_, i) => `1:m-${i}`), ...Array.from({ length: sentGroup }, (_, i) => `g:g-${i}`)];
    const missing = expectedEvents.filter((t) => !deliveredCounts.has(t));
    expect(missing, 'committed but never announced').toEqual([]);
    expect(delivered).toHaveLength(expectedEvents.length);
    const repeats = existsSync(`${deliveryLog}.repeats`) ? readFileSync(`${deliveryLog}.repeats`, 'utf8').split('\n').filter(Boolean) : [];
    expect(repeats.filter((r) => !r.startsWith('flagged:')), 'a repeat not flagged as redelivered').toEqual([]);

    // Every reply Bob recorded as accepted reached Alice: no sending key (1:1) or sender
    // key (group) was reused.
    const replies = readFileSync(sentLog, 'utf8').split('\n').filter(Boolean);
    const directReplies = replies.filter((r) => r.startsWith('re-'));
    const groupReplies = replies.filter((r) => r.startsWith('gre-'));
    const gotGroup = (): Set<string> => new Set(groupReceived.map((m) => new TextDecoder().decode(m.body)));
    await alice.waitForMessages(directReplies.length, 60_000);
    await until(alice.client, ['group-message-received'], () => groupReplies.every((r) => gotGroup().has(r)), `${groupReplies.length} group replies`);
    const got = new Set(alice.received.map(text));
    for (const r of directReplies) expect(got.has(r), r).toBe(true);
    for (const r of groupReplies) expect(gotGroup().has(r), r).toBe(true);
    expect(tally(groupReceived.map((m) => m.id)).size).toBe(groupReceived.length);
    expect(rejected).toEqual([]);
    expect(groupRejected).toEqual([]);
    if (KILLS >= 50) expect(groupReplies.length).toBeGreaterThan(0);
    expect(deliveryFailed).toEqual([]);
    console.log(
      `crash consistency: ${KILLS} rounds, ${killsDuringWork} SIGKILLs (${killedWhileStarting} while starting), ` +
        `${sent} 1:1 + ${sentGroup} group messages each in history and delivered to the application exactly once (${repeats.length} redelivered after a kill, recognised by localId), ` +
        `${directReplies.length} 1:1 + ${groupReplies.length} group replies all received, ${loopSeconds.toFixed(1)}s of kills, ${((Date.now() - started) / 1000).toFixed(1)}s in all`,
    );

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
    // The uploads really were exercised: many batches (of 3 one-time keys) reached the relay.
    console.log(`prekeys: ${takes} bundle takes, ${known.size} one-time key ids published over the kills, ${held.length} held by Bob, none orphaned`);
    if (KILLS >= 100) expect(known.size).toBeGreaterThan(KILLS / 4);
    for (const id of held) expect(known.has(id), `prekey ${id} held by Bob but never published`).toBe(true);
    expect(bobKeys.some((k) => k[0] === 'client' && k[1] === 'pending-upload')).toBe(false);

    // And the session and the group still work after all that, both ways.
    const last = spawnBob(bobArgs('final', String(sent + 1), String(sentGroup + 1)));
    await alice.client.send('bob', 'm-final');
    await group.send('g-final');
    await last.exited;
    const final = JSON.parse(last.output().trim().split('\n').at(-1)!) as { direct: string[]; group: string[] };
    expect(final.direct).toContain('m-final');
    expect(final.group).toContain('g-final');
    await until(alice.client, ['message-received'], () => alice.received.some((m) => text(m) === 'bye-direct'), 'bye-direct');
    await until(alice.client, ['group-message-received'], () => gotGroup().has('bye-group'), 'bye-group');
    // Not killed, the final run announced both messages to the application, once each.
    const finalEvents = readFileSync(deliveryLog, 'utf8').split('\n').map((line) => line.slice(0, line.lastIndexOf(':'))).filter((t) => t === '1:m-final' || t === 'g:g-final');
    expect(finalEvents.sort()).toEqual(['1:m-final', 'g:g-final']);
  } finally {
    await takerTransport.close();
    await alice.client.close();
    await relay.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(CHILD, { force: true });
  }
}, 900_000);
