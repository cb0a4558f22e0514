/**
 * Building this browser's Deadbolt client from the settings, **by configuration**: the
 * transport (and IndexedDB storage) are core `AdapterConfig` objects
 * (`{ adapter: 'websocket', options: { url } }`, docs/configuration.md) that core resolves
 * through the `loadModule` below. Switching transport is a new configuration over the same
 * storage: the identity, sessions and history are in the store, and what arrived while
 * switching waits in the relay's mailbox.
 *
 * @module
 */
import { createClient, linkDevice, type AdapterConfig, type Client, type DeviceLink, type ModuleLoader } from '@deadbolt/core';
import { isDeadboltError, type StorageAdapter } from '@deadbolt/spec';
import type { MemoryStorageBacking } from '@deadbolt/storage-memory';
import type { WebRtcTransport } from '@deadbolt/transport-webrtc';
import type { Profile, RelayTransportKind, Settings } from './settings.js';

/**
 * The adapter packages this app bundles. Core imports an adapter only when a
 * configuration names it; in a bundled app a variable `import(name)` cannot work, so the
 * names map to static dynamic imports: the bundler splits each adapter into its own chunk,
 * loaded the first time the settings choose it. Any other name is refused.
 */
const ADAPTER_PACKAGES: Readonly<Record<string, () => Promise<unknown>>> = {
  '@deadbolt/storage-indexeddb': () => import('@deadbolt/storage-indexeddb'),
  '@deadbolt/storage-memory': () => import('@deadbolt/storage-memory'),
  '@deadbolt/transport-websocket': () => import('@deadbolt/transport-websocket'),
  '@deadbolt/transport-http-polling': () => import('@deadbolt/transport-http-polling'),
  '@deadbolt/transport-webrtc': () => import('@deadbolt/transport-webrtc'),
};

interface TransportModule {
  createTransportAdapter(options: Record<string, unknown>): Promise<unknown>;
}

/**
 * A `ModuleLoader` over {@link ADAPTER_PACKAGES}. `onWebRtc` receives the WebRTC transport
 * core creates from the configuration, so the app can show which contacts are reached
 * over a direct link and set up a link to the contact the user opens (`preconnect`).
 * `client.transport` would do for the paths, but it is a read-only view that leaves out
 * `preconnect` (and everything else that sends or routes), so the app keeps the transport
 * itself.
 */
function adapterLoader(onWebRtc?: (transport: WebRtcTransport) => void): ModuleLoader {
  return async (name) => {
    const load = ADAPTER_PACKAGES[name];
    if (!load) throw new Error(`chat-web does not bundle the adapter package ${name}`);
    const mod = await load();
    if (name !== '@deadbolt/transport-webrtc' || !onWebRtc) return mod;
    const webrtc = mod as TransportModule;
    return {
      createTransportAdapter: async (options: Record<string, unknown>) => {
        const transport = (await webrtc.createTransportAdapter(options)) as WebRtcTransport;
        onWebRtc(transport);
        return transport;
      },
    };
  };
}

