/**
 * SQLite-specific behaviour beyond the conformance suite: pragmas, two connections on one
 * file (as two relay processes would share it), a newer schema refused.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import { createSqliteRelayStore } from '../src/index.js';

let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deadbolt-relay-sqlite-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const key = new Uint8Array(32).fill(9);
const bob = { userId: 'bob', deviceId: 'laptop' };

it('the file is in WAL mode with its schema version, and several connections share it', async () => {
  const path = join(dir, 'r.db');
  const store = createSqliteRelayStore({ path });
  await store.setAccountKey('bob', key, undefined);
  await store.close();
  const db = new Database(path);
  expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
  expect(db.pragma('user_version', { simple: true })).toBe(2);
  db.close();
  // (secure_delete's effect is checked by test/scenarios/at-rest.test.ts.)
  const s1 = createSqliteRelayStore({ path, busyTimeoutMs: 2000 });
  const s2 = createSqliteRelayStore({ path, busyTimeoutMs: 2000 });
  expect(await s1.getAccountKey('bob')).toEqual(key);
  expect(await s2.getAccountKey('bob')).toEqual(key);
  await s1.close();
  await s2.close();
});

it('two stores on one file (two relay processes) never hand out one one-time key twice', async () => {
  const path = join(dir, 'shared.db');
  const s1 = createSqliteRelayStore({ path });
  const s2 = createSqliteRelayStore({ path });
  await s1.setAccountKey('bob', key, undefined);
  await s1.registerDevice(bob, key, new Uint8Array(100), 10, 0);
  const put = {
    signedPrekey: new Uint8Array(100),
    lastResortPrekey: new Uint8Array(1252),
    oneTimePrekeys: Array.from({ length: 50 }, (_, i) => ({ id: i + 1, key: new Uint8Array(32).fill(i) })),
    pqPrekeys: [],
  };
  expect((await s2.putPrekeys(bob, put, { maxOneTime: 100, maxPq: 10, rememberConsumed: 1000 })).ok).toBe(true);
  const takes = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? s1 : s2).takeBundle(bob)));
  const ids = takes.flatMap((t) => (t?.oneTimePrekey ? [t.oneTimePrekey.id] : []));
  expect(ids).toHaveLength(50);
  expect(new Set(ids).size).toBe(50);
  // s2 sees s1's consumption: re-uploading does not resurrect.
  expect(await s1.putPrekeys(bob, put, { maxOneTime: 100, maxPq: 10, rememberConsumed: 1000 })).toEqual({ ok: true, counts: { oneTime: 0, pq: 0 } });
  await s1.close();
  await s2.close();
});

it('a database from a newer relay is refused, not misread', async () => {
  const path = join(dir, 'future.db');
  const db = new Database(path);
  db.pragma('user_version = 99');
  db.close();
  let error: unknown;
  try {
    createSqliteRelayStore({ path });
  } catch (e) {
    error = e;
  }
  expect(isDeadboltError(error, 'CORRUPTED_RECORD')).toBe(true);
});

it('a schema-1 database (before device lists) opens as schema 2, keeping its data', async () => {
  const path = join(dir, 'v1.db');
  const s1 = createSqliteRelayStore({ path });
  await s1.setAccountKey('bob', key, undefined);
  await s1.registerDevice(bob, key, new Uint8Array(100).fill(3), 10, 0);
  await s1.close();
  // What a schema-1 relay left: no device_lists table, user_version 1.
  const db = new Database(path);
  db.exec('DROP TABLE device_lists');
  db.pragma('user_version = 1');
  db.close();
  const s2 = createSqliteRelayStore({ path });
  expect(await s2.getDevice(bob)).toEqual(new Uint8Array(100).fill(3));
  expect(await s2.getDeviceList('bob')).toBeUndefined();
  expect(await s2.putDeviceList('bob', key, 1, new Uint8Array(50).fill(4), [{ deviceId: 'laptop', certificate: new Uint8Array(100).fill(3) }])).toEqual({
    ok: true,
    changed: true,
    removed: [],
  });
  await s2.close();
  const check = new Database(path);
  expect(check.pragma('user_version', { simple: true })).toBe(2);
  check.close();
  const s3 = createSqliteRelayStore({ path });
  expect((await s3.getDeviceList('bob'))?.version).toBe(1);
  await s3.close();
});
