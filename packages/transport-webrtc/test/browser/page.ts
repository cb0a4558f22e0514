/**
 * The page side of the Chromium tests: a real client (`@deadbolt/core`, WebCrypto) on the
 * WebRTC transport with the browser's own RTCPeerConnection, over the WebSocket transport.
 * Node drives it through `globalThis.deadboltWebRtc`; every wait here is on an event, with
 * a deadline.
 */
import { createClient, type Client } from '@deadbolt/core';
import { createMemoryStorage, createMemoryStorageBacking } from '@deadbolt/storage-memory';
import { createWebSocketTransport } from '@deadbolt/transport-websocket';
import { createWebRtcTransport, type PathChange, type RTCPeerConnectionConstructor, type WebRtcTransport } from '../../src/index.js';

interface Received {
  readonly id: string;
  readonly from: string;
  readonly body: string;
}

/** Every local description this page's peer connections produced (for the relay check). */
const localDescriptions: string[] = [];

/** The browser's RTCPeerConnection, noting the descriptions it produces. */
class RecordingPeerConnection extends RTCPeerConnection {
  override get localDescription(): RTCSessionDescription | null {
    const d = super.localDescription;
    if (d?.sdp && !localDescriptions.includes(d.sdp)) localDescriptions.push(d.sdp);
    return d;
  }
}

const backing = createMemoryStorageBacking();
let client: Client | undefined;
let transport: WebRtcTransport | undefined;
const received: Received[] = [];
const paths: (PathChange & { at: number })[] = [];
const waiters = new Set<() => void>();
const poke = (): void => {
  for (const w of [...waiters]) w();
};

function until(check: () => boolean, what: string, ms = 20_000): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      waiters.delete(waiter);
      reject(new Error(`in the page: timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    const waiter = (): void => {
      if (!check()) return;
      clearTimeout(timer);
      waiters.delete(waiter);
      resolve();
    };
    waiters.add(waiter);
  });
}

const api = {
  /** Starts this page's device (again after `stop`, with the same storage). */
  async start(options: { userId: string; deviceId: string; wsUrl: string }): Promise<void> {
    transport = createWebRtcTransport({
      fallback: createWebSocketTransport({ url: options.wsUrl, backoff: { initialMs: 20, maxMs: 500 } }),
      RTCPeerConnection: RecordingPeerConnection as unknown as RTCPeerConnectionConstructor,
      backoff: { initialMs: 50, maxMs: 1000 },
      connectTimeoutMs: 5000,
    });
    transport.onPathChange((change) => {
      paths.push({ ...change, at: Date.now() });
      poke();
    });
    client = await createClient({ userId: options.userId, deviceId: options.deviceId, storage: createMemoryStorage({ backing }), transport });
    client.on('message-received', (m) => {
      received.push({ id: m.id, from: `${m.sender.userId}/${m.sender.deviceId}`, body: new TextDecoder().decode(m.body) });
      poke();
    });
    await client.start();
  },
  /** Closes the client: the device is offline (its storage stays). */
  async stop(): Promise<void> {
    await client?.close();
    client = undefined;
    transport = undefined;
  },
  async send(to: string, body: string): Promise<string> {
    if (!client) throw new Error('not started');
    return (await client.send(to, body)).id;
  },
  received: (): Received[] => received.slice(),
  /** Waits until every id in `ids` was received; returns how many times each was. */
  async waitReceived(ids: string[]): Promise<number[]> {
    await until(() => ids.every((id) => received.some((m) => m.id === id)), `${ids.length} messages`);
    return ids.map((id) => received.filter((m) => m.id === id).length);
  },
  /** The message ids in this device's history with `userId`. */
  async history(userId: string): Promise<string[]> {
    if (!client) throw new Error('not started');
    return (await client.history(userId, { limit: 1000 })).map((m) => m.id);
  },
  path(userId: string, deviceId: string): 'direct' | 'relay' {
    return transport?.path({ userId, deviceId } as never) ?? 'relay';
  },
  async waitPath(userId: string, deviceId: string, path: 'direct' | 'relay'): Promise<string | undefined> {
    await until(() => api.path(userId, deviceId) === path, `the path to ${userId}/${deviceId} to be ${path}`);
    return [...paths].reverse().find((p) => p.peer.userId === userId && p.peer.deviceId === deviceId && p.path === path)?.fingerprintCheck;
  },
  localDescriptions: (): string[] => localDescriptions.slice(),
};

export type DeadboltWebRtcPage = typeof api;
(globalThis as unknown as { deadboltWebRtc: DeadboltWebRtcPage }).deadboltWebRtc = api;
