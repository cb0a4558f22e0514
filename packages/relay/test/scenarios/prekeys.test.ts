/**
 * The key directory: PUBLISH_PREKEYS and FETCH_BUNDLES (docs/relay-protocol.md §3).
 * SECURITY.md F38 (a one-time prekey is handed out at most once, even under concurrent
 * fetches), F39 (bundle fetches are rate limited; exhaustion falls back to the signed
 * last-resort key and tells the owner) and F40 (uploads with bad signatures are rejected,
 * nothing stored).
 */
import { describe, expect, it } from 'vitest';
import { PqPrekeyKind, decodePrekeyBundle, encodePrekeyUpload, verifyPrekeyBundle, type PublicPrekeys } from '@deadbolt/core';
import type { RelayFrame } from '@deadbolt/spec';
import { createDevice, createSiblingDevice, crypto, str, text } from '../helpers/devices.js';
import { expectError, expectOk, httpAuth, httpRpc } from '../helpers/clients.js';
import { useScenario } from '../helpers/scenario.js';

const { relay, connect } = useScenario({ sqlite: true });

function bundlesOf(frame: RelayFrame): Uint8Array[] {
  if (frame.kind !== 'bundles') throw new Error(`expected BUNDLES, got ${frame.kind === 'error' ? `ERROR ${frame.code}` : frame.kind}`);
  return [...frame.bundles];
}

function withSignatureFlipped(p: PublicPrekeys, part: 'signed' | 'last-resort' | 'pq'): Uint8Array {
  const flip = (sig: Uint8Array) => {
    const s = sig.slice();
    s[10]! ^= 0x01;
    return s;
  };
  if (part === 'signed') return encodePrekeyUpload({ ...p, signedPrekey: { ...p.signedPrekey, signature: flip(p.signedPrekey.signature) } });
  if (part === 'last-resort') return encodePrekeyUpload({ ...p, lastResortPqPrekey: { ...p.lastResortPqPrekey, signature: flip(p.lastResortPqPrekey.signature) } });
  const pq = [...p.pqPrekeys];
  pq[pq.length - 1] = { ...pq.at(-1)!, signature: flip(pq.at(-1)!.signature) };
  return encodePrekeyUpload({ ...p, pqPrekeys: pq });
}

describe('publishing and fetching bundles', () => {
  it('a fetched bundle verifies, starts a real session, and carries one one-time key of each kind', async () => {
    const r = await relay();
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop', { oneTime: 3, pqOneTime: 2 });
    const b = await connect(r, bob);
    expectOk(await b.request({ kind: 'publish-prekeys', upload: bob.upload() }));
    expectOk(await b.request({ kind: 'publish-prekeys', upload: bob.upload() })); // idempotent
    expect(await r.store.prekeyCounts(bob.address)).toEqual({ oneTime: 3, pq: 2 });
    const a = await connect(r, alice);
    const [bytes] = bundlesOf(await a.request({ kind: 'fetch-bundles', userId: 'bob' }));
    const bundle = decodePrekeyBundle(bytes!);
    await verifyPrekeyBundle(crypto, bundle);
    expect(bundle.oneTimePrekey?.id).toBe(bob.prekeys.oneTimePrekeys[0]!.id);
    expect(bundle.pqPrekey?.kind).toBe(PqPrekeyKind.ONE_TIME);
    expect(bundle.pqPrekey?.id).toBe(bob.prekeys.pqPrekeys[0]!.id);
    // The relay's bundle works end to end.
    await alice.sessions.processBundle(bytes!);
    expectOk(await a.request({ kind: 'send', messages: [{ to: bob.address, frame: await alice.sessions.encrypt(bob.address, text('hi bob')) }] }));
    const [m] = await b.delivered(1);
    expect(str((await bob.sessions.decrypt(m!.from, m!.frame)).plaintext)).toBe('hi bob');
  });

  it('one bundle per registered device with prekeys, never the requester’s own; none: UNKNOWN_USER', async () => {
    const r = await relay();
    const bob = await createDevice('bob', 'laptop');
    const bobPhone = await createSiblingDevice(bob, 'phone');
    const alice = await createDevice('alice', 'phone');
    const b = await connect(r, bob);
    const bp = await connect(r, bobPhone);
    const a = await connect(r, alice);
    expectError(await a.request({ kind: 'fetch-bundles', userId: 'bob' }), 'UNKNOWN_USER'); // registered, no prekeys yet
    expectOk(await b.request({ kind: 'publish-prekeys', upload: bob.upload() }));
    expectOk(await bp.request({ kind: 'publish-prekeys', upload: bobPhone.upload() }));
    const devices = bundlesOf(await a.request({ kind: 'fetch-bundles', userId: 'bob' })).map((x) => decodePrekeyBundle(x).certificate.deviceId);
    expect(devices).toEqual(['laptop', 'phone']);
    const own = bundlesOf(await b.request({ kind: 'fetch-bundles', userId: 'bob' })).map((x) => decodePrekeyBundle(x).certificate.deviceId);
    expect(own).toEqual(['phone']);
    expectError(await a.request({ kind: 'fetch-bundles', userId: 'nobody' }), 'UNKNOWN_USER');
  });
});

