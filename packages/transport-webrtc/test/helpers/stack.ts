/**
 * Real clients (`@deadbolt/core`) on the WebRTC transport, over a real relay on loopback,
 * with what tests need to observe: every message the relay stored (its store is wrapped),
 * optionally every byte between clients and relay (a recording TCP proxy), every session
 * description the peer connections produced or applied, and waits on events with
 * deadlines (never sleeps).
 */
import { createServer, connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';
import WebSocket from 'ws';
import * as ndc from 'node-datachannel';
import * as polyfill from 'node-datachannel/polyfill';
import { RTCPeerConnection as WeriftPeerConnection } from 'werift';
import { createClient, type Client, type StoredMessage } from '@deadbolt/core';
import { createMemoryRelayStore, type RelayStore, type StoreAddress } from '@deadbolt/relay';
import { conformanceRelay } from '@deadbolt/relay/testing';
import type { Address, SignallingChannel } from '@deadbolt/spec';
import { createMemoryStorage, createMemoryStorageBacking, type MemoryStorageBacking } from '@deadbolt/storage-memory';
import { createHttpPollingTransport } from '@deadbolt/transport-http-polling';
import { createWebSocketTransport, type WebSocketConstructor } from '@deadbolt/transport-websocket';
import {
  createWebRtcTransport,
  decodeSignal,
  nodeDatachannelImplementation,
  weriftImplementation,
  type NodeDatachannelModule,
  type NodeDatachannelPolyfillModule,
  type PathChange,
  type PeerConnectionImplementation,
  type RTCPeerConnectionConstructor,
  type WebRtcTransport,
  type WebRtcTransportOptions,
} from '../../src/index.js';

/** How long any one wait may take before the test fails, saying what it waited for. */
export const WAIT_MS = 20_000;

/** Resolves when `promise` does, or fails with `what` after the deadline. */
export function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** A message the relay's store accepted. */
export interface Enqueued {
  readonly from: StoreAddress;
  readonly to: StoreAddress;
  readonly frame: Uint8Array;
}

/** Records what passes a TCP proxy, both ways. */
export interface RecordingProxy {
  readonly url: string;
  readonly wsUrl: string;
  /** Every byte client → relay and relay → client, in arrival order per direction. */
  readonly upstream: Buffer[];
  readonly downstream: Buffer[];
  close(): Promise<void>;
}

export async function startRecordingProxy(target: { url: string; wsUrl: string }): Promise<RecordingProxy> {
  const to = new URL(target.url);
  const upstream: Buffer[] = [];
  const downstream: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const relay = tcpConnect(Number(to.port), to.hostname);
    sockets.add(client).add(relay);
    const end = (): void => {
      client.destroy();
      relay.destroy();
    };
    client.on('data', (d: Buffer) => {
      upstream.push(Buffer.from(d));
      relay.write(d);
    });
    relay.on('data', (d: Buffer) => {
      downstream.push(Buffer.from(d));
      client.write(d);
    });
    client.on('close', end).on('error', end);
    relay.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}${new URL(target.wsUrl).pathname}`,
    upstream,
    downstream,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A relay on loopback whose store records every message it accepts. */
export interface TestRelay {
  readonly url: string;
  readonly wsUrl: string;
  readonly enqueued: Enqueued[];
  /** Messages stored from `from` to `to` so far. */
  count(from: Address, to: Address): number;
  close(): Promise<void>;
}

export async function startRelay(options: { allowedOrigins?: readonly string[] } = {}): Promise<TestRelay> {
  const store = createMemoryRelayStore();
  const enqueued: Enqueued[] = [];
  const recording: RelayStore = new Proxy(store, {
    get(target, key, receiver) {
      if (key === 'enqueue') {
        return (async (batch, quota) => {
          const result = await target.enqueue(batch, quota);
          if (result.ok) for (const m of batch.messages) enqueued.push({ from: batch.from, to: m.to, frame: m.frame.slice() });
          return result;
        }) satisfies RelayStore['enqueue'];
      }
      const value: unknown = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const relay = await conformanceRelay({ store: recording, ...(options.allowedOrigins ? { allowedOrigins: options.allowedOrigins } : {}) });
  return {
    url: relay.url,
    wsUrl: relay.wsUrl,
    enqueued,
    count: (from, to) => enqueued.filter((e) => e.from.userId === from.userId && e.from.deviceId === from.deviceId && e.to.userId === to.userId && e.to.deviceId === to.deviceId).length,
    close: () => relay.close(),
  };
}

export type Implementation = 'node-datachannel' | 'werift';

/** Session descriptions the peer connections of a test produced (local) or applied (remote). */
export const descriptions: { local: string[]; remote: string[] } = { local: [], remote: [] };

function recording(Base: RTCPeerConnectionConstructor): RTCPeerConnectionConstructor {
  // A subclass whose description accessors note what passes (a getter cannot be overridden
  // in TypeScript where the base type declares a property, so the class is typed loosely).
  const Recording = class extends (Base as unknown as new (config: unknown) => object) {};
  const proto = Object.getPrototypeOf(Recording.prototype) as object;
  const local = findDescriptor(proto, 'localDescription');
  Object.defineProperty(Recording.prototype, 'localDescription', {
    get(this: object) {
      const d = local?.get?.call(this) as { sdp?: string } | null;
      if (d?.sdp && !descriptions.local.includes(d.sdp)) descriptions.local.push(d.sdp);
      return d;
    },
  });
  const setRemote = (proto as { setRemoteDescription(d: { sdp?: string }): Promise<void> }).setRemoteDescription;
  Object.defineProperty(Recording.prototype, 'setRemoteDescription', {
    value(this: object, d: { sdp?: string }) {
      if (d.sdp) descriptions.remote.push(d.sdp);
      return setRemote.call(this, d);
    },
  });
  return Recording as unknown as RTCPeerConnectionConstructor;
}

function findDescriptor(proto: object | null, key: string): PropertyDescriptor | undefined {
  for (let p = proto; p !== null; p = Object.getPrototypeOf(p) as object | null) {
    const d = Object.getOwnPropertyDescriptor(p, key);
    if (d) return d;
  }
  return undefined;
}

export function implementation(kind: Implementation): PeerConnectionImplementation {
  // Marked as werift's (the recording subclass wraps werift only): the privacy mode takes it.
  if (kind === 'werift') return weriftImplementation({ RTCPeerConnection: recording(WeriftPeerConnection as unknown as RTCPeerConnectionConstructor) });
  const impl = nodeDatachannelImplementation(ndc as unknown as NodeDatachannelModule, polyfill as unknown as NodeDatachannelPolyfillModule);
  return { ...impl, RTCPeerConnection: recording(impl.RTCPeerConnection) };
}

/** A client on the WebRTC transport, with what it received. */
export interface TestClient {
  readonly client: Client;
  readonly transport: WebRtcTransport;
  readonly address: Address;
  readonly received: StoredMessage[];
  readonly backing: MemoryStorageBacking;
  /** Path changes this client's transport reported. */
  readonly paths: PathChange[];
  /** Every signal this client's transport sent (through core's signalling channel): to whom, and its type. */
  readonly signalsSent: { readonly to: Address; readonly type: string }[];
  /** Resolves once `check()` holds, re-checked on every message and path change. */
  until(check: () => boolean, what: string, ms?: number): Promise<void>;
  /** Waits until frames to `peer` take `path`. */
  waitPath(peer: Address, path: 'direct' | 'relay', ms?: number): Promise<void>;
  close(): Promise<void>;
}

export interface ClientOptions {
  readonly implementation?: Implementation;
  readonly fallback?: 'websocket' | 'http-polling';
  /** Reuse a device's storage (its identity, sessions and history) after it closed. */
  readonly backing?: MemoryStorageBacking;
  /** Extra options for the WebRTC transport. */
  readonly transport?: Partial<WebRtcTransportOptions>;
}

export async function startClient(relay: { url: string; wsUrl: string }, userId: string, deviceId: string, options: ClientOptions = {}): Promise<TestClient> {
  const backing = options.backing ?? createMemoryStorageBacking();
  const fallback =
    options.fallback === 'http-polling'
      ? createHttpPollingTransport({ url: relay.url, pollWaitMs: 1000, backoff: { initialMs: 20, maxMs: 500 } })
      : createWebSocketTransport({ url: relay.wsUrl, WebSocket: WebSocket as unknown as WebSocketConstructor, backoff: { initialMs: 20, maxMs: 500 } });
  const transport = createWebRtcTransport({
    fallback,
    ...implementation(options.implementation ?? 'node-datachannel'),
    backoff: { initialMs: 50, maxMs: 1000 },
    connectTimeoutMs: 5000,
    ...options.transport,
  });
  // Core attaches its signalling channel when it starts: what the transport sends through
  // it is noted (decoded here, in the test; the relay only ever sees it sealed).
  const signalsSent: { to: Address; type: string }[] = [];
  const attach = transport.attachSignalling.bind(transport);
  transport.attachSignalling = (channel) =>
    attach(
      new Proxy(channel, {
        get(target, key) {
          if (key === 'send') {
            return (to: Address, payload: Uint8Array, deliver: Parameters<SignallingChannel['send']>[2]) => {
              signalsSent.push({ to: { userId: to.userId, deviceId: to.deviceId }, type: decodeSignal(payload).type });
              return target.send(to, payload, deliver);
            };
          }
          const value: unknown = Reflect.get(target, key, target);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      }),
    );
  const client = await createClient({ userId, deviceId, storage: createMemoryStorage({ backing }), transport });
  const received: StoredMessage[] = [];
  const paths: PathChange[] = [];
  const waiters = new Set<() => void>();
  const poke = (): void => {
    for (const w of [...waiters]) w();
  };
  client.on('message-received', (m) => {
    received.push(m);
    poke();
  });
  transport.onPathChange((change) => {
    paths.push(change);
    poke();
  });
  await within(client.start(), `${userId}/${deviceId} to start`);
  const until = (check: () => boolean, what: string, ms = WAIT_MS): Promise<void> => {
    if (check()) return Promise.resolve();
    let waiter!: () => void;
    const done = new Promise<void>((resolve) => {
      waiter = () => {
        if (!check()) return;
        waiters.delete(waiter);
        resolve();
      };
      waiters.add(waiter);
    });
    return within(done, what, ms).finally(() => waiters.delete(waiter));
  };
  return {
    client,
    transport,
    address: client.address,
    received,
    backing,
    paths,
    signalsSent,
    until,
    waitPath: (peer, path, ms) => until(() => transport.path(peer) === path, `the path to ${peer.userId}/${peer.deviceId} to be ${path}`, ms),
    close: () => client.close(),
  };
}

export const text = (m: StoredMessage): string => new TextDecoder().decode(m.body);
