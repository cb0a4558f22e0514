/**
 * What the `privacy: 'relay-only'` tests (Node and Chromium) share: a real TURN server on
 * loopback (node-turn, long-term credentials) for the peer connections to relay through,
 * this machine's own addresses, which no description a peer receives may contain, and
 * UDP sockets on loopback addresses (a peer, a probe for a free port).
 */
import { createSocket, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import Turn from 'node-turn';
import type { IceServer } from '../../src/index.js';

/** A UDP socket bound to a free port on `ip` (loopback addresses other than 127.0.0.1 included). */
export async function bindUdpSocket(ip: string): Promise<Socket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, ip, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return socket;
}

/** A started TURN server; the caller stops it (`turn.stop()`) after its test. */
export interface LoopbackTurn {
  readonly turn: Turn;
  /** The server as the transport's `iceServers` take it, credentials included. */
  readonly iceServer: IceServer;
}

/**
 * A TURN server listening on 127.0.0.1, started. Its relayed addresses are on `relayIp`
 * (127.0.0.1 unless said otherwise: another loopback address lets a test tell relayed
 * datagrams from direct ones by their source).
 */
export async function startLoopbackTurn(options: { relayIp?: string } = {}): Promise<LoopbackTurn> {
  // A free port (bound and released: node-turn needs a number).
  const probe = await bindUdpSocket('127.0.0.1');
  const { port } = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const turn = new Turn({ authMech: 'long-term', credentials: { deadbolt: 'test-only-credential' }, listeningPort: port, listeningIps: ['127.0.0.1'], relayIps: [options.relayIp ?? '127.0.0.1'], debugLevel: 'OFF' });
  turn.start();
  return { turn, iceServer: { urls: `turn:127.0.0.1:${port}?transport=udp`, username: 'deadbolt', credential: 'test-only-credential' } };
}

/** This machine's own addresses, loopback aside (what a host candidate would reveal). */
export function ownAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((i) => i !== undefined && !i.internal)
    .map((i) => i!.address);
}
