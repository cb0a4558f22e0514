/**
 * The privacy mode (`privacy: 'relay-only'`) with a real TURN server on loopback
 * (node-turn): the link is set up through relayed candidates only, and no description
 * either device sent or applied holds any address of the machine other than the TURN
 * server's relayed ones.
 */
import { createSocket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import Turn from 'node-turn';
import { afterEach, describe, expect, test } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import { createWebRtcTransport, sdpCandidates } from '../src/index.js';
import { MemoryHub } from './helpers/memory-hub.js';
import { descriptions, implementation, startClient, startRelay, text, type TestClient } from './helpers/stack.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  descriptions.local.length = 0;
  descriptions.remote.length = 0;
});

/** A free UDP port on loopback (bound and released; node-turn needs a number). */
async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** This machine's own addresses, loopback aside (what a host candidate would reveal). */
function ownAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((i) => i !== undefined && !i.internal)
    .map((i) => i!.address);
}

describe("privacy: 'relay-only'", () => {
  test('refused without a TURN server to relay through', () => {
    let error: unknown;
    try {
      createWebRtcTransport({ fallback: new MemoryHub().transport(), ...implementation('node-datachannel'), privacy: 'relay-only', iceServers: [{ urls: 'stun:stun.example:3478' }] });
    } catch (e) {
      error = e;
    }
    expect(isDeadboltError(error, 'INVALID_ARGUMENT') && error.details.field).toBe('iceServers');
  });

  test('refused with a TURN server that has no username or credential (a stack could then gather host candidates)', () => {
    for (const server of [{ urls: 'turn:turn.example:3478' }, { urls: 'turn:turn.example:3478', username: 'u' }, { urls: ['turns:turn.example:5349'], username: 'u', credential: '' }]) {
      let error: unknown;
      try {
        createWebRtcTransport({ fallback: new MemoryHub().transport(), ...implementation('node-datachannel'), privacy: 'relay-only', iceServers: [server] });
      } catch (e) {
        error = e;
      }
      expect(isDeadboltError(error, 'INVALID_ARGUMENT') && error.details.field, JSON.stringify(server)).toBe('iceServers');
    }
  });

  test('two devices connect through a TURN server; their descriptions carry relayed candidates only, and none of the machine’s addresses', async () => {
    const port = await freeUdpPort();
    const turn = new Turn({ authMech: 'long-term', credentials: { deadbolt: 'test-only-credential' }, listeningPort: port, listeningIps: ['127.0.0.1'], relayIps: ['127.0.0.1'], debugLevel: 'OFF' });
    turn.start();
    cleanup.push(() => turn.stop());
    const relay = await startRelay();
    cleanup.push(() => relay.close());
    const transport = {
      privacy: 'relay-only' as const,
      iceServers: [{ urls: `turn:127.0.0.1:${port}?transport=udp`, username: 'deadbolt', credential: 'test-only-credential' }],
    };
    const alice: TestClient = await startClient(relay, 'alice', 'laptop', { transport });
    cleanup.push(() => alice.close());
    const bob: TestClient = await startClient(relay, 'bob', 'phone', { transport });
    cleanup.push(() => bob.close());

    await alice.client.send('bob', 'hello');
    await bob.client.send('alice', 'hello back'); // a conversation both ways: offers are answered
    await alice.waitPath(bob.address, 'direct');
    await bob.waitPath(alice.address, 'direct');
    const before = relay.enqueued.length;
    const id = (await alice.client.send('bob', 'through the TURN server')).id;
    await bob.until(() => bob.received.some((m) => m.id === id), 'the message');
    expect(relay.enqueued.length - before, 'stored by the Deadbolt relay').toBe(0);
    expect(bob.received.map(text)).toEqual(['hello', 'through the TURN server']);

    const all = [...descriptions.local, ...descriptions.remote];
    expect(descriptions.remote.length).toBeGreaterThanOrEqual(2);
    const candidates = descriptions.remote.flatMap(sdpCandidates);
    expect(candidates.length).toBeGreaterThan(0);
    for (const c of candidates) {
      expect(c, 'a candidate another device received').toMatch(/ typ relay raddr 0\.0\.0\.0 rport 0/);
    }
    for (const sdp of descriptions.remote) {
      expect(sdp).toContain('c=IN IP4 0.0.0.0');
      expect(sdp).toMatch(/^m=application 9 /m);
    }
    // Not only what was sent: the local stacks gathered nothing but relayed candidates.
    for (const c of descriptions.local.flatMap(sdpCandidates)) expect(c).toMatch(/ typ relay /);
    const mine = ownAddresses();
    expect(mine.length, 'this machine has a non-loopback address to leak').toBeGreaterThan(0);
    for (const address of mine) {
      for (const sdp of descriptions.remote) expect(sdp.includes(address), `${address} in a description a peer received`).toBe(false);
    }
    expect(all.length).toBeGreaterThan(0);
  });
});
