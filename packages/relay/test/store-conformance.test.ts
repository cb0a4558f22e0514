import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll } from 'vitest';
import { describeRelayStoreConformance, type RelayStoreContract } from '@deadbolt/test-kit';
import { createMemoryRelayStore, createSqliteRelayStore } from '../src/index.js';

describeRelayStoreConformance('memory', {
  async create() {
    return createMemoryRelayStore();
  },
});

// Each SQLite store remembers its file, so `reopen` opens the same database again.
const dir = await mkdtemp(join(tmpdir(), 'deadbolt-relay-store-'));
const pathOf = new WeakMap<RelayStoreContract, string>();
afterAll(() => rm(dir, { recursive: true, force: true }));

describeRelayStoreConformance('sqlite', {
  async create() {
    const path = join(dir, `${randomUUID()}.db`);
    const store = createSqliteRelayStore({ path });
    pathOf.set(store, path);
    return store;
  },
  async reopen(previous) {
    const path = pathOf.get(previous);
    if (path === undefined) throw new Error('reopen: not a store created by this factory');
    await previous.close();
    const store = createSqliteRelayStore({ path });
    pathOf.set(store, path);
    return store;
  },
});
