/**
 * Encryption at rest (docs/protocol.md §7.5) through the whole stack: a client created with
 * `encryptionKey` over a real SQLite file, talking to another client through the reference
 * relay on loopback.
 *
 * What a copy of the device's disk may show, by design, are the storage keys (the record
 * paths: record kinds, contact user ids, message ids and times). What it must not show is
 * any value: no message text, no key (secret or public), no record in the clear. And the
 * store must refuse what would quietly break that: a wrong key (`wrong-key`), the store
 * opened without its key (`store-encrypted`), a plaintext store opened with a key
 * (`store-not-encrypted`), and a sealed value moved to another key, which passes every
 * record checksum and is caught only by the path bound into the seal (`CORRUPTED_RECORD`).
 *
 * The tests run in order on one SQLite file: Bob's first run, then reopenings of it.
 */
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createClient, createEncryptedStorage, SEAL_OVERHEAD, utf8, type Client, type ReceivedMessage } from '@deadbolt/core';
import { rejectionOf } from '@deadbolt/test-kit';
import type { Relay } from '@deadbolt/relay';
import { isDeadboltError, type StorageAdapter } from '@deadbolt/spec';
import { createSqliteStorage } from '@deadbolt/storage-sqlite';
import { makeTransport, startClient, startRelay, text, type TestClient } from './stack.js';

const KEY = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const WRONG_KEY = Uint8Array.from({ length: 32 }, (_, i) => 255 - i);
/** Message texts long and distinctive enough that finding them in the file cannot be chance. */
const TO_BOB = 'sealed-at-rest: the eagle lands at dawn, bring the blue umbrella';
const TO_ALICE = 'sealed-at-rest: understood, the umbrella is green this time';
const AFTER_REOPEN = 'sealed-at-rest: and after reopening the store';
/** Every top-level record kind core writes (docs/protocol.md §7.1, §11.2-§11.4, §12.11). */
const RECORD_PREFIXES = ['identity', 'prekey', 'prekey-meta', 'prekey-replay', 'session', 'trust', 'device-list', 'msg', 'conv', 'msg-seen', 'announce', 'client', 'group', 'group-msg', 'group-conv', 'group-orphan'];

let relay: Relay;
let alice: TestClient;
let dir: string;
let path: string;
const open: Client[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'deadbolt-at-rest-'));
  path = join(dir, 'bob.db');
  relay = await startRelay();
  alice = await startClient('websocket', relay, 'alice', 'phone');
});

