/**
 * The client API over the real relay and real transports (issue 4: "The client").
 */
import { afterEach, describe, expect, test } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import { createClient } from '@deadbolt/core';
import type { Relay } from '@deadbolt/relay';
import { makeTransport, startClient, startRelay, text, type TestClient, type TransportKind } from './stack.js';

let relay: Relay | undefined;
const clients: TestClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c.client.close();
  await relay?.close();
  relay = undefined;
});

async function pair(a: TransportKind, b: TransportKind): Promise<[TestClient, TestClient]> {
  relay = await startRelay();
  const alice = await startClient(a, relay, 'alice', 'phone');
  const bob = await startClient(b, relay, 'bob', 'laptop');
  clients.push(alice, bob);
  return [alice, bob];
}

describe('1:1 messaging through the relay', () => {
  test.each<[TransportKind, TransportKind]>([
    ['websocket', 'http-polling'],
    ['http-polling', 'websocket'],
    ['websocket', 'websocket'],
  ])('%s <-> %s: messages, history and conversations', async (a, b) => {
    const [alice, bob] = await pair(a, b);
    await alice.client.send('bob', 'hello bob');
    await bob.waitForMessages(1);
    expect(text(bob.received[0]!)).toBe('hello bob');
    expect(bob.received[0]!.sender).toEqual(alice.client.address);
    await bob.client.send('alice', 'hello alice');
    await bob.client.send('alice', 'second');
    await alice.waitForMessages(2);
    expect(alice.received.map(text)).toEqual(['hello alice', 'second']);
    const history = await alice.client.history('bob');
    expect(history.map((m) => [m.direction, text(m)])).toEqual([
      ['outgoing', 'hello bob'],
      ['incoming', 'hello alice'],
      ['incoming', 'second'],
    ]);
    expect(history[0]!.status).toBe('sent');
    expect((await alice.client.conversations()).map((c) => c.userId)).toEqual(['bob']);
  });

  test('safety numbers match on both sides and verification marks the contact', async () => {
    const [alice, bob] = await pair('websocket', 'websocket');
    await alice.client.send('bob', 'hi');
    await bob.waitForMessages(1);
    const a = await alice.client.safetyNumber('bob');
    const b = await bob.client.safetyNumber('alice');
    expect(a.digits).toBe(b.digits);
    expect(await alice.client.verifySafetyNumber('bob', '0'.repeat(60))).toBe(false);
    expect(await alice.client.verifySafetyNumber('bob', b.qr)).toBe(true);
    expect((await alice.client.sessions.trust('bob'))?.verified).toBe(true);
  });

  test('typed errors a caller can act on: unknown user, not started, closed', async () => {
    const [alice] = await pair('websocket', 'http-polling');
    await expect(alice.client.send('nobody', 'x')).rejects.toSatisfy((e) => isDeadboltError(e, 'UNKNOWN_USER'));
    const idle = await createClient({ userId: 'carol', deviceId: 'x', storage: { adapter: 'memory' }, transport: makeTransport('websocket', relay!), loadModule: (name) => import(name) });
    await expect(idle.send('bob', 'x')).rejects.toSatisfy((e) => isDeadboltError(e, 'NOT_INITIALIZED'));
    await idle.close();
    await alice.client.close();
    await expect(alice.client.send('bob', 'x')).rejects.toSatisfy((e) => isDeadboltError(e, 'CLOSED'));
    clients.shift();
  });

  test('an identity change is surfaced and blocks sending until accepted with the key shown', async () => {
    // A relay whose product login re-verifies Bob when he re-installs (a token it issued).
    relay = await startRelay({ verifyRegistration: async (_user, _key, token) => token === 'product-login-ok' });
    const alice = await startClient('websocket', relay, 'alice', 'phone', undefined, 'product-login-ok');
    const bob = await startClient('http-polling', relay, 'bob', 'laptop', undefined, 'product-login-ok');
    clients.push(alice, bob);
    await alice.client.send('bob', 'before');
    await bob.waitForMessages(1);
    // Bob re-installs: new account key, same address.
    await bob.client.close();
    clients.pop();
    const newBob = await startClient('http-polling', relay, 'bob', 'laptop', undefined, 'product-login-ok');
    clients.push(newBob);
    const changes: { userId: string; accountKey: Uint8Array }[] = [];
    alice.client.on('identity-changed', (c) => changes.push(c));
    await newBob.client.send('alice', 'new phone, same bob');
    await alice.waitForMessages(1);
    expect(text(alice.received[0]!)).toBe('new phone, same bob');
    expect(changes).toHaveLength(1);
    await expect(alice.client.send('bob', 'x')).rejects.toSatisfy((e) => isDeadboltError(e, 'UNTRUSTED_IDENTITY'));
    // The user compares the new safety number, then accepts the key they were shown.
    expect((await alice.client.pendingSafetyNumber('bob')).digits).toBe((await newBob.client.safetyNumber('alice')).digits);
    await alice.client.acceptIdentity('bob', changes[0]!.accountKey);
    await alice.client.send('bob', 'welcome back');
    await newBob.waitForMessages(1);
    expect(text(newBob.received[0]!)).toBe('welcome back');
  });

  test('adapters named by configuration', async () => {
    relay = await startRelay();
    const bob = await startClient('websocket', relay, 'bob', 'laptop');
    clients.push(bob);
    const configured = await createClient({
      userId: 'alice',
      deviceId: 'cli',
      storage: { adapter: 'memory' },
      transport: { adapter: 'http-polling', options: { url: relay.url } },
      loadModule: (name) => import(name),
    });
    await configured.start();
    // The transport the configuration named is reachable, and it is the one in use.
    expect(configured.transport.state).toBe('connected');
    await configured.send('bob', 'configured by name');
    await bob.waitForMessages(1);
    expect(text(bob.received[0]!)).toBe('configured by name');
    await configured.close();
    await expect(createClient({ userId: 'a', deviceId: 'b', storage: { adapter: 'no-such-adapter' }, transport: { adapter: 'websocket' }, loadModule: (name) => import(name) })).rejects.toSatisfy((e) =>
      isDeadboltError(e, 'INVALID_ARGUMENT'),
    );
  });
});
