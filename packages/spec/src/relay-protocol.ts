/**
 * The relay protocol, version 1 (docs/relay-protocol.md): the binary frames a device and
 * the reference relay exchange, over WebSocket messages or HTTP request and response
 * bodies. Transports and the relay share this codec; neither ever looks inside a message
 * `frame` (the end-to-end encrypted bytes).
 *
 * ```
 * RelayFrame = version u8 (=1) | kind u8 | requestId u32 | body
 * ```
 *
 * A request carries a client-chosen `requestId` (1..2^32-1); the relay's answer echoes it.
 * Frames the relay pushes unasked (HELLO, DELIVER on WebSocket, PREKEYS_LOW) carry 0.
 *
 * @module
 */
import { ByteReader } from './codec/reader.js';
import { ByteWriter } from './codec/writer.js';
import { deviceId as toDeviceId, userId as toUserId, type Address } from './ids.js';
import type { SharedRecipient } from './transport.js';

/** The relay protocol version. */
export const RELAY_PROTOCOL_VERSION = 1;

/** Limits every relay and transport enforces (docs/relay-protocol.md §5). */
export const RELAY_LIMITS = Object.freeze({
  /** Largest encoded relay frame (a request or a response). */
  maxFrame: 2 * 1024 * 1024,
  /** Largest end-to-end message frame carried for one recipient. */
  maxMessage: 280 * 1024,
  /** Recipients in one SEND. */
  maxRecipients: 1000,
  /** Messages in one DELIVER. */
  maxDeliver: 100,
  /** Ids in one ACK. */
  maxAck: 1000,
  /** Bundles in one BUNDLES answer (devices per user). */
  maxBundles: 100,
  /** Longest long-poll wait. */
  maxWaitMs: 30_000,
  /** Bytes of a message id. */
  maxMessageId: 64,
  /** Bytes of a registration token. */
  maxToken: 4096,
  /** Largest encoded device list (docs/protocol.md §3.3, §8: 32 entries with 64-byte ids). */
  maxDeviceList: 4303,
  /** Largest sealed device-link answer carried by PROVISION_PUT and PROVISION (8 KiB). */
  maxProvisionBlob: 8192,
  /** Longest PROVISION_TAKE wait. */
  maxProvisionWaitMs: 30_000,
  /** Users named in one DEVICE_MISMATCH (at most one per recipient). */
  maxMismatchUsers: 1000,
});

/** Bytes of a provisioning channel (docs/protocol.md §3.4: 16 random bytes chosen by the new device). */
export const PROVISION_CHANNEL_BYTES = 16;

/** Error codes the relay answers with (docs/relay-protocol.md §4). */
export type RelayErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'BAD_SIGNATURE'
  | 'UNKNOWN_USER'
  | 'RATE_LIMITED'
  | 'MAILBOX_FULL'
  | 'TOO_LARGE'
  | 'UNAVAILABLE'
  | 'REVOKED'
  | 'INTERNAL';

/** Every relay error code, in docs/relay-protocol.md §4 order. */
export const RELAY_ERROR_CODES: readonly RelayErrorCode[] = Object.freeze([
  'BAD_REQUEST',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'BAD_SIGNATURE',
  'UNKNOWN_USER',
  'RATE_LIMITED',
  'MAILBOX_FULL',
  'TOO_LARGE',
  'UNAVAILABLE',
  'REVOKED',
  'INTERNAL',
]);

/** A message to one device mailbox. */
export interface OutboundMessage {
  readonly to: Address;
  readonly frame: Uint8Array;
  /**
   * The version of the recipient user's device list (protocol §3.3) the sender encrypted
   * for; 0 or absent when it knows none. A relay holding a different version refuses the
   * whole send with DEVICE_MISMATCH.
   */
  readonly listVersion?: number;
  /**
   * `true` when the application itself is talking to this user: a message the user sent,
   * or a copy of it to the sender's own devices. Protocol traffic core sends on its own
   * (group key requests, sender-key distributions, group control messages, receipts,
   * signals) leaves it unset. A transport may set up a direct path (which shows the peer
   * this device's network addresses) only for such sends: a stranger can make core send
   * to it, for example by adding this device to a group (WebRTC review 2, finding 1).
   * Local only: never encoded, so the relay never learns it; transports without direct
   * paths ignore it.
   *
   * @example
   * ```ts
   * await transport.send([{ to: bob, frame, listVersion: 3, contact: true }]); // client.send
   * ```
   */
  readonly contact?: boolean;
}

