/**
 * The page side of `chromium-two-tabs.test.ts`: one browser tab running a whole Deadbolt
 * client (core, the IndexedDB adapter, the WebSocket transport over the browser's own
 * `WebSocket`). Bundled by esbuild and served on 127.0.0.1 by `@deadbolt/browser-harness`;
 * the test in Node drives it through `globalThis.deadboltTab` with `page.evaluate`, and the
 * page reports to the test through functions the test exposes on the browser context.
 *
 * Two such tabs of one origin open the **same** IndexedDB database as the same device
 * (alice/laptop), so they share one identity and one session with bob: what a user gets
 * by opening the app twice.
 */
import { createClient, type Client } from '@deadbolt/core';
import type { FrameHandler, StorageAdapter, StorageKey, StorageOp, TransportAdapter } from '@deadbolt/spec';
import { createIndexedDbStorage } from '@deadbolt/storage-indexeddb';
import { createWebSocketTransport } from '@deadbolt/transport-websocket';

// Exposed by the test (Node) on the browser context; each returns a promise.
/** Resolves once both tabs reached `round` of `stage`. */
declare function deadboltRound(stage: string, round: number): Promise<void>;
/** This tab's `client.send` of the round has settled. */
declare function deadboltSendDone(tab: string): Promise<void>;
/** A `message-received` event in this tab. */
declare function deadboltReceived(tab: string, body: string): Promise<void>;
/** This tab called `exclusive` (`wait`) / got the lock (`held`). */
declare function deadboltLock(tab: string, step: 'wait' | 'held'): Promise<void>;
/** This tab read a session record; resolves once the other tab is parked (see the test). */
declare function deadboltSessionRead(tab: string): Promise<void>;
/** This tab committed a session record: the fingerprint of what it last read there, and of what it wrote. */
declare function deadboltSessionWrite(tab: string, key: string, from: string, to: string): Promise<void>;

export interface OpenOptions {
  /** This tab's name in reports (`A`, `B`). */
  readonly tab: string;
  readonly wsUrl: string;
  /** The IndexedDB database both tabs share. */
  readonly dbName: string;
  /**
   * `true`: the adapter as shipped, with its Web Locks `exclusive`. `false` (the control):
   * the same adapter with no `exclusive`, so the session manager only serialises the
   * calls of its own tab.
   */
  readonly locked: boolean;
}

export interface SendReport {
  readonly sent: number;
  readonly errors: readonly string[];
}

