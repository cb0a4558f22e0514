/**
 * The page side of the Chromium tests: bundled by esbuild (with `vitest` aliased to
 * `vitest-in-page.ts`) and served on 127.0.0.1 by `@deadbolt/browser-harness`. Everything
 * runs against the browser's real IndexedDB and real Web Locks; the vitest tests in Node
 * call the functions on `globalThis.deadboltPage` with `page.evaluate`.
 */
import { isDeadboltError, type StorageAdapter } from '@deadbolt/spec';
import { deleteDB } from 'idb';
// The conformance cases and their runner: the very code `describeStorageConformance`
// runs in Node, from test-kit's browser-safe entry point.
import { runStorageConformanceCase, storageConformanceCases, type StorageConformanceFactory } from '@deadbolt/test-kit/storage';
import { createIndexedDbStorage, INDEXEDDB_SCHEMA_VERSION, isQuotaExceeded } from '../../src/index.js';
import { openDatabase } from '../../src/open-database.js';
import { MIGRATIONS, type Migration } from '../../src/schema.js';
import { expectFixtureLoads, expectNewerSchemaRefused, type FixtureBackend, type SchemaFixture } from '../fixtures/schema-fixture.js';

/** An error as plain data, for `page.evaluate` to carry back to Node. */
export interface PageError {
  name: string;
  message: string;
  stack: string;
  code?: string;
  kind?: string;
  causeName?: string;
  quota?: boolean;
}

function describeError(e: unknown): PageError {
  const error = e instanceof Error ? e : new Error(String(e));
  const out: PageError = { name: error.name, message: error.message, stack: error.stack ?? '' };
  if (isDeadboltError(e)) {
    out.code = e.code;
    out.kind = e.kind;
    out.quota = isQuotaExceeded(e);
  }
  const cause = (error as { cause?: unknown }).cause;
  if (typeof cause === 'object' && cause !== null && typeof (cause as { name?: unknown }).name === 'string') {
    out.causeName = (cause as { name: string }).name;
  }
  return out;
}

async function outcome<T>(run: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: PageError }> {
  try {
    return { ok: true, value: await run() };
  } catch (e) {
    return { ok: false, error: describeError(e) };
  }
}

// ---- the conformance suite ------------------------------------------------------------

// Unique per page load, so cases never see another run's databases.
const run = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
const nameOf = new WeakMap<StorageAdapter, string>();
const created: string[] = [];
let next = 0;

function open(name: string): StorageAdapter {
  const storage = createIndexedDbStorage({ name });
  nameOf.set(storage, name);
  return storage;
}

function nameFor(storage: StorageAdapter): string {
  const name = nameOf.get(storage);
  if (name === undefined) throw new Error('not an adapter created by this factory');
  return name;
}

const factory: StorageConformanceFactory = {
  async create() {
    const name = `conformance-${run}-${next++}`;
    created.push(name);
    return open(name);
  },
  async reopen(previous) {
    await previous.close();
    return open(nameFor(previous));
  },
  async openShared(first) {
    return open(nameFor(first));
  },
  async teardown() {
    // The runner closed every adapter first, so nothing blocks the deletion.
    for (const name of created.splice(0)) await deleteDB(name);
  },
};

// ---- adapter-specific checks ------------------------------------------------------------

const adapters = new Map<string, StorageAdapter>();
const bytes = (...values: number[]) => Uint8Array.from(values);

/** The page's real IndexedDB, for the schema fixtures (`test/fixtures/schema-fixture.ts`). */
function fixtureBackend(name: string): FixtureBackend {
  return { factory: indexedDB, name, open: () => createIndexedDbStorage({ name }) };
}

/** The exposed bindings the two-page test installs (context.exposeFunction). */
interface Bindings {
  deadboltStart(pageId: string): Promise<void>;
  deadboltEnter(pageId: string): Promise<void>;
  deadboltLeave(pageId: string): Promise<void>;
  deadboltBetween(pageId: string): Promise<void>;
}
const bindings = globalThis as unknown as Bindings;

