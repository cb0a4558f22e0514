/**
 * SECURITY.md D26 in real Chromium: two tabs sharing one IndexedDB database never fork a
 * session.
 *
 * The reference relay (memory store) runs in Node on loopback, with bob (memory storage,
 * WebSocket transport over `ws`) beside it. Two pages of one origin (one browser context,
 * so one IndexedDB and one Web Locks namespace) each run a whole client for the SAME
 * device, alice/laptop, over the SAME IndexedDB database (`createIndexedDbStorage`) and the
 * browser's own WebSocket.
 *
 * Both tabs are started and connected, and both call `client.send`. That is what a user
 * gets by opening the app twice, and the relay is built for it: it keeps up to
 * `connectionsPerDevice` (4) connections per device, displacing only the oldest beyond
 * that, and a frame for the device may be pushed on every one of them (each tab then
 * handles it; the ratchet recognises the copy as a duplicate). The alternative, one
 * connected tab and a second that only encrypts, would need core's content encoding,
 * which is not public, and would test less: `client.send` is what a second tab really calls.
 *
 * The workload, identical in both runs:
 * 1. tab A starts (creates the identity), sends `A-hello`; bob answers `bob-hi` (a
 *    confirmed session); tab B starts over the same database.
 * 2. 30 rounds: in each, both tabs wait at a barrier, then both call `client.send` to bob
 *    at once (2 x 30 messages, interleaved).
 * 3. bob sends `bob-reply`, which one or both connected tabs handle (a DH ratchet step),
 *    then 15 more rounds of both tabs sending.
 *
 * Left to chance, the two tabs of a round overlap at the dangerous point (between reading
 * the ratchet state and committing its successor) only now and then: in 8 control runs
 * without the lock (measured on this 2-core machine), bob lost 0 to 20 of 90 messages, and
 * 2 of the runs lost none. So
 * the adapter the clients see (page: `instrumented`) holds every session read until the
 * other tab is *parked*: idle, waiting for the lock, or holding a session read of its own
 * (`createRendezvous` below). That opens the widest window in every round, the same way in
 * both runs; only the lock decides what happens in it. The adapter also reports every
 * committed session write with the state it grew from, so a fork (two successors of one
 * state) is seen directly, besides its effect on bob.
 *
 * With the adapter as shipped (Web Locks `exclusive`, taken by the session manager around
 * every ratchet step) the other tab waits for the lock in every round, no state forks, bob
 * decrypts each of the 91 messages exactly once, and alice's tabs together surface each of
 * bob's messages once. The control runs the same workload with the adapter minus its
 * `exclusive`: in every round both tabs read one state and both commit a successor, both
 * encrypting under one message key; bob (correctly) drops the second message of each such
 * pair as a duplicate, so messages are lost. So the first test can fail, and does when the
 * lock is a no-op (checked by hand: replacing `exclusive` with a pass-through in the page
 * gives 36 forks and a failing first test).
 *
 * Every wait is on an event (a barrier, a `message-received`, a frame handled), never a sleep.
 */
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, newPage, serveBundle, type BundleServer } from '@deadbolt/browser-harness';
import { createClient, type Client } from '@deadbolt/core';
import { createMemoryRelayStore, createRelay, silentRelayLogger, type Relay } from '@deadbolt/relay';
import { LOOSE_TEST_LIMITS } from '@deadbolt/relay/testing';
import type { FrameHandler, TransportAdapter } from '@deadbolt/spec';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import { createWebSocketTransport, type WebSocketConstructor } from '@deadbolt/transport-websocket';
import type { OpenOptions, SendReport, TabApi } from './browser/two-tabs-page.js';

const ROUNDS = 30;
const ROUNDS_AFTER_REPLY = 15;
/** A deadline for event waits, so a stuck run names what it waited for (not a sleep). */
const DEADLINE_MS = 90_000;

let browser: Browser;
let server: BundleServer;
let runs = 0;