afterAll(async () => {
  for (const c of open.splice(0)) await c.close();
  await alice?.client.close();
  await relay?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Bob's client over the SQLite file at `file`, with `key` (none: `undefined`). */
async function bobClient(file: string, key: Uint8Array | undefined): Promise<{ client: Client; received: ReceivedMessage[]; arrived(n: number): Promise<void> }> {
  const client = await createClient({
    userId: 'bob',
    deviceId: 'laptop',
    storage: createSqliteStorage({ path: file }),
    ...(key !== undefined ? { encryptionKey: key } : {}),
    transport: makeTransport('websocket', relay),
    prekeyBatch: { oneTime: 5, pqOneTime: 2 },
  });
  open.push(client);
  const received: ReceivedMessage[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  client.on('message-received', (m) => {
    received.push(m);
    for (const w of waiters.splice(0)) (received.length >= w.n ? w.resolve : () => waiters.push(w))();
  });
  return {
    client,
    received,
    arrived: (n) => (received.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
  };
}

async function closeClient(client: Client): Promise<void> {
  open.splice(open.indexOf(client), 1);
  await client.close();
}

/** Every byte the store left on disk: the database and its side files (WAL, lock). */
function diskBytes(file: string): Buffer {
  const name = file.slice(dir.length + 1);
  return Buffer.concat(readdirSync(dir).filter((f) => f.startsWith(name)).map((f) => readFileSync(join(dir, f))));
}

/** The table as SQLite holds it, read without the adapter: raw key and value of every row. */
function rawRows(file: string): { k: Buffer; v: Buffer }[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT k, v FROM kv ORDER BY k').all() as { k: Buffer; v: Buffer }[];
  } finally {
    db.close();
  }
}

/** Every value through the encryption wrapper, by record kind (the client is closed). */
async function openedEntries(file: string): Promise<{ key: readonly string[]; value: Uint8Array }[]> {
  const storage: StorageAdapter = createEncryptedStorage(createSqliteStorage({ path: file }), { key: KEY });
  try {
    const out = [];
    for (const prefix of RECORD_PREFIXES) out.push(...(await storage.range([prefix])));
    return out;
  } finally {
    await storage.close();
  }
}

describe('encryption at rest over SQLite, through the relay (docs/protocol.md §7.5)', () => {
  test('messages flow both ways; the file holds every value sealed, no message text and no key, while the record paths stay readable', async () => {
    const bob = await bobClient(path, KEY);
    await bob.client.start();
    await alice.client.send('bob', TO_BOB);
    await bob.arrived(1);
    expect(text(bob.received[0]!)).toBe(TO_BOB);
    await bob.client.send('alice', TO_ALICE);
    await alice.waitForMessages(1);
    expect(text(alice.received[0]!)).toBe(TO_ALICE);
    const certificate = await bob.client.sessions.certificate();
    await closeClient(bob.client);

    const disk = diskBytes(path);
    for (const t of [TO_BOB, TO_ALICE]) expect(disk.includes(Buffer.from(utf8(t))), `"${t}" in the file`).toBe(false);
    // Public keys are sealed too: they are in the identity record and in Alice's session.
    const aliceCertificate = await alice.client.sessions.certificate();
    for (const [name, k] of Object.entries({
      'Bob identity key': certificate.identityKey,
      'Bob signing key': certificate.signingKey,
      'Bob account key': certificate.accountKey,
      'Alice identity key': aliceCertificate.identityKey,
    })) {
      expect(disk.includes(Buffer.from(k)), `${name} in the file`).toBe(false);
    }

    // Every stored value, opened with the key, appears nowhere in the file: not one record
    // is stored in the clear (the 10-byte empty markers included).
    const entries = await openedEntries(path);
    const kinds = new Set(entries.map((e) => e.key[0]));
    for (const kind of ['identity', 'prekey', 'prekey-meta', 'session', 'trust', 'device-list', 'msg', 'conv', 'msg-seen']) expect(kinds, kind).toContain(kind);
    for (const e of entries) expect(disk.includes(Buffer.from(e.value)), `value of ${JSON.stringify(e.key)} in the clear`).toBe(false);
    // The secrets of the identity record (§7.2: hasAccountSecret u8 [accountSecret[32]] |
    // signingSecret[32] | identitySecret[32] | ..., inside the §7.1 envelope).
    const identity = entries.find((e) => e.key.length === 1 && e.key[0] === 'identity')!.value;
    const body = identity.subarray(2, identity.length - 8);
    const secrets = body[0] === 1 ? [body.subarray(1, 33), body.subarray(33, 65), body.subarray(65, 97)] : [body.subarray(1, 33), body.subarray(33, 65)];
    expect(body[0]).toBe(1); // the first device holds the account key
    for (const s of secrets) expect(disk.includes(Buffer.from(s)), 'an identity secret in the file').toBe(false);

    // Row by row, read with plain SQL: one row per entry plus the key check; every value
    // sealed (version 0xE1, 49 bytes longer than the record); keys readable by design.
    const rows = rawRows(path);
    expect(rows.length).toBe(entries.length + 1);
    for (const row of rows) expect(row.v[0], 'sealed version byte').toBe(0xe1);
    const raw = createSqliteStorage({ path });
    try {
      const history = await raw.range(['msg', 'alice']);
      expect(history.length).toBe(2);
      const opened = entries.filter((e) => e.key[0] === 'msg');
      for (const [i, e] of history.entries()) expect(e.value.length).toBe(opened[i]!.value.length + SEAL_OVERHEAD);
      expect((await raw.range(['conv'])).map((e) => e.key)).toEqual([['conv', 'alice']]);
    } finally {
      await raw.close();
    }
  });

  test('reopened with the right key: history intact, and the conversation goes on', async () => {
    const bob = await bobClient(path, KEY);
    await bob.client.start();
    expect((await bob.client.history('alice')).map((m) => [m.direction, text(m)])).toEqual([
      ['incoming', TO_BOB],
      ['outgoing', TO_ALICE],
    ]);
    expect((await bob.client.conversations()).map((c) => c.userId)).toEqual(['alice']);
    expect(bob.received).toEqual([]); // both were handled in the first run: nothing comes again
    await alice.client.send('bob', AFTER_REOPEN);
    await bob.arrived(1);
    expect(text(bob.received[0]!)).toBe(AFTER_REOPEN);
    await bob.client.send('alice', 'and back');
    await alice.waitForMessages(2);
    expect(text(alice.received[1]!)).toBe('and back');
    await closeClient(bob.client);
    expect(diskBytes(path).includes(Buffer.from(utf8(AFTER_REOPEN)))).toBe(false);
  });

  test('a wrong key fails start with STORAGE_ENCRYPTION wrong-key, and leaves the file unchanged', async () => {
    const before = rawRows(path);
    const bob = await bobClient(path, WRONG_KEY);
    const e = await rejectionOf(bob.client.start());
    expect(isDeadboltError(e, 'STORAGE_ENCRYPTION') && e.details.reason).toBe('wrong-key');
    await closeClient(bob.client);
    expect(rawRows(path)).toEqual(before);
  });

  test('the sealed store opened without a key fails start with STORAGE_ENCRYPTION store-encrypted, and nothing is written', async () => {
    const before = rawRows(path);
    const bob = await bobClient(path, undefined);
    const e = await rejectionOf(bob.client.start());
    expect(isDeadboltError(e, 'STORAGE_ENCRYPTION') && e.details.reason).toBe('store-encrypted');
    await closeClient(bob.client);
    expect(rawRows(path)).toEqual(before);
  });

  test('a plaintext store opened with a key fails start with STORAGE_ENCRYPTION store-not-encrypted (never mixed)', async () => {
    const plainPath = join(dir, 'plain.db');
    const first = await bobClient(plainPath, undefined);
    // A store with plaintext state: an identity written without a key (no relay needed).
    await first.client.sessions.createIdentity({ userId: 'bob', deviceId: 'laptop' });
    await closeClient(first.client);
    const before = rawRows(plainPath);
    const sealed = await bobClient(plainPath, KEY);
    const e = await rejectionOf(sealed.client.start());
    expect(isDeadboltError(e, 'STORAGE_ENCRYPTION') && e.details.reason).toBe('store-not-encrypted');
    await closeClient(sealed.client);
    expect(rawRows(plainPath)).toEqual(before);
  });

  test('two sealed values swapped between their rows are CORRUPTED_RECORD, never shown as each other', async () => {
    // On a copy (the client closed, so the WAL is folded into the file).
    const copy = join(dir, 'swapped.db');
    copyFileSync(path, copy);
    const bob = await bobClient(copy, KEY);
    const history = await bob.client.history('alice');
    expect(history.length).toBe(4);
    await closeClient(bob.client);
    // Both rows are valid sealed history records under the right key: only the path bound
    // into each seal (the associated data) tells that they were moved.
    const db = new Database(copy);
    try {
      const msg = Buffer.from(encodeSegmentForSearch('msg'));
      const rows = rawRows(copy).filter((r) => r.k.subarray(0, msg.length).equals(msg));
      expect(rows.length).toBe(4);
      const [a, b] = [rows[0]!, rows[2]!];
      const update = db.prepare('UPDATE kv SET v = ? WHERE k = ?');
      db.transaction(() => {
        update.run(b.v, a.k);
        update.run(a.v, b.k);
      })();
    } finally {
      db.close();
    }
    const reopened = await bobClient(copy, KEY);
    await reopened.client.start();
    const e = await rejectionOf(reopened.client.history('alice'));
    expect(isDeadboltError(e, 'CORRUPTED_RECORD')).toBe(true);
    expect(String((e as Error).message)).not.toContain('sealed-at-rest');
    await closeClient(reopened.client);
  });
});

/**
 * A key's first segment as the SQLite adapter's order-preserving key encoding writes it
 * (its key-encoding.ts: each UTF-16 code unit as three big-endian bytes of the unit plus
 * one, then a three-zero-byte terminator), to pick rows by record kind in plain SQL.
 */
function encodeSegmentForSearch(segment: string): Uint8Array {
  const out = new Uint8Array(segment.length * 3 + 3);
  for (let i = 0; i < segment.length; i++) {
    const v = segment.charCodeAt(i) + 1;
    out.set([v >>> 16, (v >>> 8) & 0xff, v & 0xff], i * 3);
  }
  return out;
}
