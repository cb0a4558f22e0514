/**
 * Limits and floods. SECURITY.md E34 (frame size bounded; oversize frames rejected before
 * any crypto work), F39 (messages per (sender, recipient user): 60, then one per second),
 * F42 (frames, mailboxes and bytes per sender bounded; a flood gets a clear answer —
 * RATE_LIMITED, MAILBOX_FULL, TOO_LARGE — never a crash or memory growth).
 */
import { request as httpRequest } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { createNodeCryptoProvider, type CryptoProvider } from '@deadbolt/core';
import { encodeRelayFrame, RELAY_LIMITS, type RelayFrame } from '@deadbolt/spec';
import { patternBytes } from '@deadbolt/test-kit';
import { createDevice, createSiblingDevice, type TestDevice } from '../helpers/devices.js';
import { expectError, expectOk, httpAuth, httpHello, httpRpc, WsClient } from '../helpers/clients.js';
import { useScenario } from '../helpers/scenario.js';

const { relay, connect, socket, track } = useScenario();

/** A crypto provider that counts every signature verification. */
function countingCrypto(): { crypto: CryptoProvider; verifies: () => number } {
  const inner = createNodeCryptoProvider();
  let n = 0;
  const crypto: CryptoProvider = {
    ...inner,
    ed25519Verify: (...args) => {
      n++;
      return inner.ed25519Verify(...args);
    },
  };
  return { crypto, verifies: () => n };
}

const send = (to: TestDevice, frame: Uint8Array): RelayFrame => ({ kind: 'send', messages: [{ to: to.address, frame }] });

describe('SECURITY.md E34: oversize frames are rejected before any crypto work', () => {
  it('a WebSocket frame over 2 MiB closes the socket (1009) unread; nothing is verified', async () => {
    const counter = countingCrypto();
    const r = await relay({ crypto: counter.crypto });
    const alice = await createDevice('alice', 'phone');
    const a = await connect(r, alice);
    const before = counter.verifies();
    a.sendRaw(new Uint8Array(RELAY_LIMITS.maxFrame + 1));
    expect((await a.closed).code).toBe(1009);
    // Unauthenticated too: an oversize AUTH is never decoded.
    const c = await WsClient.connect(r.relay.wsUrl);
    const huge = encodeRelayFrame(1, { kind: 'publish-prekeys', upload: new Uint8Array(RELAY_LIMITS.maxFrame) });
    c.sendRaw(huge);
    expect((await c.closed).code).toBe(1009);
    expect(counter.verifies()).toBe(before);
    expect((await fetch(`${r.relay.url}/v1/health`)).status).toBe(200);
  });

  it('HTTP: a body declared over 2 MiB is refused with 413 before it is sent; a streamed one as soon as it passes', async () => {
    const r = await relay();
    const url = new URL(`${r.relay.url}/v1/rpc`);
    // Declared: the relay answers before a single body byte is written.
    const declared = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(url, { method: 'POST', headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(3 * 1024 * 1024) } });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', (e) => (e.message.includes('socket hang up') ? undefined : reject(e)));
      req.flushHeaders();
    });
    expect(declared).toBe(413);
    // Streamed (chunked, no length): cut off once it passes the limit. The relay answers
    // 413 and closes; a client still writing may see the connection reset before it
    // reads that answer (a race between the two directions), which is the same cut-off,
    // provided it came only after more than the limit was sent.
    const LIMIT = 2 * 1024 * 1024;
    const streamed = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(url, { method: 'POST', headers: { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' } });
      let written = 0;
      req.on('response', (res) => {
        res.resume();
        resolve(`status ${res.statusCode ?? 0}`);
        req.destroy();
      });
      req.on('error', () => resolve(written > LIMIT ? 'reset after the limit' : `reset after only ${written} bytes`));
      const chunk = new Uint8Array(256 * 1024);
      const pump = () => {
        while (!req.destroyed && req.write(chunk)) written += chunk.length;
        if (!req.destroyed) req.once('drain', pump);
      };
      pump();
      setTimeout(() => reject(new Error('no 413 answer and no reset')), 20_000).unref();
    });
    expect(['status 413', 'reset after the limit']).toContain(streamed);
  }, 30_000);

  it('an over-long certificate or upload is refused by the codec with no signature checked; a message over the limit is TOO_LARGE', async () => {
    const counter = countingCrypto();
    const r = await relay({ crypto: counter.crypto, limits: { maxMessage: 1024, maxAck: 10 } });
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    await httpAuth(r.relay.url, bob);
    const hello = await httpHello(r.relay.url);
    const base = counter.verifies();
    const bigCert = { kind: 'auth' as const, certificate: new Uint8Array(600), signature: new Uint8Array(64), challenge: hello.challenge, token: '' };
    const res = await httpRpc(r.relay.url, encodeRelayFrame(9, bigCert));
    expect(res.status).toBe(400);
    expect(res.requestId).toBe(9);
    expectError(res.frame, 'BAD_REQUEST');
    expect(counter.verifies()).toBe(base);

    const a = await connect(r, alice);
    const afterAuth = counter.verifies();
    // Larger than any valid upload (1,000 one-time + 200 PQ keys), smaller than a frame.
    expectError(await a.request({ kind: 'publish-prekeys', upload: new Uint8Array(300_000) }), 'BAD_REQUEST');
    expect(counter.verifies()).toBe(afterAuth);

    expect((await a.request({ kind: 'hello', relayId: 'x', challenge: new Uint8Array(32), serverTime: 0, maxMessage: 0 })).kind).toBe('error');
    expectError(await a.request(send(bob, new Uint8Array(1025))), 'TOO_LARGE');
    expectOk(await a.request(send(bob, new Uint8Array(1024))));
    expect((await r.store.stats(bob.address)).messages).toBe(1);
    expectError(await a.request({ kind: 'ack', ids: Array.from({ length: 11 }, (_, i) => `id${i}`) }), 'TOO_LARGE');
    // Undecodable frames get BAD_REQUEST with their request id; the socket stays usable.
    a.sendRaw(Uint8Array.of(1, 0x10, 0, 0, 0, 42, 0xff));
    expectError(await a.nextPush((f) => f.kind === 'error', 5000, 'the BAD_REQUEST answer'), 'BAD_REQUEST');
    expectOk(await a.request(send(bob, new Uint8Array(10))));
  });
});

