/**
 * SECURITY.md D26: two session managers sharing one store (two tabs on one IndexedDB
 * database, two processes on one SQLite file) never fork a ratchet. Here the store is a
 * memory backing shared by two adapters, whose exclusive lock is the contract's
 * invariant 11; the real-backend versions of the lock are tested by each adapter's
 * conformance suite and the SQLite cross-process test.
 */
import { describe, expect, test } from 'vitest';
import type { StorageAdapter } from '@deadbolt/spec';
import { createMemoryStorage, createMemoryStorageBacking } from '@deadbolt/storage-memory';
import { createSessionManager, utf8, fromUtf8 } from '../../src/index.js';
import { createParty, nodeCrypto, takeBundle } from '../helpers/parties.js';

/** The same store without its lock: what an adapter lacking invariant 11 would be. */
function withoutLock(storage: StorageAdapter): StorageAdapter {
  return {
    specificationVersion: storage.specificationVersion,
    get: (key) => storage.get(key),
    range: (prefix, options) => storage.range(prefix, options),
    batch: (ops) => storage.batch(ops),
    close: () => storage.close(),
  };
}

async function twoTabsSendingToBob(lock: boolean): Promise<{ decrypted: string[]; failures: number; sent: number }> {
  const backing = createMemoryStorageBacking();
  const wrap = (s: StorageAdapter) => (lock ? s : withoutLock(s));
  const tab1 = await createParty('alice', 'laptop', { storage: wrap(createMemoryStorage({ backing })) });
  const tab2 = createSessionManager({ storage: wrap(createMemoryStorage({ backing })), crypto: nodeCrypto });
  const bob = await createParty('bob', 'phone');
  await tab1.sessions.processBundle(takeBundle(bob));
  // Bob answers once, so Alice's session is confirmed and both tabs use the ratchet.
  const first = await tab1.sessions.encrypt(bob.address, utf8('hello'));
  await bob.sessions.decrypt(tab1.address, first);
  await tab1.sessions.decrypt(bob.address, await bob.sessions.encrypt(tab1.address, utf8('hi')));

  // Both tabs send at once, interleaving freely.
  const n = 40;
  const frames = await Promise.all(
    Array.from({ length: n }, (_, i) => (i % 2 === 0 ? tab1.sessions : tab2).encrypt(bob.address, utf8(`m${i}`))),
  );
  const decrypted: string[] = [];
  let failures = 0;
  for (const frame of frames) {
    try {
      decrypted.push(fromUtf8((await bob.sessions.decrypt(tab1.address, frame)).plaintext));
    } catch {
      failures++;
    }
  }
  return { decrypted, failures, sent: n };
}

describe('SECURITY.md D26: two managers sharing one store never fork a ratchet', () => {
  test('with the store lock, 40 messages sent concurrently from two tabs all decrypt at the peer, each exactly once', async () => {
    const { decrypted, failures, sent } = await twoTabsSendingToBob(true);
    expect(failures).toBe(0);
    expect(decrypted.sort()).toEqual(Array.from({ length: sent }, (_, i) => `m${i}`).sort());
  });

  test('control: without the lock the same run forks the ratchet (so the test above can fail)', async () => {
    const { failures } = await twoTabsSendingToBob(false);
    expect(failures).toBeGreaterThan(0);
  });
});