/** `ws://host:port/v1/ws` from `http://host:port` (`wss` from `https`). */
export function webSocketUrl(relayUrl: string): string {
  const url = new URL('/v1/ws', relayUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

function relayTransport(kind: RelayTransportKind, relayUrl: string): AdapterConfig {
  return kind === 'websocket'
    ? { adapter: 'websocket', options: { url: webSocketUrl(relayUrl) } }
    : { adapter: 'http-polling', options: { url: relayUrl } };
}

/**
 * The transport configuration the settings describe. WebRTC wraps a relay transport, its
 * fallback: the key directory, the offline path and the carrier of the (end-to-end
 * encrypted) signalling. Its `RTCPeerConnection` is the browser's own.
 */
export function transportConfig(settings: Settings, loadModule: ModuleLoader): AdapterConfig {
  if (settings.transport !== 'webrtc') return relayTransport(settings.transport, settings.relayUrl);
  return { adapter: 'webrtc', options: { fallback: relayTransport(settings.webrtcFallback, settings.relayUrl), loadModule } };
}

/** Memory stores of this page, by database name: they outlive a transport switch, not a reload. */
const memoryBackings = new Map<string, MemoryStorageBacking>();

/**
 * The device's storage. IndexedDB by configuration (one database per user and device).
 * Memory as an instance over a backing kept for the page's lifetime: `{ adapter: 'memory' }`
 * gives every client a new, empty store, which would make a transport switch a new device.
 */
async function storageFor(profile: Profile): Promise<StorageAdapter | AdapterConfig> {
  if (profile.storage === 'indexeddb') return { adapter: 'indexeddb', options: { name: profile.database } };
  const { createMemoryStorage, createMemoryStorageBacking } = await import('@deadbolt/storage-memory');
  let backing = memoryBackings.get(profile.database);
  if (!backing) memoryBackings.set(profile.database, (backing = createMemoryStorageBacking()));
  return createMemoryStorage({ backing });
}

/** A client and, on WebRTC, its transport (for the path of each contact). */
export interface Connection {
  readonly client: Client;
  readonly webrtc: WebRtcTransport | undefined;
}

/**
 * Creates this device's client, not started: its history can be read already (the store
 * is open), nothing is sent or received until `client.start()`.
 */
export async function openClient(settings: Settings, profile: Profile): Promise<Connection> {
  let webrtc: WebRtcTransport | undefined;
  const loadModule = adapterLoader((t) => (webrtc = t));
  const client = await createClient({
    userId: profile.userId,
    deviceId: profile.deviceId,
    storage: await storageFor(profile),
    transport: transportConfig(settings, loadModule),
    loadModule,
  });
  return { client, webrtc };
}

/**
 * Creates this device's client and starts it; closes it again if it does not start. On
 * the first run `start()` creates the device's identity (that is signing up); afterwards
 * it loads it from the store.
 */
export async function connect(settings: Settings, profile: Profile): Promise<Connection> {
  const connection = await openClient(settings, profile);
  try {
    await connection.client.start();
  } catch (e) {
    await connection.client.close().catch(() => undefined);
    throw e;
  }
  return connection;
}

/**
 * Starts linking this browser as a new device of `profile.userId`: show `link.code`, then
 * await `link.completed`; the identity is then in the device's storage and
 * {@link connect} opens it. Linking talks to the relay over WebSocket or HTTP (the WebRTC
 * fallback when WebRTC is chosen).
 */
export async function startLink(settings: Settings, profile: Profile): Promise<DeviceLink> {
  const loadModule = adapterLoader();
  const kind: RelayTransportKind = settings.transport === 'webrtc' ? settings.webrtcFallback : settings.transport;
  return linkDevice({ userId: profile.userId, deviceId: profile.deviceId, storage: await storageFor(profile), transport: relayTransport(kind, settings.relayUrl), loadModule });
}

/** Deletes this device's IndexedDB database (removing the account from this browser). */
export function deleteDeviceStorage(profile: Profile): Promise<void> {
  memoryBackings.delete(profile.database);
  if (profile.storage !== 'indexeddb') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const request = indexedDB.deleteDatabase(profile.database);
    request.onsuccess = () => resolve();
    request.onerror = () => reject(request.error ?? new Error('could not delete the database'));
    // Another tab still has it open: it closes on `versionchange`; deletion completes then.
    request.onblocked = () => undefined;
  });
}

/** A sentence for the UI. Never includes key material or message text (core's messages carry none). */
export function describeError(e: unknown, context: { readonly peer?: string } = {}): string {
  const who = context.peer ?? 'this user';
  if (isDeadboltError(e, 'UNKNOWN_USER')) return `${e.details?.userId ?? who} has never connected to this relay: they need to sign up first.`;
  if (isDeadboltError(e, 'UNTRUSTED_IDENTITY')) return `${who}'s safety number changed. Review it before sending (the shield in the chat header).`;
  if (isDeadboltError(e, 'RATE_LIMITED')) return `The relay asks to slow down: try again in ${Math.ceil((e.details?.retryAfterMs ?? 1000) / 1000)} s.`;
  if (isDeadboltError(e, 'NO_SESSION')) return `${who} has no devices this device can reach.`;
  if (isDeadboltError(e, 'RELAY_REJECTED')) return `The relay refused: ${e.message} (${e.details?.code ?? e.code}).`;
  if (isDeadboltError(e) && e.kind === 'transport') return `Cannot reach the relay (${e.code}). Check the relay address in Settings.`;
  if (isDeadboltError(e)) return `${e.message} (${e.code})`;
  return e instanceof Error ? e.message : String(e);
}