describe('SECURITY.md F39: sending is rate limited per (sender, recipient user)', () => {
  it('60 messages, then one per second; other pairs are unaffected; one SEND to several devices of a user costs one', async () => {
    const r = await relay();
    const alice = await createDevice('alice', 'phone');
    const bob = await createDevice('bob', 'laptop');
    const bobPhone = await createSiblingDevice(bob, 'phone');
    const carol = await createDevice('carol', 'desk');
    for (const d of [bob, bobPhone, carol]) await httpAuth(r.relay.url, d);
    const a = await connect(r, alice);
    for (let i = 0; i < 60; i++) {
      expectOk(await a.request({ kind: 'send', messages: [{ to: bob.address, frame: patternBytes(8, i) }, { to: bobPhone.address, frame: patternBytes(8, i) }] }));
    }
    const limited = expectError(await a.request(send(bob, patternBytes(8, 60))), 'RATE_LIMITED');
    expect(limited.retryAfterMs).toBeGreaterThan(0);
    expect(limited.retryAfterMs).toBeLessThanOrEqual(1000);
    expect((await r.store.stats(bob.address)).messages).toBe(60);
    // A refused SEND to two users stores nothing, not even for the user with budget left.
    expectError(await a.request({ kind: 'send', messages: [{ to: carol.address, frame: patternBytes(8, 1) }, { to: bob.address, frame: patternBytes(8, 1) }] }), 'RATE_LIMITED');
    expect((await r.store.stats(carol.address)).messages).toBe(0);
    expectOk(await a.request(send(carol, patternBytes(8, 1))));
    const { token: ct } = await httpAuth(r.relay.url, carol);
    expectOk((await httpRpc(r.relay.url, send(bob, patternBytes(8, 2)), { token: ct })).frame);
    // Over HTTP the limited pair gets 429.
    const { token: at } = await httpAuth(r.relay.url, alice);
    const http = await httpRpc(r.relay.url, send(bob, patternBytes(8, 3)), { token: at });
    expect(http.status).toBe(429);
    expect(http.headers.get('retry-after')).toBe('1');
    r.clock.advance(1000);
    expectOk(await a.request(send(bob, patternBytes(8, 4))));
    expectError(await a.request(send(bob, patternBytes(8, 5))), 'RATE_LIMITED');
  });
});

