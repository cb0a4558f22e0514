/**
 * The page side of `pnpm bench:storage-browser` (storage-browser.ts): bundled by esbuild
 * and served on 127.0.0.1 by `@deadbolt/browser-harness`, driven by the script in Node
 * through `globalThis.deadboltBench` with `page.evaluate`.
 *
 * Everything here runs in real Chromium: the clients (`createClient`, WebCrypto provider),
 * the IndexedDB adapter on the browser's IndexedDB, the memory adapter beside it, and the
 * WebSocket transport over the browser's own `WebSocket` to the relay in Node. The method
 * is storage-main.ts's: a pair of clients gets a confirmed session through the relay, then
 * the sender's frames are captured instead of sent and handed straight to the recipient's
 * frame handler, one at a time, as its transport would.
 *
 * Node-only modules (harness.ts) must not be imported here.
 */
import { createEncryptedStorage } from '@deadbolt/core';
import type { StorageAdapter, TransportAdapter } from '@deadbolt/spec';
import { createIndexedDbStorage } from '@deadbolt/storage-indexeddb';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import { createWebSocketTransport } from '@deadbolt/transport-websocket';
import { AT_REST_KEY, captureOverrides, frameCapture, logicalBytes, openPair, receiveRun, sendRun, take, type CapturedPair } from './storage-pair.js';
/** Unique per page load, so a run never meets an earlier run's databases. */
const RUN_ID = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
let databases = 0;

/** Storage calls the clients made, by kind (see {@link counted}). */
const calls = { get: 0, range: 0, batch: 0, exclusive: 0 };
type CallCounts = typeof calls;
const minus = (a: CallCounts, b: CallCounts, per: number): CallCounts => ({
  get: (a.get - b.get) / per,
  range: (a.range - b.range) / per,
  batch: (a.batch - b.batch) / per,
  exclusive: (a.exclusive - b.exclusive) / per,
});

/**
 * The store as the client sees it, counting its calls (one closure call each: nothing
 * next to a storage round trip). `exclusive` is passed on only if the store has one.
 */
function counted(inner: StorageAdapter): StorageAdapter {
  const adapter: StorageAdapter = {
    specificationVersion: inner.specificationVersion,
    get: (key) => (calls.get++, inner.get(key)),
    range: (prefix, options) => (calls.range++, inner.range(prefix, options)),
    batch: (ops) => (calls.batch++, inner.batch(ops)),
    close: () => inner.close(),
  };
  if (inner.exclusive === undefined) return adapter;
  return { ...adapter, exclusive: (fn) => (calls.exclusive++, inner.exclusive!(fn)) };
}

/** The adapters this page can measure, by the name the script and the table use. */
const ADAPTERS: Record<string, () => { storage: StorageAdapter; inner: StorageAdapter }> = {
  memory: () => {
    const storage = createMemoryStorage();
    return { storage, inner: storage };
  },
  indexeddb: () => {
    const storage = createIndexedDbStorage({ name: `deadbolt-bench-${RUN_ID}-${databases++}` });
    return { storage, inner: storage };
  },
  'memory + at rest': () => {
    const inner = createMemoryStorage();
    return { storage: createEncryptedStorage(inner, { key: AT_REST_KEY }), inner };
  },
  'indexeddb + at rest': () => {
    const inner = createIndexedDbStorage({ name: `deadbolt-bench-${RUN_ID}-${databases++}` });
    return { storage: createEncryptedStorage(inner, { key: AT_REST_KEY }), inner };
  },
};


/**
 * The WebSocket transport with two switches (storage-pair.ts `FrameCapture`): `capture`
 * keeps sent frames instead of sending them, and `handler` is the frame handler the client
 * registered. A Proxy over the real transport, so it follows the transport interface as it
 * grows.
 */