beforeAll(async () => {
  [browser, server] = await Promise.all([
    launchChromium(),
    serveBundle({ entries: { tab: fileURLToPath(new URL('./browser/two-tabs-page.ts', import.meta.url)) } }),
  ]);
});

afterAll(async () => {
  await server?.close();
  await browser?.close();
});

/** Calls `deadboltTab[method](...args)` in a page. */
function tab<K extends keyof TabApi>(page: Page, method: K, ...args: Parameters<TabApi[K]>): Promise<Awaited<ReturnType<TabApi[K]>>> {
  return page.evaluate(
    ([m, a]) => {
      const api = (globalThis as unknown as { deadboltTab: Record<string, (...x: unknown[]) => unknown> }).deadboltTab;
      return api[m]!(...a);
    },
    [method as string, args as unknown[]] as const,
  ) as Promise<Awaited<ReturnType<TabApi[K]>>>;
}

async function loadTab(context: BrowserContext, page?: Page): Promise<Page> {
  const p = page ?? (await context.newPage());
  await p.goto(server.url);
  await p.waitForFunction(() => (globalThis as { deadboltTab?: unknown }).deadboltTab !== undefined);
  return p;
}

/** Resolves when `ready()` holds, re-checked on every `notify()`; rejects at the deadline naming `what`. */
function condition(what: () => string) {
  const waiters = new Set<{ ready: () => boolean; resolve: () => void }>();
  return {
    notify() {
      for (const w of [...waiters]) {
        if (w.ready()) {
          waiters.delete(w);
          w.resolve();
        }
      }
    },
    until(ready: () => boolean): Promise<void> {
      if (ready()) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`timed out waiting: ${what()}`));
        }, DEADLINE_MS);
        const waiter = {
          ready,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        };
        waiters.add(waiter);
      });
    },
  };
}