describe('SECURITY.md F40: uploads with bad signatures are rejected, nothing stored', () => {
  it('a bad signed-prekey, last-resort or PQ one-time signature rejects the whole upload', async () => {
    const r = await relay();
    const bob = await createDevice('bob', 'laptop', { oneTime: 4, pqOneTime: 3 });
    const alice = await createDevice('alice', 'phone');
    const b = await connect(r, bob);
    for (const part of ['signed', 'last-resort', 'pq'] as const) {
      expectError(await b.request({ kind: 'publish-prekeys', upload: withSignatureFlipped(bob.prekeys, part) }), 'BAD_SIGNATURE');
    }
    expect(await r.store.prekeyCounts(bob.address)).toEqual({ oneTime: 0, pq: 0 });
    expect(await r.store.takeBundle(bob.address)).toBeUndefined();
    const a = await connect(r, alice);
    expectError(await a.request({ kind: 'fetch-bundles', userId: 'bob' }), 'UNKNOWN_USER');

    // After a good upload, a bad one with new keys changes nothing either.
    expectOk(await b.request({ kind: 'publish-prekeys', upload: bob.upload() }));
    const good = bob.prekeys;
    bob.prekeys = await bob.sessions.generatePrekeys({ oneTime: 5, pqOneTime: 2, rotateSigned: true });
    expectError(await b.request({ kind: 'publish-prekeys', upload: withSignatureFlipped(bob.prekeys, 'pq') }), 'BAD_SIGNATURE');
    expect(await r.store.prekeyCounts(bob.address)).toEqual({ oneTime: 4, pq: 3 });
    const bundle = decodePrekeyBundle(bundlesOf(await a.request({ kind: 'fetch-bundles', userId: 'bob' }))[0]!);
    expect(bundle.signedPrekey.id).toBe(good.signedPrekey.id);
  });

  it("an upload carrying another device's certificate is FORBIDDEN; garbage is BAD_REQUEST", async () => {
    const r = await relay();
    const bob = await createDevice('bob', 'laptop');
    const eve = await createDevice('eve', 'laptop');
    const e = await connect(r, eve);
    await connect(r, bob);
    expectError(await e.request({ kind: 'publish-prekeys', upload: bob.upload() }), 'FORBIDDEN');
    expectError(await e.request({ kind: 'publish-prekeys', upload: new Uint8Array(100).fill(1) }), 'BAD_REQUEST');
    expectError(await e.request({ kind: 'publish-prekeys', upload: eve.upload().subarray(0, 500) }), 'BAD_REQUEST');
    expect(await r.store.prekeyCounts(bob.address)).toEqual({ oneTime: 0, pq: 0 });
    expect(await r.store.prekeyCounts(eve.address)).toEqual({ oneTime: 0, pq: 0 });
  });
});