/** A user and the version of its device list (DEVICE_MISMATCH; 0: the relay holds none). */
export interface UserListVersion {
  readonly userId: string;
  readonly listVersion: number;
}

/** A message taken from this device's mailbox. */
export interface DeliveredMessage {
  /** Relay-assigned id, used to acknowledge. */
  readonly id: string;
  /** The sender, as authenticated by the relay. */
  readonly from: Address;
  /** When the relay accepted it (ms since the epoch). */
  readonly receivedAt: number;
  readonly frame: Uint8Array;
}

/** Every frame of the relay protocol. */
export type RelayFrame =
  | { readonly kind: 'hello'; readonly relayId: string; readonly challenge: Uint8Array; readonly serverTime: number; readonly maxMessage: number }
  | { readonly kind: 'auth'; readonly certificate: Uint8Array; readonly signature: Uint8Array; readonly challenge: Uint8Array; readonly token: string }
  | { readonly kind: 'auth-ok'; readonly sessionToken: string; readonly oneTimePrekeys: number; readonly pqPrekeys: number }
  | { readonly kind: 'send'; readonly messages: readonly OutboundMessage[] }
  | { readonly kind: 'send-shared'; readonly recipients: readonly SharedRecipient[]; readonly frame: Uint8Array }
  | { readonly kind: 'deliver'; readonly messages: readonly DeliveredMessage[] }
  | { readonly kind: 'fetch'; readonly waitMs: number; readonly max: number }
  | { readonly kind: 'ack'; readonly ids: readonly string[] }
  | { readonly kind: 'publish-prekeys'; readonly upload: Uint8Array }
  | { readonly kind: 'fetch-bundles'; readonly userId: string; readonly skip?: readonly string[] }
  | { readonly kind: 'bundles'; readonly bundles: readonly Uint8Array[]; readonly deviceList: Uint8Array | undefined }
  | { readonly kind: 'publish-device-list'; readonly deviceList: Uint8Array }
  | { readonly kind: 'provision-put'; readonly channel: Uint8Array; readonly sealed: Uint8Array }
  | { readonly kind: 'provision-take'; readonly channel: Uint8Array; readonly waitMs: number }
  | { readonly kind: 'provision'; readonly sealed: Uint8Array | undefined }
  | { readonly kind: 'ok' }
  | { readonly kind: 'error'; readonly code: RelayErrorCode; readonly retryAfterMs: number; readonly message: string }
  | { readonly kind: 'prekeys-low'; readonly oneTimePrekeys: number; readonly pqPrekeys: number }
  | { readonly kind: 'device-mismatch'; readonly users: readonly UserListVersion[] };

/** The kind byte of each frame (docs/relay-protocol.md §3). */
export const RELAY_FRAME_KINDS = Object.freeze({
  hello: 0x01,
  auth: 0x02,
  'auth-ok': 0x03,
  send: 0x10,
  'send-shared': 0x11,
  deliver: 0x12,
  fetch: 0x13,
  ack: 0x14,
  'publish-prekeys': 0x20,
  'fetch-bundles': 0x21,
  bundles: 0x22,
  'publish-device-list': 0x23,
  'provision-put': 0x24,
  'provision-take': 0x25,
  provision: 0x26,
  ok: 0x30,
  error: 0x31,
  'prekeys-low': 0x32,
  'device-mismatch': 0x33,
} satisfies Record<RelayFrame['kind'], number>);

const KIND_BY_BYTE = new Map<number, RelayFrame['kind']>(
  Object.entries(RELAY_FRAME_KINDS).map(([k, v]) => [v, k as RelayFrame['kind']]),
);

/** A decoded frame with its request id. */
export interface RelayEnvelope {
  readonly requestId: number;
  readonly frame: RelayFrame;
}

function writeAddress(w: ByteWriter, a: Address): void {
  w.string8(a.userId).string8(a.deviceId);
}