describe('SECURITY.md F42: mailboxes, bytes and frames per sender are bounded', () => {
  const generous = { messages: { burst: 100_000, refill: 1000, intervalMs: 1000 } };

  it('a full mailbox answers MAILBOX_FULL; a sender may keep only its quota queued in one mailbox', async () => {
    const r = await relay({ sqlite: true, limits: { ...generous, mailboxMessages: 30, senderQueuedPerMailbox: 20, mailboxBytes: 64 * 1024 } });
    const alice = await createDevice('alice', 'phone');
    const carol = await createDevice('carol', 'desk');
    const dave = await createDevice('dave', 'desk');
    const bob = await createDevice('bob', 'laptop');
    await httpAuth(r.relay.url, bob);
    const a = await connect(r, alice);
    const c = await connect(r, carol);
    const d = await connect(r, dave);
    for (let i = 0; i < 20; i++) expectOk(await a.request(send(bob, patternBytes(100, i))));
    expectError(await a.request(send(bob, patternBytes(100, 20))), 'MAILBOX_FULL'); // alice's share
    for (let i = 0; i < 10; i++) expectOk(await c.request(send(bob, patternBytes(100, i))));
    expectError(await d.request(send(bob, patternBytes(100, 0))), 'MAILBOX_FULL'); // mailbox count
    expect(await r.store.stats(bob.address)).toEqual({ messages: 30, bytes: 3000 });
    // Bytes: a fresh mailbox of 64 KiB takes one 60 KiB message, not two.
    const erin = await createDevice('erin', 'x');
    await httpAuth(r.relay.url, erin);
    expectOk(await d.request(send(erin, new Uint8Array(60 * 1024))));
    expectError(await d.request(send(erin, new Uint8Array(8 * 1024))), 'MAILBOX_FULL');
    // Acknowledging frees the quota.
    const b = await connect(r, bob);
    const got = await b.delivered(30);
    expectOk(await b.request({ kind: 'ack', ids: got.map((m) => m.id) }));
    expectOk(await d.request(send(bob, patternBytes(100, 0))));
  });

  it("a sender's bytes across all recipients are budgeted; a device's request rate is bounded", async () => {
    const r = await relay({
      limits: { ...generous, sendBytes: { burst: 100_000, refill: 1000, intervalMs: 1000 }, requests: { burst: 30, refill: 1, intervalMs: 1000 } },
    });
    const alice = await createDevice('alice', 'phone');
    const users = await Promise.all(['u1', 'u2'].map((u) => createDevice(u, 'd')));
    for (const u of users) await httpAuth(r.relay.url, u);
    const a = await connect(r, alice);
    expectOk(await a.request(send(users[0]!, new Uint8Array(60_000))));
    expectError(await a.request(send(users[1]!, new Uint8Array(60_000))), 'RATE_LIMITED');
    // A burst of requests: the excess is refused cleanly, the socket stays open.
    const answers = await Promise.all(Array.from({ length: 60 }, () => a.request({ kind: 'fetch', waitMs: 0, max: 1 })));
    const refused = answers.filter((x) => x.kind === 'error' && x.code === 'RATE_LIMITED');
    expect(refused.length).toBeGreaterThanOrEqual(30);
    expect(answers.filter((x) => x.kind === 'deliver').length).toBeGreaterThan(0);
    expect(a.isOpen).toBe(true);
  });

  it('connections are capped: a fifth per device displaces the oldest; unauthenticated sockets are capped', async () => {
    const r = await relay({ limits: { maxUnauthenticatedConnections: 3 } });
    const alice = await createDevice('alice', 'phone');
    const conns = [];
    for (let i = 0; i < 4; i++) conns.push(await connect(r, alice));
    const fifth = await connect(r, alice);
    expect((await conns[0]!.closed).code).toBe(4001);
    expect(conns.slice(1).every((c) => c.isOpen) && fifth.isOpen).toBe(true);
    const idle = [];
    for (let i = 0; i < 3; i++) {
      idle.push(await socket(r));
    }
    await expect(WsClient.connect(r.relay.wsUrl)).rejects.toMatchObject({ status: 503 });
    await idle[0]!.close();
    // The relay noticed the close once a new upgrade is accepted again.
    for (;;) {
      const c = await WsClient.connect(r.relay.wsUrl).catch(() => undefined);
      if (c) {
        track(c);
        break;
      }
    }
  });

  it('outstanding challenges are bounded: the oldest are forgotten first', async () => {
    const r = await relay({ limits: { maxPendingChallenges: 10 } });
    const alice = await createDevice('alice', 'phone');
    const hellos = [];
    for (let i = 0; i < 11; i++) hellos.push(await httpHello(r.relay.url));
    const auth = async (c: Uint8Array) =>
      httpRpc(r.relay.url, { kind: 'auth', certificate: alice.certificate, challenge: c, signature: await alice.sign('deadbolt-relay', c), token: '' });
    expectError((await auth(hellos[0]!.challenge)).frame, 'UNAUTHENTICATED');
    expect((await auth(hellos[10]!.challenge)).frame?.kind).toBe('auth-ok');
  });

  it('a flood of large sends, fresh rate-limit keys, garbage and challenges gets clear answers and the heap stays flat', { timeout: 60_000 }, async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const r = await relay({
      limits: {
        ...generous,
        sendBytes: { burst: 1024 * 1024 * 1024, refill: 1024 * 1024 * 1024, intervalMs: 1000 },
        requests: { burst: 1_000_000, refill: 1_000_000, intervalMs: 1000 },
        authAttempts: { burst: 1_000_000, refill: 1_000_000, intervalMs: 1000 },
        mailboxBytes: 1024 * 1024,
        rateLimiterEntries: 1000,
        maxPendingChallenges: 200,
      },
    });
    const attacker = await createDevice('attacker', 'x');
    const victim = await createDevice('victim', 'y');
    await httpAuth(r.relay.url, victim);
    const a = await connect(r, attacker);
    const codes = new Map<string, number>();
    const count = (f: RelayFrame | undefined) => {
      const k = f?.kind === 'error' ? f.code : (f?.kind ?? 'none');
      codes.set(k, (codes.get(k) ?? 0) + 1);
    };
    const big = new Uint8Array(64 * 1024);
    const heap: number[] = [];
    let user = 0;
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 200; i += 20) {
        (await Promise.all(Array.from({ length: 20 }, () => a.request(send(victim, big))))).forEach(count);
      }
      for (let i = 0; i < 1500; i += 100) {
        (await Promise.all(Array.from({ length: 100 }, () => a.request({ kind: 'fetch-bundles', userId: `u${user++}` })))).forEach(count);
      }
      for (let i = 0; i < 100; i++) a.sendRaw(patternBytes(50, i));
      for (let i = 0; i < 300; i += 50) await Promise.all(Array.from({ length: 50 }, () => httpHello(r.relay.url)));
      expectOk(await a.request({ kind: 'ack', ids: ['nothing'] })); // every earlier frame was handled
      gc();
      heap.push(process.memoryUsage().heapUsed);
    }
    // 5 rounds pushed 64 MB of frames, 7,500 fresh limiter keys and 1,500 challenges.
    const growth = heap.at(-1)! - heap[1]!;
    expect(growth, `heap after each round: ${heap.map((h) => (h / 1e6).toFixed(1)).join(', ')} MB`).toBeLessThan(12 * 1024 * 1024);
    expect(codes.get('MAILBOX_FULL')).toBeGreaterThan(900);
    expect(codes.get('RATE_LIMITED')).toBeGreaterThan(1000);
    expect(codes.get('UNKNOWN_USER')).toBeGreaterThan(0);
    expect((await r.store.stats(victim.address)).bytes).toBeLessThanOrEqual(1024 * 1024);
    expect(a.isOpen).toBe(true);
    // The relay still serves everyone else.
    expect((await fetch(`${r.relay.url}/v1/health`)).status).toBe(200);
    const v = await connect(r, victim);
    expect((await v.delivered(16)).length).toBe(16);
  });
});