describe('SECURITY.md F38: a one-time prekey is handed out at most once, even under concurrent fetches', () => {
  it('60 concurrent fetches over both carriers for 40 one-time keys of each kind', async () => {
    const r = await relay();
    const bob = await createDevice('bob', 'laptop', { oneTime: 40, pqOneTime: 40 });
    const b = await connect(r, bob);
    expectOk(await b.request({ kind: 'publish-prekeys', upload: bob.upload() }));
    const requesters = await Promise.all(Array.from({ length: 30 }, (_, i) => createDevice(`req${i}`, 'd', { oneTime: 0, pqOneTime: 0 })));
    const ws = await Promise.all(requesters.slice(0, 15).map((d) => connect(r, d)));
    const tokens = await Promise.all(requesters.slice(15).map(async (d) => (await httpAuth(r.relay.url, d)).token));
    const fetches: Promise<RelayFrame | undefined>[] = [];
    for (let round = 0; round < 2; round++) {
      for (const c of ws) fetches.push(c.request({ kind: 'fetch-bundles', userId: 'bob' }));
      for (const token of tokens) fetches.push(httpRpc(r.relay.url, { kind: 'fetch-bundles', userId: 'bob' }, { token }).then((x) => x.frame));
    }
    const bundles = (await Promise.all(fetches)).map((f) => decodePrekeyBundle(bundlesOf(f!)[0]!));
    expect(bundles).toHaveLength(60);
    const ot = bundles.flatMap((x) => (x.oneTimePrekey ? [x.oneTimePrekey.id] : []));
    const pq = bundles.flatMap((x) => (x.pqPrekey?.kind === PqPrekeyKind.ONE_TIME ? [x.pqPrekey.id] : []));
    expect(new Set(ot).size).toBe(ot.length);
    expect(new Set(pq).size).toBe(pq.length);
    expect(ot.sort((x, y) => x - y)).toEqual(bob.prekeys.oneTimePrekeys.map((k) => k.id).sort((x, y) => x - y));
    expect(pq.sort((x, y) => x - y)).toEqual(bob.prekeys.pqPrekeys.map((k) => k.id).sort((x, y) => x - y));
    const fallbacks = bundles.filter((x) => x.pqPrekey?.kind === PqPrekeyKind.LAST_RESORT);
    expect(fallbacks).toHaveLength(20);
    for (const x of fallbacks) {
      expect(x.oneTimePrekey).toBeUndefined();
      expect(x.pqPrekey?.id).toBe(bob.prekeys.lastResortPqPrekey.id);
    }
    // Re-uploading the same keys does not put handed-out keys back.
    expectOk(await b.request({ kind: 'publish-prekeys', upload: bob.upload() }));
    expect(await r.store.prekeyCounts(bob.address)).toEqual({ oneTime: 0, pq: 0 });
  });
});

