import { describeStorageConformance } from '@deadbolt/test-kit';
import type { StorageAdapter } from '@deadbolt/spec';
import { createMemoryStorage, createMemoryStorageBacking, type MemoryStorageBacking } from '../src/index.js';

// Each adapter remembers its backing, so `reopen` opens a new instance over the same one.
const backingOf = new WeakMap<StorageAdapter, MemoryStorageBacking>();

function open(backing: MemoryStorageBacking): StorageAdapter {
  const storage = createMemoryStorage({ backing });
  backingOf.set(storage, backing);
  return storage;
}

describeStorageConformance('memory', {
  async create() {
    return open(createMemoryStorageBacking());
  },
  async reopen(previous) {
    const backing = backingOf.get(previous);
    if (backing === undefined) throw new Error('reopen: not an adapter created by this factory');
    await previous.close();
    return open(backing);
  },
  async openShared(first) {
    const backing = backingOf.get(first);
    if (backing === undefined) throw new Error('openShared: not an adapter created by this factory');
    return open(backing);
  },
});