/** A 53-bit fingerprint of a record (cyrb53): enough to tell a few hundred states apart. */
function fingerprint(bytes: Uint8Array | undefined): string {
  if (bytes === undefined) return 'none';
  let h1 = 0xdeadbeef ^ bytes.length;
  let h2 = 0x41c6ce57 ^ bytes.length;
  for (const b of bytes) {
    h1 = Math.imul(h1 ^ b, 2654435761);
    h2 = Math.imul(h2 ^ b, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}

const isSession = (key: StorageKey): boolean => key[0] === 'session';

/**
 * The IndexedDB adapter as the client sees it in this test, identical in both runs except
 * for `exclusive`:
 *
 * - after every read of a session record the tab reports to the test and waits until the
 *   other tab is parked (idle, waiting for the lock, or holding a session read of its
 *   own): the widest window there is between reading a ratchet state and writing its
 *   successor, opened on purpose in every round;
 * - every committed session write is reported with the fingerprint of the state this tab
 *   last read there (its predecessor), so the test sees a fork directly: two writes with
 *   one predecessor;
 * - with `locked`, `exclusive` is the adapter's own (Web Locks), reporting when it waits
 *   and when it holds the lock; without, there is none.
 */
function instrumented(inner: StorageAdapter, tab: string, locked: boolean): StorageAdapter {
  const lastRead = new Map<string, string>();
  const adapter: StorageAdapter = {
    specificationVersion: inner.specificationVersion,
    async get(key) {
      const value = await inner.get(key);
      if (isSession(key)) {
        lastRead.set(key.join('/'), fingerprint(value));
        await deadboltSessionRead(tab);
      }
      return value;
    },
    range: (prefix, options) => inner.range(prefix, options),
    async batch(ops: readonly StorageOp[]) {
      await inner.batch(ops);
      for (const op of ops) {
        if (op.type !== 'put' || !isSession(op.key)) continue;
        const id = op.key.join('/');
        const written = fingerprint(op.value);
        await deadboltSessionWrite(tab, id, lastRead.get(id) ?? 'none', written);
        lastRead.set(id, written); // a tab's next write (if it reads nothing new) follows its own
      }
    },
    close: () => inner.close(),
  };
  if (!locked) return adapter;
  if (inner.exclusive === undefined) throw new Error('the IndexedDB adapter has no exclusive');
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => inner.exclusive!(fn);
  return {
    ...adapter,
    async exclusive<T>(fn: () => Promise<T>): Promise<T> {
      await deadboltLock(tab, 'wait');
      let entered = false;
      try {
        return await exclusive(async () => {
          entered = true;
          await deadboltLock(tab, 'held');
          return fn();
        });
      } finally {
        if (!entered) await deadboltLock(tab, 'held'); // refused (closed): not waiting any more
      }
    },
  };
}

/**
 * The transport, counting the inbound frames the client's handler has finished with
 * (processed, refused or a duplicate). A Proxy, so it follows the transport interface.
 */
function countingTransport(inner: TransportAdapter, onHandled: () => void): TransportAdapter {
  return new Proxy(inner, {
    get(target, property) {
      if (property === 'onFrame') {
        return (handler: FrameHandler) =>
          target.onFrame(async (frame) => {
            try {
              await handler(frame);
            } finally {
              onHandled();
            }
          });
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

let client: Client | undefined;
let tabName = '?';
let handled = 0;

function need(): Client {
  if (client === undefined) throw new Error('call open() first');
  return client;
}

const api = {
  /** Creates this tab's client over the shared database (does not connect). */
  async open(options: OpenOptions): Promise<void> {
    tabName = options.tab;
    const storage = instrumented(createIndexedDbStorage({ name: options.dbName }), options.tab, options.locked);
    const transport = countingTransport(createWebSocketTransport({ url: options.wsUrl }), () => {
      handled++;
    });
    client = await createClient({
      userId: 'alice',
      deviceId: 'laptop',
      storage,
      transport,
      // Few prekeys: generating 100 + 20 only slows the set-up.
      prekeyBatch: { oneTime: 5, pqOneTime: 2 },
    });
    // Reported as it happens: the test counts both tabs' events together.
    client.on('message-received', (m) => void deadboltReceived(tabName, new TextDecoder().decode(m.body)));
    client.on('error', (e) => console.error(`tab ${tabName}: client error`, e));
  },

  /** `client.start()`: identity (first tab only), connect, prekeys, device list. */
  async start(): Promise<void> {
    await need().start();
  },

  /** One message, on its own. */
  async send(to: string, body: string): Promise<void> {
    await need().send(to, body);
  },

  /**
   * `count` messages `<tab>-<stage>-<i>` to `to`. Before each one the tab waits at the
   * test's barrier for the other tab, so every round both tabs call `client.send` at once.
   */
  async sendRounds(to: string, stage: string, count: number): Promise<SendReport> {
    const c = need();
    let sent = 0;
    const errors: string[] = [];
    for (let i = 0; i < count; i++) {
      await deadboltRound(stage, i);
      try {
        await c.send(to, `${tabName}-${stage}-${String(i).padStart(2, '0')}`);
        sent++;
      } catch (e) {
        errors.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
      } finally {
        await deadboltSendDone(tabName);
      }
    }
    return { sent, errors };
  },

  /** The shared history with `userId` as this tab reads it from IndexedDB, oldest first. */
  async history(userId: string): Promise<Array<{ body: string; direction: string; status: string }>> {
    const messages = await need().history(userId, { limit: 1000 });
    return messages.map((m) => ({ body: new TextDecoder().decode(m.body), direction: m.direction, status: m.status }));
  },

  /** Inbound frames this tab's handler has finished with. */
  handled(): number {
    return handled;
  },

  async close(): Promise<void> {
    await client?.close();
  },
};

export type TabApi = typeof api;
(globalThis as unknown as { deadboltTab: TabApi }).deadboltTab = api;