describe('SECURITY.md F39: bundle fetches are rate limited; exhaustion falls back to the last-resort key and tells the owner', () => {
  it('6 fetches per (requester, user), then one per 10 minutes; answered RATE_LIMITED with retryAfterMs (HTTP 429 + Retry-After)', async () => {
    const r = await relay();
    const bob = await createDevice('bob', 'laptop', { oneTime: 20, pqOneTime: 20 });
    const alice = await createDevice('alice', 'phone');
    const carol = await createDevice('carol', 'phone');
    const b = await connect(r, bob);
    expectOk(await b.request({ kind: 'publish-prekeys', upload: bob.upload() }));
    const a = await connect(r, alice);
    for (let i = 0; i < 6; i++) bundlesOf(await a.request({ kind: 'fetch-bundles', userId: 'bob' }));
    const limited = expectError(await a.request({ kind: 'fetch-bundles', userId: 'bob' }), 'RATE_LIMITED');
    expect(limited.retryAfterMs).toBeGreaterThan(590_000);
    expect(limited.retryAfterMs).toBeLessThanOrEqual(600_000);
    // Over HTTP the same pair is limited: 429 with Retry-After in seconds.
    const { token } = await httpAuth(r.relay.url, alice);
    const http = await httpRpc(r.relay.url, { kind: 'fetch-bundles', userId: 'bob' }, { token });
    expect(http.status).toBe(429);
    expect(Number(http.headers.get('retry-after'))).toBeGreaterThanOrEqual(590);
    expectError(http.frame, 'RATE_LIMITED');
    // Another pair is not affected; nothing was taken by the refused fetches.
    expect(await r.store.prekeyCounts(bob.address)).toEqual({ oneTime: 14, pq: 14 });
    const c = await connect(r, carol);
    bundlesOf(await c.request({ kind: 'fetch-bundles', userId: 'bob' }));
    // Ten minutes later: exactly one more.
    r.clock.advance(10 * 60_000);
    bundlesOf(await a.request({ kind: 'fetch-bundles', userId: 'bob' }));
    expectError(await a.request({ kind: 'fetch-bundles', userId: 'bob' }), 'RATE_LIMITED');
  });

  it('skip: no bundle and no prekey of a skipped device; reads that take no prekey count only against the directory-read limit', async () => {
    const r = await relay();
    const bob = await createDevice('bob', 'laptop', { oneTime: 20, pqOneTime: 20 });
    const bobPhone = await createSiblingDevice(bob, 'phone', { oneTime: 20, pqOneTime: 20 });
    const alice = await createDevice('alice', 'phone');
    const b = await connect(r, bob);
    const bp = await connect(r, bobPhone);
    expectOk(await b.request({ kind: 'publish-prekeys', upload: bob.upload() }));
    expectOk(await bp.request({ kind: 'publish-prekeys', upload: bobPhone.upload() }));
    const a = await connect(r, alice);
    const devicesOf = (frame: RelayFrame) => bundlesOf(frame).map((x) => decodePrekeyBundle(x).certificate.deviceId);
    // Skipping one device: only the other's bundle, only its prekeys taken.
    expect(devicesOf(await a.request({ kind: 'fetch-bundles', userId: 'bob', skip: ['laptop'] }))).toEqual(['phone']);
    expect(await r.store.prekeyCounts(bob.address)).toEqual({ oneTime: 20, pq: 20 });
    expect(await r.store.prekeyCounts(bobPhone.address)).toEqual({ oneTime: 19, pq: 19 });
    // Skipping every device (a known user, no list yet): an empty answer, not UNKNOWN_USER,
    // and it takes no prekey, so it never meets the 6-per-10-minutes bundle limit.
    for (let i = 0; i < 20; i++) expect(devicesOf(await a.request({ kind: 'fetch-bundles', userId: 'bob', skip: ['laptop', 'phone'] }))).toEqual([]);
    expect(await r.store.prekeyCounts(bob.address)).toEqual({ oneTime: 20, pq: 20 });
    // Those reads did not use up the bundle limit: five more bundle fetches pass (6 in all).
    for (let i = 0; i < 5; i++) expect(devicesOf(await a.request({ kind: 'fetch-bundles', userId: 'bob' }))).toEqual(['laptop', 'phone']);
    expectError(await a.request({ kind: 'fetch-bundles', userId: 'bob' }), 'RATE_LIMITED');
    // Every read counts against the directory-read limit (30, then one per 10 s): 26 so far.
    for (let i = 0; i < 3; i++) bundlesOf(await a.request({ kind: 'fetch-bundles', userId: 'bob', skip: ['laptop', 'phone'] }));
    const limited = expectError(await a.request({ kind: 'fetch-bundles', userId: 'bob', skip: ['laptop', 'phone'] }), 'RATE_LIMITED');
    expect(limited.retryAfterMs).toBeGreaterThan(0);
    expect(limited.retryAfterMs).toBeLessThanOrEqual(10_000);
    r.clock.advance(10_000);
    bundlesOf(await a.request({ kind: 'fetch-bundles', userId: 'bob', skip: ['laptop', 'phone'] }));
    // Skipping devices that do not exist does not make a user known.
    expectError(await a.request({ kind: 'fetch-bundles', userId: 'nobody', skip: ['laptop'] }), 'UNKNOWN_USER');
  });

  it('a read that would take no one-time prekey (a listed device that never uploaded any, or has none left) does not spend the bundle-fetch limit', async () => {
    const r = await relay();
    const bob = await createDevice('bob', 'laptop', { oneTime: 1, pqOneTime: 1 });
    const bobTablet = await createSiblingDevice(bob, 'tablet'); // registers, never uploads prekeys
    const alice = await createDevice('alice', 'phone');
    const b = await connect(r, bob);
    await connect(r, bobTablet);
    expectOk(await b.request({ kind: 'publish-prekeys', upload: bob.upload() }));
    const a = await connect(r, alice);
    const devicesOf = (frame: RelayFrame) => bundlesOf(frame).map((x) => decodePrekeyBundle(x).certificate.deviceId);
    // The first read takes the laptop's only one-time keys (it counts); after that, reads
    // that skip the laptop want only the tablet, which has nothing to take: more than the
    // six the bundle-fetch limit allows pass.
    expect(devicesOf(await a.request({ kind: 'fetch-bundles', userId: 'bob' }))).toEqual(['laptop']);
    for (let i = 0; i < 10; i++) expect(devicesOf(await a.request({ kind: 'fetch-bundles', userId: 'bob', skip: ['laptop'] }))).toEqual([]);
    // The laptop's keys are used up too: its bundle now carries only the last-resort key, so
    // reading it takes nothing either.
    for (let i = 0; i < 10; i++) expect(devicesOf(await a.request({ kind: 'fetch-bundles', userId: 'bob' }))).toEqual(['laptop']);
    expect(await r.store.prekeyCounts(bob.address)).toEqual({ oneTime: 0, pq: 0 });
    // Once there is something to take again (a device with one-time keys), the limit
    // applies as before: 5 more (6 in all).
    const bobDesktop = await createSiblingDevice(bob, 'desktop', { oneTime: 20, pqOneTime: 20 });
    expectOk(await (await connect(r, bobDesktop)).request({ kind: 'publish-prekeys', upload: bobDesktop.upload() }));
    for (let i = 0; i < 5; i++) expect(devicesOf(await a.request({ kind: 'fetch-bundles', userId: 'bob' }))).toEqual(['desktop', 'laptop']);
    expectError(await a.request({ kind: 'fetch-bundles', userId: 'bob' }), 'RATE_LIMITED');
  });

  it('exhausted one-time keys fall back to the signed last-resort key, which still starts a session; the owner is told PREKEYS_LOW', async () => {
    const r = await relay();
    const bob = await createDevice('bob', 'laptop', { oneTime: 2, pqOneTime: 1 });
    const b = await connect(r, bob);
    expectOk(await b.request({ kind: 'publish-prekeys', upload: bob.upload() }));
    const senders = await Promise.all(['s1', 's2', 's3'].map((u) => createDevice(u, 'd', { oneTime: 0, pqOneTime: 0 })));
    const bundles = [];
    for (const s of senders) {
      const c = await connect(r, s);
      const [bytes] = bundlesOf(await c.request({ kind: 'fetch-bundles', userId: 'bob' }));
      bundles.push({ s, c, bytes: bytes! });
      const low = await b.nextPush((f) => f.kind === 'prekeys-low', 5000, 'PREKEYS_LOW');
      expect(low.kind).toBe('prekeys-low');
    }
    const decoded = bundles.map((x) => decodePrekeyBundle(x.bytes));
    expect(decoded.map((x) => x.oneTimePrekey !== undefined)).toEqual([true, true, false]);
    expect(decoded.map((x) => x.pqPrekey?.kind)).toEqual([PqPrekeyKind.ONE_TIME, PqPrekeyKind.LAST_RESORT, PqPrekeyKind.LAST_RESORT]);
    for (const x of decoded) await verifyPrekeyBundle(crypto, x);
    // The last-resort bundle (no one-time keys at all) works end to end.
    const last = bundles[2]!;
    await last.s.sessions.processBundle(last.bytes);
    expectOk(await last.c.request({ kind: 'send', messages: [{ to: bob.address, frame: await last.s.sessions.encrypt(bob.address, text('via last resort')) }] }));
    const [m] = await b.delivered(1);
    expect(str((await bob.sessions.decrypt(m!.from, m!.frame)).plaintext)).toBe('via last resort');
  });

  it('an HTTP owner gets PREKEYS_LOW as the answer to its next FETCH, then its mail; replenishing clears it', async () => {
    const r = await relay();
    const bob = await createDevice('bob', 'laptop', { oneTime: 11, pqOneTime: 11 });
    const alice = await createDevice('alice', 'phone');
    const { token, authOk } = await httpAuth(r.relay.url, bob);
    expect(authOk.oneTimePrekeys).toBe(0);
    expectOk((await httpRpc(r.relay.url, { kind: 'publish-prekeys', upload: bob.upload() }, { token })).frame);
    const a = await connect(r, alice);
    bundlesOf(await a.request({ kind: 'fetch-bundles', userId: 'bob' })); // 10 left: not low
    expect((await httpRpc(r.relay.url, { kind: 'fetch', waitMs: 0, max: 10 }, { token })).frame).toEqual({ kind: 'deliver', messages: [] });
    bundlesOf(await a.request({ kind: 'fetch-bundles', userId: 'bob' })); // 9 left: low
    expect((await httpRpc(r.relay.url, { kind: 'fetch', waitMs: 0, max: 10 }, { token })).frame).toEqual({ kind: 'prekeys-low', oneTimePrekeys: 9, pqPrekeys: 9 });
    expect((await httpRpc(r.relay.url, { kind: 'fetch', waitMs: 0, max: 10 }, { token })).frame).toEqual({ kind: 'deliver', messages: [] });
    bundlesOf(await a.request({ kind: 'fetch-bundles', userId: 'bob' })); // 8 left: low again
    bob.prekeys = await bob.sessions.generatePrekeys({ oneTime: 20, pqOneTime: 20 });
    expectOk((await httpRpc(r.relay.url, { kind: 'publish-prekeys', upload: bob.upload() }, { token })).frame);
    expect((await httpRpc(r.relay.url, { kind: 'fetch', waitMs: 0, max: 10 }, { token })).frame).toEqual({ kind: 'deliver', messages: [] });
    expect((await httpAuth(r.relay.url, bob)).authOk).toMatchObject({ oneTimePrekeys: 28, pqPrekeys: 28 });
  });
});
