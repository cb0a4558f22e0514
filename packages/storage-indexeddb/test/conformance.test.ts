// The shared storage conformance suite against fake-indexeddb in Node. The same suite
// runs against real IndexedDB and real Web Locks in Chromium (chromium-conformance.test.ts).
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import type { StorageAdapter } from '@deadbolt/spec';
import { describeStorageConformance } from '@deadbolt/test-kit';
import { createIndexedDbStorage } from '../src/index.js';

// Every case gets a fresh factory (an empty, separate IndexedDB world); `reopen` and
// `openShared` open the same database name on the same factory.
const backendOf = new WeakMap<StorageAdapter, { factory: IDBFactory; name: string }>();
let factory = new IDBFactory();
let n = 0;

function open(backend: { factory: IDBFactory; name: string }): StorageAdapter {
  const storage = createIndexedDbStorage({ name: backend.name, indexedDB: backend.factory });
  backendOf.set(storage, backend);
  return storage;
}

function backend(storage: StorageAdapter): { factory: IDBFactory; name: string } {
  const found = backendOf.get(storage);
  if (found === undefined) throw new Error('not an adapter created by this factory');
  return found;
}

describeStorageConformance('indexeddb (fake-indexeddb)', {
  async create() {
    return open({ factory, name: `conformance-${n++}` });
  },
  async reopen(previous) {
    await previous.close();
    return open(backend(previous));
  },
  async openShared(first) {
    return open(backend(first));
  },
  async teardown() {
    factory = new IDBFactory();
  },
});
