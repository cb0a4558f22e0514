/**
 * The real stack for end-to-end tests: the reference relay on loopback (SQLite or
 * memory store), clients on the WebSocket or HTTP-polling transport, and helpers that
 * wait on events (never on sleeps).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterEach } from 'vitest';
import { createClient, type Client, type StoredMessage } from '@deadbolt/core';
import { createRelay, createSqliteRelayStore, silentRelayLogger, type Relay, type RelayOptions } from '@deadbolt/relay';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import type { StorageAdapter, TransportAdapter } from '@deadbolt/spec';
import { createHttpPollingTransport } from '@deadbolt/transport-http-polling';
import { createWebSocketTransport, type WebSocketConstructor } from '@deadbolt/transport-websocket';

export type TransportKind = 'websocket' | 'http-polling';

export interface Endpoint {
  readonly url: string;
  readonly wsUrl: string;
}

/** Rate limits loose enough for a test that sends hundreds of messages per pair. */
const LOOSE = { burst: 100_000, refill: 100_000, intervalMs: 1000 };
export const TEST_LIMITS: NonNullable<RelayOptions['limits']> = {
  messages: LOOSE,
  bundleFetches: LOOSE,
  directoryReads: LOOSE,
  requests: LOOSE,
  sendBytes: { burst: 1 << 30, refill: 1 << 30, intervalMs: 1000 },
  authAttempts: LOOSE,
  prekeyUploads: LOOSE,
};

/** A database path in a fresh temporary folder (the test removes the folder). */
export function tempDbPath(): string {
  return join(mkdtempSync(join(tmpdir(), 'deadbolt-e2e-')), 'relay.db');
}

export async function startRelay(options: RelayOptions & { dbPath?: string } = {}): Promise<Relay> {
  const { dbPath, ...rest } = options;
  return createRelay({
    host: '127.0.0.1',
    port: 0,
    limits: TEST_LIMITS,
    logger: silentRelayLogger,
    ...(dbPath ? { store: createSqliteRelayStore({ path: dbPath }) } : {}),
    ...rest,
  });
}

export function makeTransport(kind: TransportKind, endpoint: Endpoint): TransportAdapter {
  return kind === 'websocket'
    ? createWebSocketTransport({ url: endpoint.wsUrl, WebSocket: WebSocket as unknown as WebSocketConstructor })
    : createHttpPollingTransport({ url: endpoint.url });
}

export interface TestClient {
  readonly client: Client;
  readonly storage: StorageAdapter;
  readonly received: StoredMessage[];
  /** Resolves once `count` messages were received, or rejects at the deadline. */
  waitForMessages(count: number, deadlineMs?: number): Promise<void>;
}

export async function startClient(
  kind: TransportKind,
  endpoint: Endpoint,
  userId: string,
  deviceId: string,
  storage: StorageAdapter = createMemoryStorage(),
  registrationToken?: string,
  transport: TransportAdapter = makeTransport(kind, endpoint),
): Promise<TestClient> {
  const client = await createClient({
    userId,
    deviceId,
    storage,
    transport,
    ...(registrationToken !== undefined ? { registrationToken } : {}),
  });
  const received: StoredMessage[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  client.on('message-received', (m) => {
    received.push(m);
    for (const w of waiters.splice(0)) {
      if (received.length >= w.count) w.resolve();
      else waiters.push(w);
    }
  });
  await client.start();
  return {
    client,
    storage,
    received,
    waitForMessages(count, deadlineMs = 60_000) {
      if (received.length >= count) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${received.length} of ${count} messages arrived`)), deadlineMs);
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
  };
}

export const text = (m: StoredMessage): string => new TextDecoder().decode(m.body);

/**
 * What one test opens, closed after it: its clients (`open`), then its relay. `start`
 * starts the test's relay (options as for {@link startRelay}); `relay()` returns it.
 */
export function perTestRelay(): { readonly open: Client[]; start(options?: Parameters<typeof startRelay>[0]): Promise<Relay>; relay(): Relay } {
  let current: Relay | undefined;
  const open: Client[] = [];
  afterEach(async () => {
    for (const c of open.splice(0)) await c.close();
    await current?.close();
    current = undefined;
  });
  return {
    open,
    start: async (options) => (current = await startRelay(options)),
    relay: () => {
      if (current === undefined) throw new Error('no relay started in this test');
      return current;
    },
  };
}