/** Bob in Node, with every frame his client's handler finished counted (processed, refused or a duplicate). */
async function startBob(relay: Relay) {
  const received: string[] = [];
  const rejected: string[] = [];
  let handled = 0;
  const changed = condition(() => `bob: ${handled} frames handled, ${received.length} messages received`);
  const inner = createWebSocketTransport({ url: relay.wsUrl, WebSocket: WebSocket as unknown as WebSocketConstructor });
  const transport = new Proxy(inner, {
    get(target, property) {
      if (property === 'onFrame') {
        return (handler: FrameHandler) =>
          target.onFrame(async (frame) => {
            try {
              await handler(frame);
            } finally {
              handled++;
              changed.notify();
            }
          });
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  }) as TransportAdapter;
  const client: Client = await createClient({ userId: 'bob', deviceId: 'phone', storage: createMemoryStorage(), transport, prekeyBatch: { oneTime: 5, pqOneTime: 2 } });
  client.on('message-received', (m) => {
    received.push(new TextDecoder().decode(m.body));
    changed.notify();
  });
  client.on('message-rejected', (r) => rejected.push(r.code));
  await client.start();
  return {
    client,
    received,
    rejected,
    handled: () => handled,
    /** Once bob's handler has finished `count` frames (every one alice's tabs sent so far). */
    framesHandled: (count: number) => changed.until(() => handled >= count),
    messages: (count: number) => changed.until(() => received.length >= count),
  };
}

interface SessionWrite {
  readonly tab: string;
  readonly key: string;
  /** Fingerprint of the state the writing tab had read (its predecessor); `none` if absent. */
  readonly from: string;
  readonly to: string;
}

interface Outcome {
  readonly sent: number;
  readonly sendErrors: readonly string[];
  /** Every body bob's client emitted `message-received` for, in order. */
  readonly bobReceived: readonly string[];
  readonly bobRejected: readonly string[];
  readonly bobHandled: number;
  /** Every `message-received` of alice's two tabs: `<tab>:<body>`. */
  readonly aliceReceived: readonly string[];
  /** Inbound frames each tab's handler finished (bob's messages, pushed to one or both tabs). */
  readonly tabHandled: readonly number[];
  /** The shared history with bob, read back by tab B. */
  readonly history: ReadonlyArray<{ body: string; direction: string; status: string }>;
  /** Every committed write of a session record, in commit order. */
  readonly writes: readonly SessionWrite[];
  /** Session writes that share their predecessor with an earlier write: the forks. */
  readonly forks: readonly SessionWrite[];
  /** How each paused session read ended: the other tab idle, waiting for the lock, or holding a read of its own. */
  readonly rendezvous: { otherIdle: number; otherWaitingForLock: number; otherReading: number };
  /** The bodies both tabs meant to send, in no particular order. */
  readonly expected: readonly string[];
}

/**
 * What the test knows of each tab, to park session reads (see `instrumented` in the
 * page): a tab is *parked* when it has no send of a round in progress, or one of its
 * operations waits for the lock or sits on a session read of its own. Its operations
 * on sessions are serialised by its own queue, so a parked operation blocks the rest.
 */
function createRendezvous() {
  const tabs = new Map<string, { activeSend: boolean; lockWaits: number; pausedReads: number }>();
  const state = (name: string) => {
    let t = tabs.get(name);
    if (t === undefined) tabs.set(name, (t = { activeSend: false, lockWaits: 0, pausedReads: 0 }));
    return t;
  };
  const otherOf = (name: string) => (name === 'A' ? 'B' : 'A');
  const parked = (name: string) => {
    const t = tabs.get(name);
    return t === undefined || !t.activeSend || t.lockWaits > 0 || t.pausedReads > 0;
  };
  const paused: Array<{ tab: string; release: () => void }> = [];
  const counts = { otherIdle: 0, otherWaitingForLock: 0, otherReading: 0 };
  /** Releases every paused read whose other tab is parked, all judged on one snapshot. */
  const settle = () => {
    const ready = paused
      .filter((p) => parked(otherOf(p.tab)))
      .map((p) => {
        const o = tabs.get(otherOf(p.tab));
        return { p, why: o !== undefined && o.pausedReads > 0 ? 'otherReading' : o !== undefined && o.lockWaits > 0 ? 'otherWaitingForLock' : 'otherIdle' } as const;
      });
    for (const { p, why } of ready) {
      paused.splice(paused.indexOf(p), 1);
      state(p.tab).pausedReads--;
      counts[why]++;
      p.release();
    }
  };
  return {
    counts,
    roundStarted() {
      state('A').activeSend = true;
      state('B').activeSend = true;
    },
    sendDone(tab: string) {
      state(tab).activeSend = false;
      settle();
    },
    lock(tab: string, step: 'wait' | 'held') {
      state(tab).lockWaits += step === 'wait' ? 1 : -1;
      settle();
    },
    sessionRead(tab: string): Promise<void> {
      state(tab).pausedReads++;
      const released = new Promise<void>((release) => paused.push({ tab, release }));
      settle();
      return released;
    },
  };
}

/** The workload of the module documentation, with the lock (`locked`) or without (the control). */
async function runWorkload(locked: boolean): Promise<Outcome> {
  const origin = new URL(server.url).origin;
  const relay = await createRelay({
    host: '127.0.0.1',
    port: 0,
    store: createMemoryRelayStore(),
    logger: silentRelayLogger,
    limits: LOOSE_TEST_LIMITS,
    allowedOrigins: [origin],
  });
  const bob = await startBob(relay);
  const first = await newPage(browser);
  const context = first.context();
  try {
    // Both tabs' message-received events, counted together.
    const aliceReceived: string[] = [];
    const aliceChanged = condition(() => `alice's tabs received ${JSON.stringify(aliceReceived)}`);
    await context.exposeFunction('deadboltReceived', (tabName: string, body: string) => {
      aliceReceived.push(`${tabName}:${body}`);
      aliceChanged.notify();
    });
    const rendezvous = createRendezvous();
    // A barrier per round: it resolves when both tabs arrived, and both are then sending.
    const rounds = new Map<string, { arrived: number; release: Promise<void>; go: () => void }>();
    await context.exposeFunction('deadboltRound', (stage: string, round: number) => {
      const key = `${stage}:${round}`;
      let r = rounds.get(key);
      if (r === undefined) {
        let go!: () => void;
        const release = new Promise<void>((resolve) => (go = resolve));
        rounds.set(key, (r = { arrived: 0, release, go }));
      }
      if (++r.arrived === 2) {
        rendezvous.roundStarted();
        r.go();
      }
      return r.release;
    });
    await context.exposeFunction('deadboltSendDone', (tabName: string) => rendezvous.sendDone(tabName));
    await context.exposeFunction('deadboltLock', (tabName: string, step: 'wait' | 'held') => rendezvous.lock(tabName, step));
    await context.exposeFunction('deadboltSessionRead', (tabName: string) => rendezvous.sessionRead(tabName));
    const writes: SessionWrite[] = [];
    await context.exposeFunction('deadboltSessionWrite', (tabName: string, key: string, from: string, to: string) => {
      writes.push({ tab: tabName, key, from, to });
    });

    const options = (tabName: string): OpenOptions => ({ tab: tabName, wsUrl: relay.wsUrl, dbName: `two-tabs-${runs}`, locked });
    runs++;

    // 1. Tab A creates the identity and a confirmed session with bob; then tab B joins.
    const a = await loadTab(context, first);
    await tab(a, 'open', options('A'));
    await tab(a, 'start');
    await tab(a, 'send', 'bob', 'A-hello');
    await bob.messages(1);
    await bob.client.send('alice', 'bob-hi');
    await aliceChanged.until(() => aliceReceived.length >= 1);
    const b = await loadTab(context);
    await tab(b, 'open', options('B'));
    await tab(b, 'start');

    // 2. Both tabs send at once, round after round.
    const reports: SendReport[] = await Promise.all([tab(a, 'sendRounds', 'bob', '1', ROUNDS), tab(b, 'sendRounds', 'bob', '1', ROUNDS)]);
    let sent = 1 + reports[0]!.sent + reports[1]!.sent;
    await bob.framesHandled(sent);

    // 3. A reply from bob (a DH ratchet step on alice's side, in whichever tab handles it
    // first), then both tabs again.
    await bob.client.send('alice', 'bob-reply');
    await aliceChanged.until(() => aliceReceived.some((r) => r.endsWith(':bob-reply')));
    const more: SendReport[] = await Promise.all([tab(a, 'sendRounds', 'bob', '2', ROUNDS_AFTER_REPLY), tab(b, 'sendRounds', 'bob', '2', ROUNDS_AFTER_REPLY)]);
    sent += more[0]!.sent + more[1]!.sent;
    await bob.framesHandled(sent);

    const expected = ['A-hello'];
    for (const [name, stage, count] of [['A', 1, ROUNDS], ['B', 1, ROUNDS], ['A', 2, ROUNDS_AFTER_REPLY], ['B', 2, ROUNDS_AFTER_REPLY]] as const) {
      for (let i = 0; i < count; i++) expected.push(`${name}-${stage}-${String(i).padStart(2, '0')}`);
    }
    const seen = new Set<string>();
    const forks: SessionWrite[] = [];
    for (const w of writes) {
      const id = `${w.key} ${w.from}`;
      if (seen.has(id)) forks.push(w);
      seen.add(id);
    }
    const outcome: Outcome = {
      sent,
      sendErrors: [...reports, ...more].flatMap((r) => r.errors),
      bobReceived: [...bob.received],
      bobRejected: [...bob.rejected],
      bobHandled: bob.handled(),
      aliceReceived: [...aliceReceived],
      tabHandled: [await tab(a, 'handled'), await tab(b, 'handled')],
      history: await tab(b, 'history', 'bob'),
      writes,
      forks,
      rendezvous: { ...rendezvous.counts },
      expected,
    };
    await tab(b, 'close');
    await tab(a, 'close');
    return outcome;
  } finally {
    await first.close(); // closes the context and tab B with it
    await bob.client.close();
    await relay.close();
  }
}

const sorted = (xs: readonly string[]): string[] => [...xs].sort();

describe('two tabs, one IndexedDB database, one device (SECURITY.md D26)', () => {
  const total = 1 + 2 * ROUNDS + 2 * ROUNDS_AFTER_REPLY;

  it('with the Web Locks exclusive lock: the session never forks, and bob decrypts every message of both tabs exactly once', { timeout: 150_000 }, async () => {
    const o = await runWorkload(true);
    const context = JSON.stringify({ rejected: o.bobRejected, handled: o.bobHandled, alice: o.aliceReceived, tabHandled: o.tabHandled, rendezvous: o.rendezvous, forks: o.forks });
    expect(o.sendErrors, 'sends that failed in a tab').toEqual([]);
    expect(o.sent).toBe(total);
    // The lock was really contended: in every round, one tab held it between reading the
    // ratchet state and writing its successor while the other tab waited for it.
    expect(o.rendezvous.otherWaitingForLock, context).toBeGreaterThanOrEqual(ROUNDS + ROUNDS_AFTER_REPLY);
    // No fork: no two committed session states grew from one predecessor.
    expect(o.forks, context).toEqual([]);
    // Exactly once: bob got each of the 91 bodies once, and refused nothing.
    expect(sorted(o.bobReceived), context).toEqual(sorted(o.expected));
    expect(o.bobRejected, context).toEqual([]);
    // Alice's side: each of bob's messages surfaced in exactly one tab, once, even when the
    // relay pushed it to both connections (the second tab finds it already processed).
    expect(sorted(o.aliceReceived.map((r) => r.slice(2))), context).toEqual(['bob-hi', 'bob-reply']);
    // One history in the shared store: both tabs' 91 messages, all marked sent, and bob's 2.
    const outgoing = o.history.filter((m) => m.direction === 'outgoing');
    expect(sorted(outgoing.map((m) => m.body))).toEqual(sorted(o.expected));
    expect(new Set(outgoing.map((m) => m.status))).toEqual(new Set(['sent']));
    expect(sorted(o.history.filter((m) => m.direction === 'incoming').map((m) => m.body))).toEqual(['bob-hi', 'bob-reply']);
  });

  it('control: the same workload over the adapter without exclusive forks the ratchet, and bob cannot decrypt some messages (so the test above can fail)', { timeout: 150_000 }, async () => {
    const o = await runWorkload(false);
    const lost = o.expected.filter((body) => !o.bobReceived.includes(body));
    const context = JSON.stringify({ received: o.bobReceived.length, lost: lost.length, rejected: o.bobRejected, handled: o.bobHandled, alice: o.aliceReceived, rendezvous: o.rendezvous, forks: o.forks.length });
    // The tabs did send everything, and bob's handler finished every frame...
    expect(o.sendErrors).toEqual([]);
    expect(o.sent).toBe(total);
    expect(o.bobHandled, context).toBeGreaterThanOrEqual(total);
    // ...but in every round both tabs read one ratchet state and each committed a successor
    // (a fork: both encrypted under the same message key)...
    expect(o.rendezvous.otherReading, context).toBeGreaterThan(0);
    expect(o.forks.length, context).toBeGreaterThanOrEqual(ROUNDS + ROUNDS_AFTER_REPLY);
    // ...and bob, who keeps only the first message under a key (the second is a duplicate
    // to his ratchet), lost at least one message per round of the first stage.
    expect(lost.length, context).toBeGreaterThanOrEqual(ROUNDS);
    // Nothing bob did get was made up or doubled.
    expect(new Set(o.bobReceived).size).toBe(o.bobReceived.length);
    for (const body of o.bobReceived) expect(o.expected).toContain(body);
  });
});
