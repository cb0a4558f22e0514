/**
 * Building a Deadbolt client for this device: adapters by instance (SQLite storage in the
 * data directory; WebSocket or HTTP long-polling to the relay), sign-up and linking.
 */
import WebSocket from 'ws';
import { createClient, linkDevice, type Client, type DeviceLink } from '@deadbolt/core';
import type { StorageAdapter, TransportAdapter } from '@deadbolt/spec';
import { createSqliteStorage } from '@deadbolt/storage-sqlite';
import { createHttpPollingTransport } from '@deadbolt/transport-http-polling';
import { createWebSocketTransport, type WebSocketConstructor } from '@deadbolt/transport-websocket';
import { storePath, type Settings } from './config.js';

function adapters(settings: Settings): { storage: StorageAdapter; transport: TransportAdapter } {
  const storage = createSqliteStorage({ path: storePath(settings.data) });
  const transport =
    settings.transport === 'http'
      ? createHttpPollingTransport({ url: settings.relay })
      : // Node 20 has no global WebSocket: hand the transport the `ws` class.
        createWebSocketTransport({ url: `${settings.relay.replace(/^http/, 'ws')}/v1/ws`, WebSocket: WebSocket as unknown as WebSocketConstructor });
  return { storage, transport };
}

/**
 * A started client. On the first run `start()` creates this device's identity (that is
 * signing up); afterwards it loads it from the store. After linking, pass the link: its
 * storage now holds the identity the approving device sent.
 */
export async function openClient(settings: Settings, userId: string, deviceId: string, onCreated: (c: Client) => void, link?: DeviceLink): Promise<Client> {
  const client = await createClient({ userId, deviceId, ...(link ? { storage: link.storage, transport: link.transport } : adapters(settings)) });
  onCreated(client); // subscribe before start(): messages waiting at the relay arrive during it
  try {
    await client.start();
  } catch (e) {
    await client.close();
    throw e;
  }
  return client;
}

/** Starts linking this new device to `userId`: show `link.code`, then await `link.completed`. */
export function startLink(settings: Settings, userId: string, deviceId: string): Promise<DeviceLink> {
  return linkDevice({ userId, deviceId, ...adapters(settings) });
}
