/**
 * Authentication (docs/relay-protocol.md §2), registration rules, and SECURITY.md F41:
 * foreign origins are refused before the upgrade; authentication is a signature over a
 * single-use challenge, never a cookie.
 */
import { describe, expect, it } from 'vitest';
import { decodeDeviceCertificate } from '@deadbolt/core';
import { RELAY_LIMITS } from '@deadbolt/spec';
import { createDevice, createSiblingDevice, type TestDevice } from '../helpers/devices.js';
import { connectWs, expectError, httpAuth, httpHello, httpRpc, WsClient } from '../helpers/clients.js';
import { useScenario } from '../helpers/scenario.js';

// The tests here open their sockets themselves (WsClient.connect): closing the relay closes them.
const { relay } = useScenario();

async function authFrame(device: TestDevice, challenge: Uint8Array, relayId = 'deadbolt-relay', token = '') {
  return { kind: 'auth' as const, certificate: device.certificate, challenge, signature: await device.sign(relayId, challenge), token };
}

describe('authentication', () => {
  it('HELLO carries the relay id, a fresh 32-byte challenge, the time and the largest message; AUTH_OK the prekey counts', async () => {
    const r = await relay({ relayId: 'relay.test' });
    const alice = await createDevice('alice', 'phone', { oneTime: 4, pqOneTime: 2 });
    const a = await WsClient.connect(r.relay.wsUrl);
    const b = await WsClient.connect(r.relay.wsUrl);
    expect(a.hello.relayId).toBe('relay.test');
    expect(a.hello.challenge).toHaveLength(32);
    expect(Buffer.from(a.hello.challenge).equals(Buffer.from(b.hello.challenge))).toBe(false);
    expect(Math.abs(a.hello.serverTime - Date.now())).toBeLessThan(60_000);
    expect(a.hello.maxMessage).toBe(RELAY_LIMITS.maxMessage);
    const ok = await a.request(await authFrame(alice, a.hello.challenge, 'relay.test'));
    expect(ok).toEqual({ kind: 'auth-ok', sessionToken: '', oneTimePrekeys: 0, pqPrekeys: 0 });
    expect(await a.request({ kind: 'publish-prekeys', upload: alice.upload() })).toEqual({ kind: 'ok' });
    const http = await httpAuth(r.relay.url, alice);
    expect(http.authOk.oneTimePrekeys).toBe(4);
    expect(http.authOk.pqPrekeys).toBe(2);
    expect(http.token.length).toBeGreaterThanOrEqual(32);
    await Promise.all([a.close(), b.close()]);
  });

  it('a signature for another relay id, by another key, or over another challenge is refused and nothing is stored', async () => {
    const r = await relay({ relayId: 'relay.test' });
    const alice = await createDevice('alice', 'phone');
    const mallory = await createDevice('mallory', 'phone');

    const c1 = await WsClient.connect(r.relay.wsUrl);
    expectError(await c1.request(await authFrame(alice, c1.hello.challenge, 'other-relay')), 'UNAUTHENTICATED');
    expect((await c1.closed).code).toBe(1008);

    const c2 = await WsClient.connect(r.relay.wsUrl);
    const forged = { ...(await authFrame(alice, c2.hello.challenge, 'relay.test')), signature: await mallory.sign('relay.test', c2.hello.challenge) };
    expectError(await c2.request(forged), 'UNAUTHENTICATED');

    const c3 = await WsClient.connect(r.relay.wsUrl);
    const other = new Uint8Array(32).fill(7);
    expectError(await c3.request({ ...(await authFrame(alice, other, 'relay.test')), challenge: c3.hello.challenge }), 'UNAUTHENTICATED');

    expect(await r.store.getAccountKey('alice')).toBeUndefined();
    expect(await r.store.getDevice(alice.address)).toBeUndefined();
    expect(r.logs.filter((l) => l.event === 'auth-failed').map((l) => l.fields.reason)).toEqual([
      'challenge-signature',
      'challenge-signature',
      'challenge-signature',
    ]);
  });

  it('a certificate not signed by its account key is BAD_SIGNATURE; an undecodable one UNAUTHENTICATED', async () => {
    const r = await relay();
    const alice = await createDevice('alice', 'phone');
    const c = await WsClient.connect(r.relay.wsUrl);
    const tampered = alice.certificate.slice();
    tampered[tampered.length - 70]! ^= 1; // inside the signed body (the identity key)
    const forged = { ...(await authFrame(alice, c.hello.challenge)), certificate: tampered };
    expectError(await c.request(forged), 'BAD_SIGNATURE');
    const c2 = await WsClient.connect(r.relay.wsUrl);
    expectError(await c2.request({ ...(await authFrame(alice, c2.hello.challenge)), certificate: alice.certificate.subarray(1) }), 'UNAUTHENTICATED');
    expect(await r.store.getDevice(alice.address)).toBeUndefined();
  });

  it('a challenge is single-use, expires after 60 s, and a WebSocket accepts only its own', async () => {
    const r = await relay();
    const alice = await createDevice('alice', 'phone');
    // HTTP: used once.
    const hello = await httpHello(r.relay.url);
    const first = await httpRpc(r.relay.url, await authFrame(alice, hello.challenge));
    expect(first.frame?.kind).toBe('auth-ok');
    expectError((await httpRpc(r.relay.url, await authFrame(alice, hello.challenge))).frame, 'UNAUTHENTICATED');
    // HTTP: expired.
    const old = await httpHello(r.relay.url);
    r.clock.advance(61_000);
    expectError((await httpRpc(r.relay.url, await authFrame(alice, old.challenge))).frame, 'UNAUTHENTICATED');
    // A challenge issued over HTTP (or to another socket) does not authenticate a WebSocket.
    const fresh = await httpHello(r.relay.url);
    const ws = await WsClient.connect(r.relay.wsUrl);
    expectError(await ws.request(await authFrame(alice, fresh.challenge)), 'UNAUTHENTICATED');
    const ws2 = await WsClient.connect(r.relay.wsUrl);
    r.clock.advance(61_000);
    expectError(await ws2.request(await authFrame(alice, ws2.hello.challenge)), 'UNAUTHENTICATED');
  });

  it('nothing but AUTH is answered before authentication', async () => {
    const r = await relay();
    const c = await WsClient.connect(r.relay.wsUrl);
    expectError(await c.request({ kind: 'fetch', waitMs: 0, max: 10 }), 'UNAUTHENTICATED');
    expectError(await c.request({ kind: 'ack', ids: ['x'] }), 'UNAUTHENTICATED');
    expectError(await c.request({ kind: 'fetch-bundles', userId: 'bob' }), 'UNAUTHENTICATED');
    for (const frame of [{ kind: 'fetch', waitMs: 0, max: 10 }, { kind: 'ack', ids: ['x'] }] as const) {
      const res = await httpRpc(r.relay.url, frame);
      expect(res.status).toBe(401);
      expectError(res.frame, 'UNAUTHENTICATED');
    }
    await c.close();
  });

  it('HTTP: a missing, unknown or idle-expired bearer token is 401; cookies are never credentials', async () => {
    const r = await relay();
    const alice = await createDevice('alice', 'phone');
    const { token } = await httpAuth(r.relay.url, alice);
    expect((await httpRpc(r.relay.url, { kind: 'fetch', waitMs: 0, max: 1 }, { token })).status).toBe(200);
    expect((await httpRpc(r.relay.url, { kind: 'fetch', waitMs: 0, max: 1 }, { token: 'A'.repeat(43) })).status).toBe(401);
    expect((await httpRpc(r.relay.url, { kind: 'fetch', waitMs: 0, max: 1 }, { headers: { Cookie: `session=${token}` } })).status).toBe(401);
    expect((await httpRpc(r.relay.url, { kind: 'fetch', waitMs: 0, max: 1 }, { headers: { Authorization: `Basic ${token}` } })).status).toBe(401);
    r.clock.advance(9 * 60_000);
    expect((await httpRpc(r.relay.url, { kind: 'fetch', waitMs: 0, max: 1 }, { token })).status).toBe(200); // use refreshes it
    r.clock.advance(10 * 60_000 + 1000);
    const expired = await httpRpc(r.relay.url, { kind: 'fetch', waitMs: 0, max: 1 }, { token });
    expect(expired.status).toBe(401);
    expectError(expired.frame, 'UNAUTHENTICATED');
  });
});