const api = {
  userAgent: navigator.userAgent,

  cases: () =>
    storageConformanceCases.map((c) => ({
      name: c.name,
      invariant: c.invariant,
      needsReopen: c.needsReopen === true,
      needsShared: c.needsShared === true,
      needsExclusive: c.needsExclusive === true,
    })),

  runCase: (index: number) =>
    outcome(async () => {
      const testCase = storageConformanceCases[index];
      if (testCase === undefined) throw new Error(`no conformance case ${index}`);
      await runStorageConformanceCase(testCase, factory);
    }),

  /**
   * SECURITY.md D30 in real IndexedDB: `fixture` (a committed `schema-vN.json`) recreated
   * raw as `name`, opened and migrated by the adapter, read back, its sessions used.
   */
  checkFixture: (fixture: SchemaFixture, name: string) =>
    outcome(async () => {
      await expectFixtureLoads(fixture, fixtureBackend(name), INDEXEDDB_SCHEMA_VERSION);
      await deleteDB(name);
      return null;
    }),

  /** `fixture` one schema version above the adapter's: refused, untouched. */
  checkNewerFixture: (fixture: SchemaFixture, name: string) =>
    outcome(async () => {
      await expectNewerSchemaRefused(fixture, fixtureBackend(name), INDEXEDDB_SCHEMA_VERSION);
      await deleteDB(name);
      return null;
    }),

  /** Opens an adapter kept under `id` for later calls from Node. */
  open: (id: string, name: string) =>
    outcome(async () => {
      adapters.set(id, createIndexedDbStorage({ name }));
      return null;
    }),

  call: (id: string, op: 'get' | 'put' | 'close', key: string[], value?: number[]) =>
    outcome(async () => {
      const storage = adapters.get(id);
      if (storage === undefined) throw new Error(`no adapter ${id}`);
      if (op === 'get') {
        const v = await storage.get(key);
        return v === undefined ? null : Array.from(v);
      }
      if (op === 'put') {
        await storage.batch([{ type: 'put', key, value: Uint8Array.from(value ?? []) }]);
        return null;
      }
      await storage.close();
      return null;
    }),

  /** A batch of small puts and one `size`-byte value, under `prefix`. */
  bigBatch: (id: string, prefix: string, size: number) =>
    outcome(async () => {
      const storage = adapters.get(id);
      if (storage === undefined) throw new Error(`no adapter ${id}`);
      const big = new Uint8Array(size);
      for (let i = 0; i < size; i += 4096) big[i] = i & 0xff; // not all zero
      await storage.batch([
        { type: 'put', key: [prefix, 'first'], value: bytes(1) },
        { type: 'put', key: [prefix, 'big'], value: big },
        { type: 'put', key: [prefix, 'last'], value: bytes(3) },
      ]);
      return null;
    }),

  count: (id: string, prefix: string) =>
    outcome(async () => {
      const storage = adapters.get(id);
      if (storage === undefined) throw new Error(`no adapter ${id}`);
      return (await storage.range([prefix])).length;
    }),

  /** What Web Locks reports as held while inside `exclusive` (proves the real lock is used). */
  heldInsideExclusive: (name: string) =>
    outcome(async () => {
      const storage = createIndexedDbStorage({ name });
      try {
        const inside = await storage.exclusive!(async () => (await navigator.locks.query()).held ?? []);
        const after = (await navigator.locks.query()).held ?? [];
        return { inside: inside.map((l) => ({ name: l.name, mode: l.mode })), after: after.map((l) => l.name) };
      } finally {
        await storage.close();
      }
    }),

  /** Deletes a database from this page; fails if the deletion is reported `blocked`. */
  deleteDatabase: (name: string) =>
    outcome(
      () =>
        new Promise<null>((resolve, reject) => {
          const request = indexedDB.deleteDatabase(name);
          request.onblocked = () => reject(new Error(`deleting ${name} is blocked by an open connection`));
          request.onsuccess = () => resolve(null);
          request.onerror = () => reject(request.error);
        }),
    ),

  /** Opens `name` raw at `version`, ignoring `versionchange`: a tab running an old build. */
  holdRaw: (name: string, version: number) =>
    outcome(
      () =>
        new Promise<null>((resolve, reject) => {
          const request = indexedDB.open(name, version);
          request.onupgradeneeded = () => request.result.createObjectStore('entries');
          request.onsuccess = () => {
            (globalThis as { rawConnection?: IDBDatabase }).rawConnection = request.result;
            resolve(null);
          };
          request.onerror = () => reject(request.error);
        }),
    ),
  releaseRaw: () => (globalThis as { rawConnection?: IDBDatabase }).rawConnection?.close(),

  /**
   * Opens `name` at schema version 2 with a test migration (the shipped schema is
   * version 1): how the next release's upgrade meets other tabs.
   */
  upgradeToV2: (name: string, blockedTimeoutMs: number) =>
    outcome(async () => {
      const v2: Migration = (_db, tx) => {
        tx.objectStore('entries').put(bytes(2).buffer, ['migrated']);
        return undefined;
      };
      const pending = openDatabase({
        factory: indexedDB,
        name,
        version: 2,
        migrations: [...MIGRATIONS, v2],
        blockedTimeoutMs,
        onLost: () => undefined,
      });
      const db = await pending.connection;
      const version = db.version;
      db.close();
      return version;
    }),

  /**
   * `count` read-modify-write increments of one counter, each under `exclusive` (or with
   * none, for the control), reporting entry and exit to Node and calling back to Node
   * between the read and the write, where a broken lock lets the other page in.
   */
  increments: (name: string, pageId: string, count: number, locked: boolean) =>
    outcome(async () => {
      const storage = createIndexedDbStorage({ name });
      const key = ['counter'];
      const step = async () => {
        await bindings.deadboltEnter(pageId);
        const current = (await storage.get(key))?.[0] ?? 0;
        await bindings.deadboltBetween(pageId);
        await storage.batch([{ type: 'put', key, value: bytes(current + 1) }]);
        await bindings.deadboltLeave(pageId);
      };
      try {
        // Both pages start together (a barrier in Node), so they really contend.
        await bindings.deadboltStart(pageId);
        // Sequential within a page: the contest is between the two pages.
        for (let i = 0; i < count; i++) await (locked ? storage.exclusive!(step) : step());
        return ((await storage.get(key)) ?? bytes(0))[0];
      } finally {
        await storage.close();
      }
    }),
};

export type DeadboltPage = typeof api;
(globalThis as unknown as { deadboltPage: DeadboltPage }).deadboltPage = api;
