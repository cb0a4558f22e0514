/** SQLite-specific behaviour beyond the shared conformance suite. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';
import { compareStorageKeys } from '@deadbolt/spec';
import { createSqliteStorage } from '../src/index.js';
import { decodeKey, encodeKey } from '../src/key-encoding.js';

const dir = mkdtempSync(join(tmpdir(), 'deadbolt-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function memcmp(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
}

// Any UTF-16 string, lone surrogates included.
const segment = fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 6 }).map((units) => String.fromCharCode(...units));
const key = fc.array(segment, { minLength: 1, maxLength: 4 });

describe('key encoding', () => {
  test('round-trips and orders exactly as the contract (memcmp = compareStorageKeys)', () => {
    fc.assert(
      fc.property(key, key, (a, b) => {
        expect(decodeKey(encodeKey(a))).toEqual(a);
        expect(Math.sign(memcmp(encodeKey(a), encodeKey(b)))).toBe(Math.sign(compareStorageKeys(a, b)));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('two connections on one file', () => {
  test('batches from both are serialised: every increment survives', async () => {
    const path = join(dir, 'shared.db');
    const one = createSqliteStorage({ path });
    const two = createSqliteStorage({ path });
    await one.batch([{ type: 'put', key: ['n'], value: new Uint8Array([0]) }]);
    // Interleaved read-modify-write through both connections; each batch is atomic and
    // sees the other's committed writes.
    for (let i = 0; i < 50; i++) {
      const s = i % 2 === 0 ? one : two;
      const v = (await s.get(['n']))![0]!;
      await s.batch([{ type: 'put', key: ['n'], value: new Uint8Array([v + 1]) }, { type: 'put', key: ['log', String(i).padStart(3, '0')], value: new Uint8Array([v]) }]);
    }
    expect((await one.get(['n']))![0]).toBe(50);
    expect((await two.range(['log'])).map((e) => e.value[0])).toEqual(Array.from({ length: 50 }, (_, i) => i));
    await one.close();
    await two.close();
  });

  test('a database written by a newer schema is refused, not trusted', async () => {
    const path = join(dir, 'newer.db');
    const s = createSqliteStorage({ path });
    await s.close();
    const Database = (await import('better-sqlite3')).default;
    const raw = new Database(path);
    raw.pragma('user_version = 99');
    raw.close();
    expect(() => createSqliteStorage({ path })).toThrow(expect.objectContaining({ code: 'CORRUPTED_RECORD' }));
  });
});