describe('SECURITY.md F41: origins', () => {
  it('a WebSocket upgrade from a foreign Origin is refused with 403 before the upgrade; allowed and absent origins connect', async () => {
    const r = await relay({ allowedOrigins: ['https://app.example'] });
    const alice = await createDevice('alice', 'phone');
    await expect(WsClient.connect(r.relay.wsUrl, { origin: 'https://evil.example', headers: { Cookie: 'session=stolen' } })).rejects.toMatchObject({ status: 403 });
    await expect(WsClient.connect(r.relay.wsUrl, { origin: 'https://app.example.evil.example' })).rejects.toMatchObject({ status: 403 });
    await expect(WsClient.connect(r.relay.wsUrl, { origin: 'null' })).rejects.toMatchObject({ status: 403 });
    const allowed = await connectWs(r.relay.wsUrl, alice, { origin: 'https://app.example' });
    const native = await connectWs(r.relay.wsUrl, alice);
    expect(allowed.authOk.kind).toBe('auth-ok');
    expect(native.authOk.kind).toBe('auth-ok');
    expect(r.logs.filter((l) => l.event === 'upgrade-refused' && l.fields.reason === 'origin')).toHaveLength(3);
    await Promise.all([allowed.client.close(), native.client.close()]);
  });

  it('without allowed origins every browser origin is refused; HTTP requests from foreign origins are 403', async () => {
    const r = await relay();
    await expect(WsClient.connect(r.relay.wsUrl, { origin: 'http://127.0.0.1:1' })).rejects.toMatchObject({ status: 403 });
    const res = await httpRpc(r.relay.url, { kind: 'fetch', waitMs: 0, max: 1 }, { headers: { Origin: 'https://evil.example' } });
    expect(res.status).toBe(403);
    expect((await fetch(`${r.relay.url}/v1/hello`, { headers: { Origin: 'https://evil.example' } })).status).toBe(403);
  });

  it('an allowed origin gets CORS headers and a preflight answer, never credentials', async () => {
    const r = await relay({ allowedOrigins: ['https://app.example'] });
    const pre = await fetch(`${r.relay.url}/v1/rpc`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(pre.headers.get('access-control-allow-headers')).toContain('authorization');
    expect(pre.headers.get('access-control-allow-credentials')).toBeNull();
    const hello = await fetch(`${r.relay.url}/v1/hello`, { headers: { Origin: 'https://app.example' } });
    expect(hello.status).toBe(200);
    expect(hello.headers.get('access-control-allow-origin')).toBe('https://app.example');
  });
});

describe('registration rules', () => {
  it('development mode: logged loudly; first use pins the account key; a different key for the user id is refused', async () => {
    const r = await relay();
    expect(r.logs.some((l) => l.level === 'warn' && l.event === 'development-mode')).toBe(true);
    const alice = await createDevice('alice', 'phone');
    const impostor = await createDevice('alice', 'laptop'); // same user id, another account key
    const { client } = await connectWs(r.relay.wsUrl, alice);
    const c = await WsClient.connect(r.relay.wsUrl);
    expectError(await c.request(await authFrame(impostor, c.hello.challenge)), 'UNAUTHENTICATED');
    expect(await r.store.getDevice(impostor.address)).toBeUndefined();
    expect(Buffer.from((await r.store.getAccountKey('alice'))!).equals(Buffer.from(decodeDeviceCertificate(alice.certificate).accountKey))).toBe(true);
    // A sibling device certified by the pinned account key registers on its first AUTH.
    const sibling = await createSiblingDevice(alice, 'tablet');
    const s = await connectWs(r.relay.wsUrl, sibling);
    expect((await r.store.listDevices('alice')).map((d) => d.deviceId)).toEqual(['phone', 'tablet']);
    await Promise.all([client.close(), s.client.close()]);
  });

  it('with a hook: the first key and any change need the hook to accept the token; a change revokes the old devices', async () => {
    const calls: { userId: string; token: string }[] = [];
    const r = await relay({
      verifyRegistration: async (userId, _key, token) => {
        calls.push({ userId, token });
        return token === `ok:${userId}`;
      },
    });
    expect(r.logs.some((l) => l.event === 'development-mode')).toBe(false);
    const alice = await createDevice('alice', 'phone');
    await expect(connectWs(r.relay.wsUrl, alice, { token: 'wrong' })).rejects.toThrow(/UNAUTHENTICATED/);
    expect(await r.store.getAccountKey('alice')).toBeUndefined();
    const first = await connectWs(r.relay.wsUrl, alice, { token: 'ok:alice' });
    // Already pinned: the hook is not asked again, no token needed.
    const again = await connectWs(r.relay.wsUrl, alice);
    expect(calls).toEqual([
      { userId: 'alice', token: 'wrong' },
      { userId: 'alice', token: 'ok:alice' },
    ]);
    const { token: httpToken } = await httpAuth(r.relay.url, alice);

    // A re-registration (new account key) is refused without the hook's consent...
    const reinstalled = await createDevice('alice', 'new-phone');
    await expect(connectWs(r.relay.wsUrl, reinstalled, { token: 'nope' })).rejects.toThrow(/UNAUTHENTICATED/);
    expect((await r.store.listDevices('alice')).map((d) => d.deviceId)).toEqual(['phone']);
    // ...and with it, the key is replaced and every old device and session is revoked.
    const fresh = await connectWs(r.relay.wsUrl, reinstalled, { token: 'ok:alice' });
    expect((await first.client.closed).code).toBe(4003);
    expect((await again.client.closed).code).toBe(4003);
    expect((await r.store.listDevices('alice')).map((d) => d.deviceId)).toEqual(['new-phone']);
    expect((await httpRpc(r.relay.url, { kind: 'fetch', waitMs: 0, max: 1 }, { token: httpToken })).status).toBe(401);
    await expect(connectWs(r.relay.wsUrl, alice)).rejects.toThrow(/UNAUTHENTICATED/);
    await fresh.client.close();
  });

  it('a hook that throws fails closed', async () => {
    const r = await relay({
      verifyRegistration: async () => {
        throw new Error('login service down');
      },
    });
    const alice = await createDevice('alice', 'phone');
    await expect(connectWs(r.relay.wsUrl, alice, { token: 't' })).rejects.toThrow(/INTERNAL/);
    expect(await r.store.getAccountKey('alice')).toBeUndefined();
    expect(r.logs.some((l) => l.event === 'registration-hook-failed')).toBe(true);
  });
});
