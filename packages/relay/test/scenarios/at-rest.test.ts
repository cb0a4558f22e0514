/**
 * SECURITY.md F43: the relay stores and logs no plaintext, no private key, no token.
 * A real conversation (PQXDH + Double Ratchet from @deadbolt/core) runs through a real
 * relay over SQLite; then the database files and every log line are searched byte by byte.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { decodeDeviceCertificate } from '@deadbolt/core';
import { createDevice, privateKeysOf, str, text } from '../helpers/devices.js';
import { expectOk, httpAuth, httpRpc } from '../helpers/clients.js';
import { useScenario } from '../helpers/scenario.js';

const { relay, connect } = useScenario({ sqlite: true });

async function filesOf(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of await readdir(dir)) out.set(name, await readFile(join(dir, name)));
  return out;
}

function findIn(files: Map<string, Buffer>, needle: Uint8Array): string | undefined {
  for (const [name, bytes] of files) if (bytes.indexOf(needle) >= 0) return name;
  return undefined;
}

it('after a real encrypted conversation the database and logs hold no plaintext, no private key and no token', { timeout: 30_000 }, async () => {
  const r = await relay();
  const alice = await createDevice('alice', 'phone', { oneTime: 3, pqOneTime: 2 });
  const bob = await createDevice('bob', 'laptop', { oneTime: 3, pqOneTime: 2 });
  const a = await connect(r, alice);
  const b = await connect(r, bob);
  expectOk(await a.request({ kind: 'publish-prekeys', upload: alice.upload() }));
  expectOk(await b.request({ kind: 'publish-prekeys', upload: bob.upload() }));
  const { token: bobToken } = await httpAuth(r.relay.url, bob);

  const fromAlice = ['PLAINTEXT-alpha: meet at the old mill', 'PLAINTEXT-bravo: the code is 4471', 'PLAINTEXT-charlie: bring the ledger', 'PLAINTEXT-delta: 🦉 at dawn'];
  const fromBob = ['PLAINTEXT-echo: understood', 'PLAINTEXT-foxtrot: ledger is in the car'];
  const bundle = await a.request({ kind: 'fetch-bundles', userId: 'bob' });
  if (bundle.kind !== 'bundles') throw new Error('no bundle');
  await alice.sessions.processBundle(bundle.bundles[0]!);
  const sentFrames: Uint8Array[] = [];
  for (const p of fromAlice) {
    const frame = await alice.sessions.encrypt(bob.address, text(p));
    sentFrames.push(frame);
    expectOk(await a.request({ kind: 'send', messages: [{ to: bob.address, frame }] }));
  }
  const got = await b.delivered(fromAlice.length);
  expect(await Promise.all(got.map(async (m) => str((await bob.sessions.decrypt(m.from, m.frame)).plaintext)))).toEqual(fromAlice);
  // Bob acknowledges the first two over WebSocket; the others stay queued (ciphertext at rest).
  expectOk(await b.request({ kind: 'ack', ids: got.slice(0, 2).map((m) => m.id) }));
  for (const p of fromBob) {
    expectOk((await httpRpc(r.relay.url, { kind: 'send', messages: [{ to: alice.address, frame: await bob.sessions.encrypt(alice.address, text(p)) }] }, { token: bobToken })).frame);
  }
  const replies = await a.delivered(fromBob.length);
  expect(await Promise.all(replies.map(async (m) => str((await alice.sessions.decrypt(m.from, m.frame)).plaintext)))).toEqual(fromBob);

  const secrets = [...(await privateKeysOf(alice)), ...(await privateKeysOf(bob))];
  expect(secrets.length).toBeGreaterThanOrEqual(2 * (3 + 3 + 2 + 1));
  const plaintexts = [...fromAlice, ...fromBob];

  const check = (files: Map<string, Buffer>, when: string) => {
    for (const p of plaintexts) expect(findIn(files, text(p)), `${when}: plaintext "${p}"`).toBeUndefined();
    for (const p of plaintexts) expect(findIn(files, text(p.slice(11, 27))), `${when}: plaintext fragment of "${p}"`).toBeUndefined();
    for (const s of secrets) expect(findIn(files, s.bytes.subarray(0, 32)), `${when}: private key ${s.name}`).toBeUndefined();
    expect(findIn(files, Buffer.from(bobToken)), `${when}: session token`).toBeUndefined();
  };
  // While running (WAL file present) and after a clean close (checkpointed into the main file).
  const live = await filesOf(r.dir!);
  check(live, 'live database');
  // Positive controls: the search does find what the relay must keep.
  expect(findIn(live, decodeDeviceCertificate(alice.certificate).accountKey)).toBeDefined();
  expect(findIn(live, sentFrames[3]!)).toBeDefined();

  await r.relay.close();
  const closed = await filesOf(r.dir!);
  check(closed, 'closed database');
  expect(findIn(closed, sentFrames[3]!), 'an unacknowledged frame is still stored').toBeDefined();
  // secure_delete: acknowledged frames are overwritten, not just unlinked. (Their tails:
  // Alice's PreKey messages all begin with the same PQXDH header.)
  expect(findIn(closed, sentFrames[0]!.subarray(-64)), 'an acknowledged frame').toBeUndefined();
  expect(findIn(closed, sentFrames[1]!.subarray(-64)), 'an acknowledged frame').toBeUndefined();
  expect(findIn(closed, sentFrames[2]!.subarray(-64)), 'an unacknowledged frame').toBeDefined();

  const logText = Buffer.from(JSON.stringify(r.logs));
  for (const p of plaintexts) expect(logText.indexOf(text(p.slice(11, 27))), `log: "${p}"`).toBe(-1);
  expect(logText.indexOf(Buffer.from(bobToken)), 'log: token').toBe(-1);
  for (const s of secrets) {
    for (const enc of ['hex', 'base64', 'base64url'] as const) {
      expect(logText.indexOf(Buffer.from(Buffer.from(s.bytes.subarray(0, 16)).toString(enc))), `log: ${s.name} (${enc})`).toBe(-1);
    }
  }
  expect(r.logs.length).toBeGreaterThan(0);
});