function readAddress(r: ByteReader, field: string): Address {
  const at = r.offset;
  const u = r.string8(`${field}.userId`);
  const d = r.string8(`${field}.deviceId`);
  try {
    return { userId: toUserId(u), deviceId: toDeviceId(d) };
  } catch {
    throw r.fail(field, 'invalid address', at);
  }
}

/** A string8 that `check` accepts as an id; a CodecError naming `what` at its offset otherwise. */
function readId(r: ByteReader, field: string, check: (id: string) => unknown, what: string): string {
  const at = r.offset;
  const id = r.string8(field);
  try {
    check(id);
  } catch {
    throw r.fail(field, `invalid ${what}`, at);
  }
  return id;
}

const readUserId = (r: ByteReader, field: string): string => readId(r, field, toUserId, 'user id');
const readDeviceId = (r: ByteReader, field: string): string => readId(r, field, toDeviceId, 'device id');

function readWait(r: ByteReader, field: string, max: number): number {
  const at = r.offset;
  const waitMs = r.u32(field);
  if (waitMs > max) throw r.fail(field, `over ${max}`, at);
  return waitMs;
}

/** A bytes16 field whose empty value means "none" (BUNDLES deviceList, PROVISION sealed). */
function readOptional16(r: ByteReader, field: string, max: number): Uint8Array | undefined {
  const bytes = r.bytes16(field, max);
  return bytes.length === 0 ? undefined : bytes;
}

function count(r: ByteReader, field: string, max: number): number {
  const at = r.offset;
  const n = r.u16(field);
  if (n > max) throw r.fail(field, `count ${n} over ${max}`, at);
  return n;
}

/**
 * Encodes a frame.
 *
 * @example
 * ```ts
 * const bytes = encodeRelayFrame(7, { kind: 'fetch-bundles', userId: 'bob' });
 * ```
 */
export function encodeRelayFrame(requestId: number, frame: RelayFrame): Uint8Array {
  const w = new ByteWriter(64).u8(RELAY_PROTOCOL_VERSION).u8(RELAY_FRAME_KINDS[frame.kind]).u32(requestId);
  switch (frame.kind) {
    case 'hello':
      w.string8(frame.relayId).fixed(frame.challenge, 32).u64(frame.serverTime).u32(frame.maxMessage);
      break;
    case 'auth':
      w.bytes16(frame.certificate).fixed(frame.signature, 64).fixed(frame.challenge, 32).bytes16(new TextEncoder().encode(frame.token));
      break;
    case 'auth-ok':
      w.string8(frame.sessionToken).u32(frame.oneTimePrekeys).u32(frame.pqPrekeys);
      break;
    case 'send':
      w.u16(frame.messages.length);
      for (const m of frame.messages) {
        writeAddress(w, m.to);
        w.u32(m.listVersion ?? 0).bytes32(m.frame);
      }
      break;
    case 'send-shared':
      w.u16(frame.recipients.length);
      for (const r of frame.recipients) {
        writeAddress(w, r.to);
        w.u32(r.listVersion ?? 0);
      }
      w.bytes32(frame.frame);
      break;
    case 'deliver':
      w.u16(frame.messages.length);
      for (const m of frame.messages) {
        w.string8(m.id);
        writeAddress(w, m.from);
        w.u64(m.receivedAt).bytes32(m.frame);
      }
      break;
    case 'fetch':
      w.u32(frame.waitMs).u16(frame.max);
      break;
    case 'ack':
      w.u16(frame.ids.length);
      for (const id of frame.ids) w.string8(id);
      break;
    case 'publish-prekeys':
      w.bytes32(frame.upload);
      break;
    case 'fetch-bundles': {
      // `skip` (relay-protocol.md FETCH_BUNDLES): devices whose bundles the caller does not need.
      // An empty list is left out entirely: the request is then byte for byte the older form,
      // which a relay from before `skip` also reads.
      const skip = frame.skip ?? [];
      w.string8(frame.userId);
      if (skip.length > 0) w.u16(skip.length);
      for (const d of skip) w.string8(d);
      break;
    }
    case 'bundles':
      w.u16(frame.bundles.length);
      for (const b of frame.bundles) w.bytes16(b);
      w.bytes16(frame.deviceList ?? new Uint8Array(0));
      break;
    case 'publish-device-list':
      w.bytes16(frame.deviceList);
      break;
    case 'provision-put':
      w.fixed(frame.channel, PROVISION_CHANNEL_BYTES).bytes16(frame.sealed);
      break;
    case 'provision-take':
      w.fixed(frame.channel, PROVISION_CHANNEL_BYTES).u32(frame.waitMs);
      break;
    case 'provision':
      w.bytes16(frame.sealed ?? new Uint8Array(0));
      break;
    case 'ok':
      break;
    case 'error':
      w.string8(frame.code).u32(frame.retryAfterMs).bytes16(new TextEncoder().encode(frame.message.slice(0, 1000)));
      break;
    case 'prekeys-low':
      w.u32(frame.oneTimePrekeys).u32(frame.pqPrekeys);
      break;
    case 'device-mismatch':
      w.u16(frame.users.length);
      for (const u of frame.users) w.string8(u.userId).u32(u.listVersion);
      break;
  }
  return w.finish();
}

