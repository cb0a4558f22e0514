/**
 * What this browser remembers outside the Deadbolt store, in `localStorage`: the settings
 * (relay, transport) and the profile (who this device is, which storage holds its keys,
 * its contacts, and when each conversation was last read).
 *
 * Nothing secret and no message text is kept here: keys, sessions, history and group
 * names live in the client's own store (IndexedDB, or memory), written by core.
 *
 * @module
 */

/** The relay transports the settings screen offers (core's short adapter names). */
export type TransportKind = 'websocket' | 'http-polling' | 'webrtc';
/** The relay transports WebRTC can fall back to (key directory, offline path, signalling). */
export type RelayTransportKind = Exclude<TransportKind, 'webrtc'>;
/** Where this device's keys and history are kept. */
export type StorageKind = 'indexeddb' | 'memory';

/** The connection settings: changing them restarts the client on the same storage. */
export interface Settings {
  /** The relay's HTTP address, `http://host:port` (the WebSocket address is derived from it). */
  readonly relayUrl: string;
  readonly transport: TransportKind;
  /** What WebRTC uses for everything that is not a direct link. */
  readonly webrtcFallback: RelayTransportKind;
}

/** This browser's device: chosen at sign-up, kept until the account is removed here. */
export interface Profile {
  readonly userId: string;
  readonly deviceId: string;
  readonly storage: StorageKind;
  /** The IndexedDB database holding the device (one per user and device). */
  readonly database: string;
  /** User ids added as contacts (a contact is a user id, as in chat-cli). */
  readonly contacts: readonly string[];
  /** Conversation key (`u:<userId>` or `g:<groupId>`) -> time (ms) it was last read here. */
  readonly lastRead: Readonly<Record<string, number>>;
}

/** User and device ids, as `@deadbolt/spec` accepts them. */
export const ID_PATTERN = /^[A-Za-z0-9._@:+-]{1,64}$/;

const SETTINGS_KEY = 'deadbolt-chat-web:settings';
const PROFILE_KEY = 'deadbolt-chat-web:profile';
const TRANSPORTS: readonly TransportKind[] = ['websocket', 'http-polling', 'webrtc'];

/** Human names of the transports, for the UI. */
export const TRANSPORT_LABELS: Readonly<Record<TransportKind, string>> = {
  websocket: 'WebSocket',
  'http-polling': 'HTTP long-polling',
  webrtc: 'WebRTC',
};

/**
 * The relay the app talks to unless the settings say otherwise: `VITE_DEADBOLT_RELAY_URL`
 * at build time (the dev script sets it), else this page's own origin (a relay served
 * behind the same host as the app).
 */
export function defaultRelayUrl(): string {
  const configured = import.meta.env.VITE_DEADBOLT_RELAY_URL as string | undefined;
  return configured && configured.length > 0 ? configured : location.origin;
}

export function defaultSettings(): Settings {
  return { relayUrl: defaultRelayUrl(), transport: 'websocket', webrtcFallback: 'websocket' };
}

function readJson(key: string): unknown {
  try {
    const text = localStorage.getItem(key);
    return text === null ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return undefined; // unreadable: treated as absent
  }
}

/** The saved settings, each missing or invalid field replaced by its default. */
export function loadSettings(): Settings {
  const saved = readJson(SETTINGS_KEY) as Partial<Record<keyof Settings, unknown>> | undefined;
  const base = defaultSettings();
  if (typeof saved !== 'object' || saved === null) return base;
  const transport = TRANSPORTS.includes(saved.transport as TransportKind) ? (saved.transport as TransportKind) : base.transport;
  const webrtcFallback = saved.webrtcFallback === 'http-polling' ? 'http-polling' : 'websocket';
  const relayUrl = typeof saved.relayUrl === 'string' && checkRelayUrl(saved.relayUrl) === undefined ? saved.relayUrl : base.relayUrl;
  return { relayUrl, transport, webrtcFallback };
}

export function saveSettings(settings: Settings): void {
  localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
}

/** A problem with a relay address typed in the UI, or undefined if it is usable. */
export function checkRelayUrl(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'not a URL: expected http://host:port';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'the relay address starts with http:// or https://';
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') return 'give only the relay origin, like http://127.0.0.1:8787';
  return undefined;
}

/** `http://host:port` without a trailing slash. */
export function normalizeRelayUrl(value: string): string {
  return new URL(value).origin;
}

export function loadProfile(): Profile | undefined {
  const p = readJson(PROFILE_KEY) as Partial<Profile> | undefined;
  if (typeof p !== 'object' || p === null) return undefined;
  if (typeof p.userId !== 'string' || !ID_PATTERN.test(p.userId)) return undefined;
  if (typeof p.deviceId !== 'string' || !ID_PATTERN.test(p.deviceId)) return undefined;
  if (p.storage !== 'indexeddb' && p.storage !== 'memory') return undefined;
  if (typeof p.database !== 'string') return undefined;
  const contacts = Array.isArray(p.contacts) ? p.contacts.filter((c): c is string => typeof c === 'string' && ID_PATTERN.test(c)) : [];
  const lastRead: Record<string, number> = {};
  if (typeof p.lastRead === 'object' && p.lastRead !== null) {
    for (const [k, v] of Object.entries(p.lastRead)) if (typeof v === 'number') lastRead[k] = v;
  }
  return { userId: p.userId, deviceId: p.deviceId, storage: p.storage, database: p.database, contacts, lastRead };
}

export function saveProfile(profile: Profile): void {
  localStorage.setItem(PROFILE_KEY, JSON.stringify(profile));
}

export function clearProfile(): void {
  localStorage.removeItem(PROFILE_KEY);
}

/** A new profile for a device being set up. */
export function newProfile(userId: string, deviceId: string, storage: StorageKind): Profile {
  return { userId, deviceId, storage, database: `deadbolt-chat-web:${userId}:${deviceId}`, contacts: [], lastRead: {} };
}

/** A default device name: the browser and four random hex digits (`chrome-3f9a`). */
export function suggestDeviceId(): string {
  const ua = navigator.userAgent;
  const browser = /Firefox\//.test(ua) ? 'firefox' : /Edg\//.test(ua) ? 'edge' : /Chrom(e|ium)\//.test(ua) ? 'chrome' : /Safari\//.test(ua) ? 'safari' : 'web';
  const bytes = crypto.getRandomValues(new Uint8Array(2));
  return `${browser}-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}
