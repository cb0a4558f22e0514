/**
 * What both Chromium test pages (`page.ts`, `privacy-page.ts`) share: waits on the page's
 * own events with a deadline (never sleeps), and one device, a real client
 * (`@deadbolt/core`, WebCrypto, memory storage kept across restarts) on a WebRTC transport
 * the page builds, over the WebSocket transport to the test's relay. Each page adds only
 * how it builds that transport and what it records besides.
 */
import { createClient, type Client } from '@deadbolt/core';
import type { TransportAdapter } from '@deadbolt/spec';
import { createMemoryStorage, createMemoryStorageBacking } from '@deadbolt/storage-memory';
import { createWebSocketTransport } from '@deadbolt/transport-websocket';
import type { PathChange, WebRtcTransport } from '../../src/index.js';

/** A message this page's device received. */
export interface Received {
  readonly id: string;
  readonly from: string;
  readonly body: string;
}

/** Waits on the page's events: call `poke` whenever something a wait may check changed. */
export interface PageWaits {
  poke(): void;
  /** Resolves once `check()` holds; fails naming `what` after `ms`. */
  until(check: () => boolean, what: string, ms?: number): Promise<void>;
}

export function createPageWaits(): PageWaits {
  const waiters = new Set<() => void>();
  return {
    poke(): void {
      for (const w of [...waiters]) w();
    },
    until(check, what, ms = 20_000) {
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
    },
  };
}

/** The page's one device, started and stopped by the test through the page's API. */
export interface PageDevice {
  /**
   * Starts the device (again after `stop`, with the same storage) on the transport
   * `transport` builds around the WebSocket fallback to `wsUrl`.
   */
  start(options: { userId: string; deviceId: string; wsUrl: string }, transport: (fallback: TransportAdapter) => WebRtcTransport): Promise<void>;
  /** Closes the client: the device is offline (its storage stays). */
  stop(): Promise<void>;
  /** Sends `body` to `to`; returns the message id. */
  send(to: string, body: string): Promise<string>;
  received(): Received[];
  /** Waits until every id in `ids` was received; returns how many times each was. */
  waitReceived(ids: string[]): Promise<number[]>;
  /** The message ids in this device's history with `userId`. */
  history(userId: string): Promise<string[]>;
  path(userId: string, deviceId: string): 'direct' | 'relay';
  /** Waits until the path to that device is `path`; returns the last change to it. */
  waitPath(userId: string, deviceId: string, path: 'direct' | 'relay'): Promise<PathChange | undefined>;
  /** Every path change so far, over restarts. */
  paths(): PathChange[];
  /** The running transport, if started. */
  transport(): WebRtcTransport | undefined;
}

export function createPageDevice(waits: PageWaits): PageDevice {
  const backing = createMemoryStorageBacking();
  let client: Client | undefined;
  let transport: WebRtcTransport | undefined;
  const received: Received[] = [];
  const paths: PathChange[] = [];

  const device: PageDevice = {
    async start(options, build) {
      transport = build(createWebSocketTransport({ url: options.wsUrl, backoff: { initialMs: 20, maxMs: 500 } }));
      transport.onPathChange((change) => {
        paths.push(change);
        waits.poke();
      });
      client = await createClient({ userId: options.userId, deviceId: options.deviceId, storage: createMemoryStorage({ backing }), transport });
      client.on('message-received', (m) => {
        received.push({ id: m.id, from: `${m.sender.userId}/${m.sender.deviceId}`, body: new TextDecoder().decode(m.body) });
        waits.poke();
      });
      await client.start();
    },
    async stop() {
      await client?.close();
      client = undefined;
      transport = undefined;
    },
    async send(to, body) {
      if (!client) throw new Error('not started');
      return (await client.send(to, body)).id;
    },
    received: () => received.slice(),
    async waitReceived(ids) {
      await waits.until(() => ids.every((id) => received.some((m) => m.id === id)), `${ids.length} messages`);
      return ids.map((id) => received.filter((m) => m.id === id).length);
    },
    async history(userId) {
      if (!client) throw new Error('not started');
      return (await client.history(userId, { limit: 1000 })).map((m) => m.id);
    },
    path(userId, deviceId) {
      return transport?.path({ userId, deviceId } as never) ?? 'relay';
    },
    async waitPath(userId, deviceId, path) {
      await waits.until(() => device.path(userId, deviceId) === path, `the path to ${userId}/${deviceId} to be ${path}`);
      return [...paths].reverse().find((p) => p.peer.userId === userId && p.peer.deviceId === deviceId && p.path === path);
    },
    paths: () => paths.slice(),
    transport: () => transport,
  };
  return device;
}