function benchTransport(wsUrl: string) {
  const inner = createWebSocketTransport({ url: wsUrl });
  const state = frameCapture();
  const overrides: Partial<TransportAdapter> = captureOverrides(inner, state);
  const transport = new Proxy(inner, {
    get(target, property) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof TransportAdapter];
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { transport, state };
}

const pairs = new Map<string, CapturedPair>();

function pairOf(adapter: string): CapturedPair {
  const pair = pairs.get(adapter);
  if (pair === undefined) throw new Error(`no pair for ${adapter}: call setUp first`);
  return pair;
}

const api = {
  /** The adapter names, in table order (memory first: the baseline). */
  adapters: (): string[] => Object.keys(ADAPTERS),

  /** Two clients over `adapter`, a confirmed session through the relay, then the network taken out. */
  async setUp(adapter: string, wsUrl: string, n: number): Promise<void> {
    const open = ADAPTERS[adapter];
    if (open === undefined) throw new Error(`unknown adapter ${adapter}`);
    const a = open();
    const b = open();
    const aliceT = benchTransport(wsUrl);
    const bobT = benchTransport(wsUrl);
    const { alice, bob } = await openPair(n, { storage: counted(a.storage), transport: aliceT.transport }, { storage: counted(b.storage), transport: bobT.transport });
    aliceT.state.capture = true;
    pairs.set(adapter, { alice, bob, aliceT, bobT, bobStored: b.inner, seq: 0 });
  },

  /**
   * One run: alice sends `count` messages (timed: send), then bob receives them (timed:
   * receive). Also the storage calls per message of each side (the client's, above any
   * encryption wrapper).
   */
  async run(adapter: string, count: number): Promise<{ sendMs: number; receiveMs: number; sendCalls: CallCounts; receiveCalls: CallCounts }> {
    const pair = pairOf(adapter);
    const c0 = { ...calls };
    const sendMs = await sendRun(pair, count);
    const c1 = { ...calls };
    const frames = take(pair);
    if (frames.length !== count) throw new Error(`captured ${frames.length} frames for ${count} messages`);
    const receiveMs = await receiveRun(pair, frames, 'bench:storage-browser');
    return { sendMs, receiveMs, sendCalls: minus(c1, c0, count), receiveCalls: minus(calls, c1, count) };
  },

  /**
   * A reference for the IndexedDB rows: `count` transactions of one 1.7 KiB put each (about
   * what a received message writes), `durability: 'strict'`, one after another, on a
   * database of its own; returns transactions per second.
   */
  async rawIndexedDb(count: number): Promise<number> {
    const name = `deadbolt-bench-${RUN_ID}-raw`;
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(name, 1);
      request.onupgradeneeded = () => request.result.createObjectStore('s');
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const value = new Uint8Array(1700).fill(0x61).buffer;
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      await new Promise<void>((resolve, reject) => {
        const tx = db.transaction('s', 'readwrite', { durability: 'strict' });
        tx.objectStore('s').put(value, ['raw', String(i)]);
        tx.oncomplete = () => resolve();
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      });
    }
    const perSecond = (count * 1000) / (performance.now() - t0);
    db.close();
    return perSecond;
  },

  /**
   * Bob's stored bytes: his session record with alice, and his history's growth over
   * `count` more messages (keys and values as the backend holds them: sealed under
   * encryption at rest).
   */
  async sizes(adapter: string, count: number): Promise<{ session: number; historyPer1000: number }> {
    const pair = pairOf(adapter);
    const session = await logicalBytes(pair.bobStored, ['session', pair.alice.address.userId]);
    const before = await logicalBytes(pair.bobStored, ['msg']);
    await sendRun(pair, count);
    await receiveRun(pair, take(pair), 'bench:storage-browser');
    const after = await logicalBytes(pair.bobStored, ['msg']);
    return { session, historyPer1000: ((after - before) * 1000) / count };
  },

  async close(): Promise<void> {
    for (const pair of pairs.values()) {
      await pair.alice.close();
      await pair.bob.close();
    }
    pairs.clear();
  },
};

export type BenchPage = typeof api;
(globalThis as unknown as { deadboltBench: BenchPage }).deadboltBench = api;