/**
 * Decodes a frame. Throws `CodecError` (naming field and offset) on anything malformed,
 * oversized, or with trailing bytes.
 *
 * @example
 * ```ts
 * const { requestId, frame } = decodeRelayFrame(bytes);
 * if (frame.kind === 'deliver') for (const m of frame.messages) handle(m);
 * ```
 */
export function decodeRelayFrame(bytes: Uint8Array): RelayEnvelope {
  const r = new ByteReader(bytes, 'RelayFrame', RELAY_LIMITS.maxFrame);
  r.enumU8('version', [RELAY_PROTOCOL_VERSION]);
  const kindAt = r.offset;
  const kind = KIND_BY_BYTE.get(r.u8('kind'));
  if (!kind) throw r.fail('kind', 'unknown frame kind', kindAt);
  const requestId = r.u32('requestId');
  let frame: RelayFrame;
  switch (kind) {
    case 'hello':
      frame = { kind, relayId: r.string8('relayId'), challenge: r.fixed('challenge', 32), serverTime: r.u64('serverTime'), maxMessage: r.u32('maxMessage') };
      break;
    case 'auth': {
      const certificate = r.bytes16('certificate', 512);
      const signature = r.fixed('signature', 64);
      const challenge = r.fixed('challenge', 32);
      const at = r.offset;
      const raw = r.bytes16('token', RELAY_LIMITS.maxToken);
      let token: string;
      try {
        token = new TextDecoder('utf-8', { fatal: true }).decode(raw);
      } catch {
        throw r.fail('token', 'malformed UTF-8', at);
      }
      frame = { kind, certificate, signature, challenge, token };
      break;
    }
    case 'auth-ok':
      frame = { kind, sessionToken: r.string8('sessionToken'), oneTimePrekeys: r.u32('oneTimePrekeys'), pqPrekeys: r.u32('pqPrekeys') };
      break;
    case 'send': {
      const n = count(r, 'count', RELAY_LIMITS.maxRecipients);
      const messages: OutboundMessage[] = [];
      for (let i = 0; i < n; i++) {
        messages.push({ to: readAddress(r, 'to'), listVersion: r.u32('listVersion'), frame: r.bytes32('frame', RELAY_LIMITS.maxMessage) });
      }
      frame = { kind, messages };
      break;
    }
    case 'send-shared': {
      const n = count(r, 'count', RELAY_LIMITS.maxRecipients);
      const recipients: SharedRecipient[] = [];
      for (let i = 0; i < n; i++) recipients.push({ to: readAddress(r, 'to'), listVersion: r.u32('listVersion') });
      frame = { kind, recipients, frame: r.bytes32('frame', RELAY_LIMITS.maxMessage) };
      break;
    }
    case 'deliver': {
      const n = count(r, 'count', RELAY_LIMITS.maxDeliver);
      const messages: DeliveredMessage[] = [];
      for (let i = 0; i < n; i++) {
        const id = r.string8('id');
        if (id.length === 0 || id.length > RELAY_LIMITS.maxMessageId) throw r.fail('id', 'bad message id length');
        messages.push({ id, from: readAddress(r, 'from'), receivedAt: r.u64('receivedAt'), frame: r.bytes32('frame', RELAY_LIMITS.maxMessage) });
      }
      frame = { kind, messages };
      break;
    }
    case 'fetch': {
      const waitMs = readWait(r, 'waitMs', RELAY_LIMITS.maxWaitMs);
      const maxAt = r.offset;
      const max = r.u16('max');
      if (max < 1 || max > RELAY_LIMITS.maxDeliver) throw r.fail('max', `not 1..${RELAY_LIMITS.maxDeliver}`, maxAt);
      frame = { kind, waitMs, max };
      break;
    }
    case 'ack': {
      const n = count(r, 'count', RELAY_LIMITS.maxAck);
      const ids: string[] = [];
      for (let i = 0; i < n; i++) ids.push(r.string8('id'));
      frame = { kind, ids };
      break;
    }
    case 'publish-prekeys':
      frame = { kind, upload: r.bytes32('upload', RELAY_LIMITS.maxFrame) };
      break;
    case 'fetch-bundles': {
      const userId = readUserId(r, 'userId');
      // A request without the count (an older client) skips nothing.
      const n = r.remaining === 0 ? 0 : count(r, 'skip', RELAY_LIMITS.maxBundles);
      const skip: string[] = [];
      for (let i = 0; i < n; i++) skip.push(readDeviceId(r, `skip[${i}]`));
      frame = { kind, userId, skip };
      break;
    }
    case 'bundles': {
      const n = count(r, 'count', RELAY_LIMITS.maxBundles);
      const bundles: Uint8Array[] = [];
      for (let i = 0; i < n; i++) bundles.push(r.bytes16('bundle', 4096));
      frame = { kind, bundles, deviceList: readOptional16(r, 'deviceList', RELAY_LIMITS.maxDeviceList) };
      break;
    }
    case 'publish-device-list': {
      const at = r.offset;
      const deviceList = r.bytes16('deviceList', RELAY_LIMITS.maxDeviceList);
      if (deviceList.length === 0) throw r.fail('deviceList', 'empty', at);
      frame = { kind, deviceList };
      break;
    }
    case 'provision-put': {
      const channel = r.fixed('channel', PROVISION_CHANNEL_BYTES);
      // Never empty: an empty PROVISION means "nothing arrived", so an empty blob could not be told apart.
      const at = r.offset;
      const sealed = r.bytes16('sealed', RELAY_LIMITS.maxProvisionBlob);
      if (sealed.length === 0) throw r.fail('sealed', 'empty', at);
      frame = { kind, channel, sealed };
      break;
    }
    case 'provision-take':
      frame = { kind, channel: r.fixed('channel', PROVISION_CHANNEL_BYTES), waitMs: readWait(r, 'waitMs', RELAY_LIMITS.maxProvisionWaitMs) };
      break;
    case 'provision':
      frame = { kind, sealed: readOptional16(r, 'sealed', RELAY_LIMITS.maxProvisionBlob) };
      break;
    case 'ok':
      frame = { kind };
      break;
    case 'error': {
      const at = r.offset;
      const code = r.string8('code') as RelayErrorCode;
      if (!RELAY_ERROR_CODES.includes(code)) throw r.fail('code', 'unknown error code', at);
      const retryAfterMs = r.u32('retryAfterMs');
      const mAt = r.offset;
      let message: string;
      try {
        message = new TextDecoder('utf-8', { fatal: true }).decode(r.bytes16('message', 4000));
      } catch {
        throw r.fail('message', 'malformed UTF-8', mAt);
      }
      frame = { kind, code, retryAfterMs, message };
      break;
    }
    case 'prekeys-low':
      frame = { kind, oneTimePrekeys: r.u32('oneTimePrekeys'), pqPrekeys: r.u32('pqPrekeys') };
      break;
    case 'device-mismatch': {
      const n = count(r, 'count', RELAY_LIMITS.maxMismatchUsers);
      const users: UserListVersion[] = [];
      for (let i = 0; i < n; i++) users.push({ userId: readUserId(r, 'userId'), listVersion: r.u32('listVersion') });
      frame = { kind, users };
      break;
    }
  }
  r.end();
  return { requestId, frame };
}
