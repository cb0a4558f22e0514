/** The shared storage conformance suite, on real SQLite files. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import type { StorageAdapter } from '@deadbolt/spec';
import { describeStorageConformance } from '@deadbolt/test-kit';
import { createSqliteStorage } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'deadbolt-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const paths = new WeakMap<StorageAdapter, string>();
let n = 0;

describeStorageConformance('sqlite', {
  async create() {
    const path = join(dir, `s${n++}.db`);
    const storage = createSqliteStorage({ path });
    paths.set(storage, path);
    return storage;
  },
  async openShared(first) {
    // A second connection to the same file: to SQLite and its locks, another process.
    const path = paths.get(first)!;
    const storage = createSqliteStorage({ path });
    paths.set(storage, path);
    return storage;
  },
  async reopen(previous) {
    const path = paths.get(previous)!;
    await previous.close();
    const storage = createSqliteStorage({ path });
    paths.set(storage, path);
    return storage;
  },
});
