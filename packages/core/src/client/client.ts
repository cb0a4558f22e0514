/**
 * The Deadbolt client: identities, prekeys, 1:1 messaging, history and trust over any
 * storage and transport adapter (docs/protocol.md §11).
 *
 * Exactly-once processing (SECURITY.md E32, D24): an inbound frame is decrypted and its
 * message written to history **in the same atomic batch** as the advanced session state;
 * only then does the handler resolve and the transport acknowledge the frame. A frame
 * delivered again after a crash is recognised by the ratchet as a duplicate and
 * acknowledged without a second event or history entry.
 *
 * @module
 */
import {
  createAsyncLock,
  isDeadboltError,
  UsageError,
  userId as toUserId,
  deviceId as toDeviceId,
  type Address,
  type ErrorCode,
  type InboundFrame,
  type OutboundMessage,
  type SignalSenderInfo,
  type SignallingChannel,
  type StorageAdapter,
  type StorageOp,
  type TransportAdapter,
  type TransportState,
  type UserId,
} from '@deadbolt/spec';
import { createDefaultCryptoProvider } from '#crypto-default';
import { toHex, utf8 } from '../codec/bytes.js';
import { MessageType, WIRE_VERSION } from '../protocol/constants.js';
import { equalBytes } from '../crypto/checks.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { encodeDeviceCertificate } from '../protocol/device-certificate.js';
import { decodePrekeyBundle } from '../protocol/prekey-bundle.js';
import { encodePrekeyUpload } from '../protocol/prekey-upload.js';
import type { SafetyNumber } from '../protocol/safety-number.js';
import { openRecord, sealRecord } from '../session/record-envelope.js';
import { failInterruptedSends, pendingSendMarker, settleSend } from './interrupted-sends.js';
import { createEncryptedStorage } from '../storage/encrypted-storage.js';
import { createSessionManager, type DecryptOptions, type DecryptResult, type SessionLimits, type SessionManager } from '../session/session-manager.js';
import { resolveStorage, resolveTransport, type AdapterConfig, type ModuleLoader } from './adapter-config.js';
import { decodeContent, encodeContent, MAX_MESSAGE_BODY, MAX_SIGNAL_PAYLOAD, type Content } from './content.js';
import {
  approveDevice,
  reachAll as reachUser,
  ensureOwnDeviceList,
  listVersionOf,
  ownDevices,
  refreshDevices,
  revokeDevice,
  sendWithListRefresh,
  type DeviceContext,
  type DeviceInfo,
} from './devices.js';
import { createAnnouncer } from './announcements.js';
import { Emitter, type Subscribe } from './events.js';
import { readonlyTransport, type ReadonlyTransport } from './transport-view.js';
import type { ClientGroupApi, ClientGroups, GroupClientEvents, GroupContext } from './groups.js';
import {
  ClientRecordType,
  encodeConversation,
  encodeStoredMessage,
  historyKeys,
  outgoingMessage,
  readHistoryPage,
  readConversation,
  readStoredGroupMessage,
  readStoredMessage,
  type Conversation,
  type HistoryOptions,
  type DeliveryStatus,
  type ReceivedMessage,
  type StoredGroupMessage,
  type StoredMessage,
} from './history.js';

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** This user. */
  readonly userId: string;
  /** This device. */
  readonly deviceId: string;
  /** A storage adapter, or its configuration (`{ adapter: 'memory' }`). */
  readonly storage: StorageAdapter | AdapterConfig;
  /**
   * Encrypts everything stored at rest with this 32-byte key (docs/protocol.md §7.5),
   * whichever storage adapter is configured. Keep the key outside the store (a platform
   * keystore). A wrong key fails `start` with `STORAGE_ENCRYPTION`.
   */
  readonly encryptionKey?: Uint8Array;
  /** A transport adapter, or its configuration (`{ adapter: 'websocket', options: { url } }`). */
  readonly transport: TransportAdapter | AdapterConfig;
  /** The crypto provider; defaults to the platform's fastest. */
  readonly crypto?: CryptoProvider;
  /** A token from the product's own login, for relays that require one. */
  readonly registrationToken?: string;
  /** Tighter session limits. */
  readonly limits?: Partial<SessionLimits>;
  /** One-time prekeys generated per batch (default 100 X25519 and 20 ML-KEM). */
  readonly prekeyBatch?: { readonly oneTime: number; readonly pqOneTime: number };
  /** The clock, in milliseconds. */
  readonly now?: () => number;
  /**
   * How adapter packages named by configuration are imported; pass
   * `(name) => import(name)` from the application when its package manager isolates
   * dependencies (pnpm). See {@link ModuleLoader}.
   */
  readonly loadModule?: ModuleLoader;
}

/** Events a client emits (noun-verb names); the group events are in {@link GroupClientEvents}. */
export interface ClientEvents extends GroupClientEvents {
  /**
   * A message arrived and is in history (or, `direction: 'outgoing'`, this user sent it
   * from another device). Emitted once per message, and again at the next start only if
   * the process stopped before the event was handled, then with `redelivered: true`
   * (docs/protocol.md §11.4). A listener that returns a promise has handled the message
   * once it settles. Attach listeners before `start()`: that is when redeliveries come.
   */
  'message-received': ReceivedMessage;
  /** A frame was refused (undecryptable, forged, malformed) and dropped. */
  'message-rejected': { readonly from: Address; readonly code: ErrorCode };
  /** A contact's account key changed; sending to them is refused until accepted or rejected. */
  'identity-changed': { readonly userId: UserId; readonly accountKey: Uint8Array };
  /** A peer device started a new session with this device. */
  'session-established': { readonly peer: Address };
  /** The transport's connection state changed. */
  'transport-state-changed': { readonly state: TransportState };
  /** New prekeys were published. */
  'prekeys-published': { readonly oneTime: number; readonly pqOneTime: number };
  /**
   * A user's device list changed (docs/protocol.md §3.3): devices were linked or revoked.
   * `removed` are the devices whose sessions were dropped.
   */
  'devices-changed': { readonly userId: UserId; readonly listVersion: number; readonly removed: readonly Address[] };
  /**
   * The directory offered a device the user's signed device list does not name (revoked,
   * or injected by the relay): it gets no session and nothing is sent to it.
   */
  'device-rejected': { readonly userId: UserId; readonly deviceId: string; readonly reason: ErrorCode };
  /** A background failure (for example replenishing prekeys). */
  error: unknown;
}

/**
 * A Deadbolt client. Create with {@link createClient}.
 *
 * @example
 * ```ts
 * const client = await createClient({
 *   userId: 'alice',
 *   deviceId: 'laptop',
 *   storage: { adapter: 'memory' },
 *   transport: { adapter: 'websocket', options: { url: 'ws://127.0.0.1:8080/v1/ws' } },
 * });
 * client.on('message-received', (m) => console.log(m.sender.userId, new TextDecoder().decode(m.body)));
 * await client.start();
 * await client.send('bob', 'hello');
 * ```
 */
export interface Client extends ClientGroupApi {
  /** This device's address. */
  readonly address: Address;
  /** The session manager underneath (for advanced use). */
  readonly sessions: SessionManager;
  /**
   * A read-only view of the transport this client runs on: the instance passed in, or the
   * one created from its configuration (so that an application configured by name can
   * still reach a transport's own API, such as the WebRTC transport's `path()`,
   * `onPathChange` and `directLinksDisabled`). The view offers the transport's `state`,
   * `maxFrameSize`, `specificationVersion`, `onStateChange`, `onNotice` and the adapter's
   * own extras; every member that sends, receives, connects, closes or changes routing
   * (`onFrame`, `send`, `connect`, `close`, `attachSignalling`, `preconnect`...) is left
   * out and throws a `UsageError` `INVALID_ARGUMENT` naming it: the client registers the
   * transport's single frame handler and signalling channel, and a second one would
   * replace them, so frames would be acknowledged to the relay and never decrypted
   * (transport-view.ts; hostile review 13, finding 2). The transport is owned by the
   * client: `close()` closes it.
   *
   * @example
   * ```ts
   * const webrtc = client.transport as ReadonlyTransport<WebRtcTransport>;
   * webrtc.onPathChange(({ peer, path }) => console.log(peer.userId, path));
   * ```
   */
  readonly transport: ReadonlyTransport;
  /** Subscribes to an event; returns a function that unsubscribes. */
  readonly on: Subscribe<ClientEvents>;
  /** Creates the identity on first run, connects, and publishes prekeys. */
  start(): Promise<void>;
  /** Sends to every device of a user, and a copy to this user's other devices. */
  send(to: string, body: string | Uint8Array): Promise<StoredMessage>;
  /** Conversations, most recent first. */
  conversations(): Promise<Conversation[]>;
  /**
   * A conversation's messages, oldest first: the newest `limit` (default 100, at most
   * 1,000), or with `before` (a message's `sortKey`) the newest `limit` older than it.
   */
  history(userId: string, options?: HistoryOptions): Promise<StoredMessage[]>;
  /** The safety number with a contact. */
  safetyNumber(userId: string): Promise<SafetyNumber>;
  /**
   * Compares a safety number the user read or scanned (60 digits, or the QR payload) and
   * marks the contact verified when it matches.
   */
  verifySafetyNumber(userId: string, scanned: string | Uint8Array): Promise<boolean>;
  /** The safety number with a contact's pending (changed) key, to verify before accepting. */
  pendingSafetyNumber(userId: string): Promise<SafetyNumber>;
  /**
   * Accepts a contact's changed account key: `expectedKey` is the key from the
   * `identity-changed` event the user saw (the contact is then unverified).
   */
  acceptIdentity(userId: string, expectedKey: Uint8Array): Promise<void>;
  /** Refuses a contact's changed account key and drops its sessions. */
  rejectIdentity(userId: string): Promise<void>;
  /** This user's devices, from its signed device list (docs/protocol.md §3.3). */
  devices(): Promise<DeviceInfo[]>;
  /**
   * Approves a new device of this user from the code it shows (§3.4): signs and publishes
   * the next device list with it, and leaves the sealed answer at the relay. With
   * `canManageDevices` the new device also receives the account key, so it can link and
   * revoke devices itself. Needs this device to hold the account key.
   */
  approveDevice(code: string, options?: { readonly canManageDevices?: boolean }): Promise<DeviceInfo>;
  /** Revokes one of this user's devices: it receives nothing new (§3.4). */
  revokeDevice(deviceId: string): Promise<void>;
  /** Disconnects and closes the storage and transport. Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_BATCH = { oneTime: 100, pqOneTime: 20 };
const REPLENISH_INTERVAL_MS = 60_000;
const REJECTED_KINDS = new Set(['protocol', 'codec']);
/** Bound of the in-memory set of users written to in this run. */
const MAX_CONTACTED_CACHE = 10_000;

/**
 * Creates a client from adapter instances or configuration objects.
 *
 * @example
 * ```ts
 * // Adapters by configuration (a config file or environment variable can supply this):
 * const client = await createClient({
 *   userId: 'alice', deviceId: 'laptop',
 *   storage: JSON.parse(process.env.DEADBOLT_STORAGE ?? '{"adapter":"memory"}'),
 *   transport: { adapter: 'http-polling', options: { url: 'http://127.0.0.1:8080' } },
 * });
 * // ...or instances:
 * const other = await createClient({ userId: 'bob', deviceId: 'phone', storage: createMemoryStorage(), transport });
 * ```
 */
export async function createClient(options: ClientOptions): Promise<Client> {
  const address: Address = { userId: toUserId(options.userId), deviceId: toDeviceId(options.deviceId) };
  const crypto = options.crypto ?? createDefaultCryptoProvider();
  const resolved = await resolveStorage(options.storage, options.loadModule);
  const storage = options.encryptionKey === undefined ? resolved : createEncryptedStorage(resolved, { key: options.encryptionKey, crypto });
  const transport = await resolveTransport(options.transport, options.loadModule);
  const now = options.now ?? Date.now;
  const batch = options.prekeyBatch ?? DEFAULT_BATCH;
  const sessions = createSessionManager({ storage, crypto, now, ...(options.limits ? { limits: options.limits } : {}) });
  const events = new Emitter<ClientEvents>();
  /** Users whose `contacted` record this run has written (a cache: the record is the truth). */
  const contacted = new Set<string>();
  /** Markers of committed messages whose events are not yet handled (§11.4). */
  const announcer = createAnnouncer(storage, crypto, (e) => events.emit('error', e));
  const sendQueue = createAsyncLock();
  const prekeyQueue = createAsyncLock();
  const unsubscribe: (() => void)[] = [];
  let started: Promise<void> | undefined;
  /** Handlers of the transport's signalling channel (docs/protocol.md §11.1, SIGNAL). */
  const signalHandlers = new Set<(from: Address, payload: Uint8Array, sender: SignalSenderInfo) => void>();
  let signallingAttached = false;
  let replenishing = false;
  let lastReplenish = -Infinity;
  let closed = false;

  const assertOpen = (): void => {
    if (closed) throw new UsageError('CLOSED', { message: 'client is closed', details: { what: 'client' } });
  };
  /** Resolves once `start()` has; `CLOSED` after close, `NOT_INITIALIZED` before any start. */
  async function whenStarted(): Promise<void> {
    assertOpen();
    if (!started) throw new UsageError('NOT_INITIALIZED', { message: 'call start() first', details: { what: 'client' } });
    await started;
  }

  const conversationOp = (user: string, at: number): StorageOp => ({
    type: 'put',
    key: historyKeys.conversation(user),
    value: sealRecord(crypto, ClientRecordType.CONVERSATION, encodeConversation({ lastActivity: at })),
  });
  const messageOp = (m: StoredMessage, messageId: Uint8Array): StorageOp => ({
    type: 'put',
    key: historyKeys.message(m.conversation, m.sortKey),
    value: sealRecord(crypto, ClientRecordType.MESSAGE, encodeStoredMessage(m, messageId)),
  });

  /**
   * Emits a committed message's event, and once its listeners are done (their promises
   * settled) records it as handled (§11.4). Never awaited by the receive path: a listener
   * may itself send, which needs the transport to go on.
   */
  function announceMessage(m: StoredMessage, redelivered: boolean): void {
    const key = announcer.key('d', m.conversation, m.sortKey);
    if (!announcer.begin(key)) return; // announced already in this run (a sweep came first)
    const localId = `d/${m.conversation}/${m.sortKey}`;
    void events.emitSettled('message-received', { ...m, localId, redelivered }).then(() => announcer.done(key));
  }
  function announceGroupMessage(m: StoredGroupMessage, redelivered: boolean): void {
    const key = announcer.key('g', m.groupId, m.sortKey);
    if (!announcer.begin(key)) return;
    const localId = `g/${m.groupId}/${m.sortKey}`;
    void events.emitSettled('group-message-received', { ...m, localId, redelivered }).then(() => announcer.done(key));
  }

  /**
   * Announces every stored marker this run has not announced (§11.4): at start, what an
   * earlier run committed but did not see handled (`redelivered`); after a group drain that
   * failed part way, what this run committed but could not announce yet.
   */
  function announceStored(redelivered: boolean): Promise<void> {
    return announcer.scan(async (p) => {
      const key = p.kind === 'd' ? historyKeys.message(p.conversation, p.sortKey) : historyKeys.groupMessage(p.conversation, p.sortKey);
      const value = await storage.get(key);
      if (value === undefined) return announcer.done(p.key); // the message is gone: nothing to announce
      let message: StoredMessage | StoredGroupMessage;
      try {
        message =
          p.kind === 'd'
            ? openRecord(crypto, key, ClientRecordType.MESSAGE, value, (r) => readStoredMessage(r, toUserId(p.conversation), p.sortKey))
            : openRecord(crypto, key, ClientRecordType.GROUP_MESSAGE, value, (r) => readStoredGroupMessage(r, p.conversation, p.sortKey));
      } catch (e) {
        // A corrupted record is reported, not trusted and not announced; the client goes on.
        if (!isDeadboltError(e, 'CORRUPTED_RECORD')) throw e;
        events.emit('error', e);
        return announcer.done(p.key);
      }
      if (p.kind === 'd') announceMessage(message as StoredMessage, redelivered);
      else announceGroupMessage(message as StoredGroupMessage, redelivered);
    });
  }

  /** Publishes a pending upload, then forgets it (docs/protocol.md §11.3). */
  async function publishPending(): Promise<void> {
    const key = historyKeys.pendingUpload();
    const pending = await storage.get(key);
    if (!pending) return;
    const upload = openRecord(crypto, key, ClientRecordType.PENDING_UPLOAD, pending, (r) => r.fixed('upload', r.remaining));
    await transport.publishPrekeys(upload);
    await storage.batch([{ type: 'delete', key }]);
  }

  /**
   * Generates prekeys and publishes them. The pending upload is written in the same batch
   * as the private keys, so a crash anywhere re-publishes the same keys (SECURITY.md D25).
   */
  function replenish(counts: { oneTime: number; pqOneTime: number }): Promise<void> {
    return prekeyQueue(async () => {
      await sessions.generatePrekeys({
        ...counts,
        extraOps: (pub) => [
          { type: 'put', key: historyKeys.pendingUpload(), value: sealRecord(crypto, ClientRecordType.PENDING_UPLOAD, encodePrekeyUpload(pub)) },
        ],
      });
      await publishPending();
      events.emit('prekeys-published', counts);
    });
  }

  /**
   * The signalling channel a transport may ask for (`attachSignalling`, transport.ts):
   * signals are sealed with the pairwise session like messages, and what arrives is
   * handed over only from a sender whose account key is the trusted one (SECURITY.md E35).
   */
  const signalling: SignallingChannel = {
    maxPayload: MAX_SIGNAL_PAYLOAD,
    async send(to: Address, payload: Uint8Array, deliver: (message: OutboundMessage) => Promise<void>): Promise<void> {
      assertOpen();
      if (!(payload instanceof Uint8Array) || payload.length > MAX_SIGNAL_PAYLOAD) {
        throw new UsageError('INVALID_ARGUMENT', { message: `signal payload must be a Uint8Array of at most ${MAX_SIGNAL_PAYLOAD} bytes`, details: { field: 'payload', expected: `at most ${MAX_SIGNAL_PAYLOAD} bytes` } });
      }
      if (typeof deliver !== 'function') throw new UsageError('INVALID_ARGUMENT', { message: 'deliver must be a function', details: { field: 'deliver', expected: 'a function' } });
      const peer: Address = { userId: toUserId(to?.userId), deviceId: toDeviceId(to?.deviceId) };
      if (peer.userId === address.userId && peer.deviceId === address.deviceId) {
        throw new UsageError('INVALID_ARGUMENT', { message: 'cannot signal this device itself', details: { field: 'to', expected: 'another device' } });
      }
      const content = encodeContent({ kind: 'signal', messageId: crypto.randomBytes(16), sentAt: now(), payload });
      // Like send(): a relay naming an out-of-date device list gets the user refreshed and
      // the signal sealed again (a revoked device then has no session: NO_SESSION).
      await sendWithListRefresh(
        async () => {
          const listVersion = await listVersionOf(sessions, peer.userId);
          return { to: peer, frame: await sessions.encrypt(peer, content), listVersion };
        },
        deliver,
        async () => {
          await discover(peer.userId).catch((err: unknown) => events.emit('error', err));
        },
      );
    },
    deviceListVersion: () => listVersionOf(sessions, address.userId),
    onSignal(handler: (from: Address, payload: Uint8Array, sender: SignalSenderInfo) => void): () => void {
      if (typeof handler !== 'function') throw new UsageError('INVALID_ARGUMENT', { message: 'handler must be a function', details: { field: 'handler', expected: 'a function' } });
      signalHandlers.add(handler);
      return () => signalHandlers.delete(handler);
    },
  };

  async function handleFrame(frame: InboundFrame): Promise<void> {
    // Group messages, fanned out by the relay, are not pairwise messages (groups.ts).
    if (frame.bytes[0] === WIRE_VERSION && frame.bytes[1] === MessageType.GROUP) return (await groups()).receive(frame);
    let message: StoredMessage | undefined;
    let signal: Uint8Array | undefined;
    let groupPayload = false;
    try {
      const decryptOptions: DecryptOptions = {
        extraOps: async (r) => {
          const content: Content = decodeContent(r.plaintext);
          let conversation: UserId;
          let direction: StoredMessage['direction'];
          if (content.kind === 'device-hello') {
            // A new device of this user announcing itself: the session it carried is the point.
            if (r.sender.userId !== address.userId) throw new UsageError('INVALID_ARGUMENT', { message: 'device hello from another user', details: { field: 'content', expected: 'own device' } });
            return [];
          }
          if (content.kind === 'signal') {
            // For the transport only: never shown, never stored (the session step is committed).
            signal = content.payload;
            return [];
          }
          if (content.kind === 'group') {
            // Into the group inbox, in this batch; processed once it is committed (groups.ts).
            groupPayload = true;
            return (await groups()).inboxOps(r, content.payload);
          }
          if (content.kind === 'sent-sync') {
            // Only this user's own devices may tell us what "we" sent.
            if (r.sender.userId !== address.userId) throw new UsageError('INVALID_ARGUMENT', { message: 'sync from another user', details: { field: 'content', expected: 'own device' } });
            conversation = content.recipient;
            direction = 'outgoing';
          } else {
            conversation = r.sender.userId;
            direction = 'incoming';
          }
          const id = toHex(content.messageId);
          // A second copy of a message already in history (the sender encrypted it again:
          // a send split between a direct link and the relay, then retried) is dropped:
          // the ratchet step commits, nothing else (§11.2).
          const seen = historyKeys.seen(conversation, direction, id);
          if ((await storage.get(seen)) !== undefined) return [];
          const receivedAt = now();
          message = {
            id,
            conversation,
            direction,
            sender: r.sender,
            sentAt: content.sentAt,
            receivedAt,
            status: direction === 'incoming' ? 'received' : 'sent',
            untrusted: r.identityChanged,
            sortKey: historyKeys.sortKey(receivedAt, direction, id, toHex(crypto.randomBytes(4))),
            body: content.body,
          };
          return [
            messageOp(message, content.messageId),
            conversationOp(conversation, message.receivedAt),
            { type: 'put', key: seen, value: sealRecord(crypto, ClientRecordType.SEEN, new Uint8Array(0)) },
            announcer.op('d', conversation, message.sortKey), // §11.4: announced at least once
          ];
        },
      };
      let result: DecryptResult;
      try {
        result = await sessions.decrypt(frame.from, frame.bytes, decryptOptions);
      } catch (e) {
        if (!isDeadboltError(e, 'DEVICE_NOT_CURRENT')) throw e;
        // A new session from a device the stored list does not name: linked since this
        // device last looked, or revoked. The directory is asked once (rate-limited by the
        // relay); if the signed list still does not name it, the frame is refused below.
        await discover(frame.from.userId).catch((err: unknown) => events.emit('error', err));
        result = await sessions.decrypt(frame.from, frame.bytes, decryptOptions);
      }
      if (result.sessionCreated) events.emit('session-established', { peer: result.sender });
      if (result.identityChanged) events.emit('identity-changed', { userId: result.sender.userId, accountKey: result.senderAccountKey });
      if (message) announceMessage(message, false);
      if (groupPayload) await (await groups()).drain();
      // A signal from a key that is not the trusted one is not heard (SECURITY.md E35).
      if (signal && !result.identityChanged) {
        // A first contact: a user this device never sent a message to (§11.1), told to the
        // transport so that it need not answer strangers (a WebRTC offer reveals addresses).
        const firstContact = result.sender.userId !== address.userId && (await storage.get(historyKeys.contacted(result.sender.userId))) === undefined;
        // Checked last, with nothing awaited between it and the handlers: a device list
        // applied meanwhile (the awaits above) may have revoked the sender, and the
        // transport was told so (`closeLinksTo`); its signal must not reopen a link.
        const current = (await sessions.devices(result.sender.userId)).some((d) => d.deviceId === result.sender.deviceId);
        for (const handler of current ? [...signalHandlers] : []) {
          try {
            handler(result.sender, signal.slice(), { firstContact });
          } catch (e) {
            events.emit('error', e);
          }
        }
      }
    } catch (e) {
      if (isDeadboltError(e, 'DUPLICATE_MESSAGE')) return; // already processed: acknowledge, no second event
      if (isDeadboltError(e, 'DEVICE_NOT_CURRENT')) events.emit('device-rejected', { userId: frame.from.userId, deviceId: frame.from.deviceId, reason: e.code });
      if (isDeadboltError(e) && (REJECTED_KINDS.has(e.kind) || e.code === 'INVALID_ARGUMENT')) {
        // A frame that can never be processed is dropped (acknowledged), and reported
        // without details: the network sees the same acknowledgement either way (E36).
        events.emit('message-rejected', { from: frame.from, code: e.code });
        return;
      }
      throw e; // storage or internal failure: leave unacknowledged for redelivery
    }
  }

  /** What the device functions (devices.ts) need from this client. */
  const deviceContext: DeviceContext = {
    self: address,
    sessions,
    transport,
    rejected: (userId, deviceId, reason) => events.emit('device-rejected', { userId, deviceId, reason }),
    changed: (userId, listVersion, removed, current) => {
      // A transport with its own connections to devices (WebRTC) drops those to revoked ones now.
      try {
        transport.closeLinksTo?.(userId, current);
      } catch (e) {
        events.emit('error', e);
      }
      events.emit('devices-changed', { userId, listVersion, removed });
    },
    error: (e) => events.emit('error', e),
    rereads: new Map(),
    now,
  };

  /** Brings a user's devices in step with the directory and its signed list (devices.ts). */
  const discover = (user: UserId): Promise<Address[]> => refreshDevices(deviceContext, user);
  /** Before a send: reads a user without sessions, and now and then one with listed devices out of reach (devices.ts). */
  const reachAll = (user: UserId): Promise<void> => reachUser(deviceContext, user);

  /**
   * Groups (groups.ts): the group engine over these sessions, this transport and history.
   * Loaded on first use (a group call, a group frame or payload, or group state found at
   * start), so a bundler splits it out and an app that only sends 1:1 messages never
   * downloads it: it is a third of the client's code.
   */
  const groupContext: GroupContext = {
    self: address,
    crypto,
    storage,
    sessions,
    transport,
    now,
    discover,
    reachAll,
    ready: whenStarted,
    emit: (event, payload) => events.emit<keyof GroupClientEvents>(event, payload),
    announceOp: (gid, sortKey) => announcer.op('g', gid, sortKey),
    announce: (m) => announceGroupMessage(m, false),
    sweep: () => announceStored(false),
    error: (e) => events.emit('error', e),
  };
  let groupLayer: ClientGroups | undefined;
  let groupsLoading: Promise<ClientGroups> | undefined;
  function groups(): Promise<ClientGroups> {
    groupsLoading ??= import('./groups.js').then(
      (m) => {
        const layer = m.createClientGroups(groupContext);
        if (closed) layer.close();
        else groupLayer = layer;
        return layer;
      },
      (e: unknown) => {
        groupsLoading = undefined; // a failed load (a chunk that did not download) is tried again
        throw e;
      },
    );
    return groupsLoading;
  }
  /** True if this device has group state, orphans or unprocessed group payloads stored. */
  async function hasGroupState(): Promise<boolean> {
    for (const prefix of [['group'], ['group-orphan']]) if ((await storage.range(prefix, { limit: 1 })).length > 0) return true;
    return false;
  }
  // Not loaded and not loading means no group state: nothing a device change could affect.
  // While loading, the change is handed over once it is loaded.
  const whenGroups = (f: (layer: ClientGroups) => void): void => {
    if (groupLayer !== undefined) f(groupLayer);
    else void groupsLoading?.then(f, () => undefined);
  };
  events.on('devices-changed', (e) => whenGroups((l) => l.devicesChanged(e.userId)));
  events.on('session-established', (e) => whenGroups((l) => l.sessionEstablished(e.peer)));
  const groupApi: ClientGroupApi = {
    createGroup: async (o) => (await groups()).api.createGroup(o),
    groups: async () => (await groups()).api.groups(),
    group: async (id) => (await groups()).api.group(id),
  };

  async function start(): Promise<void> {
    assertOpen();
    const firstRun = !(await storage.get(['identity']));
    if (firstRun) await sessions.createIdentity({ userId: address.userId, deviceId: address.deviceId });
    const certificate = encodeDeviceCertificate(await sessions.certificate());
    const stored = await sessions.certificate();
    if (stored.userId !== address.userId || stored.deviceId !== address.deviceId) {
      throw new UsageError('INVALID_ARGUMENT', { message: 'the stored identity belongs to another device', details: { field: 'deviceId', expected: 'the stored device id' } });
    }
    // Before connecting, so that what an earlier run left comes before anything new:
    // sends it left pending become failed (§11.2), then its unannounced messages (§11.4).
    await failInterruptedSends(storage, crypto, (e) => events.emit('error', e));
    await announceStored(true);
    unsubscribe.push(
      transport.onStateChange((state) => events.emit('transport-state-changed', { state })),
      transport.onNotice((notice) => {
        // At most one replenishment in flight and one per minute: a relay repeating the
        // notice cannot make this device generate keys without bound.
        if (notice.type !== 'prekeys-low' || replenishing || now() - lastReplenish < REPLENISH_INTERVAL_MS) return;
        replenishing = true;
        lastReplenish = now();
        replenish(batch)
          .catch((e: unknown) => events.emit('error', e))
          .finally(() => (replenishing = false));
      }),
      transport.onFrame(handleFrame),
    );
    if (!signallingAttached && typeof transport.attachSignalling === 'function') {
      transport.attachSignalling(signalling);
      signallingAttached = true;
    }
    await transport.connect({
      certificate,
      sign: (relayId, challenge) => sessions.signRelayChallenge(relayId, challenge),
      ...(options.registrationToken !== undefined ? { token: options.registrationToken } : {}),
    });
    // Group payloads a crash left in the inbox, held messages (in the background).
    if (groupLayer !== undefined || (await hasGroupState())) (await groups()).resume();
    if (!(await storage.get(['prekey-meta']))) await replenish(batch);
    else await prekeyQueue(publishPending);
    // This user's signed device list: learnt from the relay, or published (§3.3).
    const own = await ensureOwnDeviceList(deviceContext);
    // Our other devices, so our sent messages appear on them too. A device new to them
    // announces itself, so they start copying to it as well (protocol §11.1). The same
    // directory answer serves both: the relay rate-limits directory reads.
    const before = new Set((await sessions.devices(address.userId)).map((d) => d.deviceId));
    const siblings = await refreshDevices(deviceContext, address.userId, own);
    const fresh = siblings.filter((d) => d.deviceId !== address.deviceId && !before.has(d.deviceId));
    if (fresh.length > 0) {
      const hello = encodeContent({ kind: 'device-hello', messageId: crypto.randomBytes(16), sentAt: now() });
      const outbound = [];
      const listVersion = await listVersionOf(sessions, address.userId);
      for (const device of fresh) outbound.push({ to: device, frame: await sessions.encrypt(device, hello), listVersion });
      await transport.send(outbound);
    }
  }

  async function send(to: string, body: string | Uint8Array): Promise<StoredMessage> {
    await whenStarted();
    const recipient = toUserId(to);
    const bytes = typeof body === 'string' ? utf8(body) : body.slice();
    if (bytes.length > MAX_MESSAGE_BODY) {
      throw new UsageError('INVALID_ARGUMENT', { message: `message body over ${MAX_MESSAGE_BODY} bytes`, details: { field: 'body', expected: `at most ${MAX_MESSAGE_BODY} bytes` } });
    }
    return sendQueue(async () => {
      await reachAll(recipient);
      const messageId = crypto.randomBytes(16);
      const sentAt = now();
      const base = { messageId, sentAt, body: bytes };
      const direct = encodeContent({ kind: 'direct', ...base });
      const sync = encodeContent({ kind: 'sent-sync', ...base, recipient });
      const sortKey = historyKeys.sortKey(sentAt, 'outgoing', toHex(messageId));
      const record = (status: DeliveryStatus): StoredMessage => ({
        ...outgoingMessage({ id: toHex(messageId), sender: address, sentAt, sortKey, body: bytes }, status),
        conversation: recipient,
      });
      // This device chose to write to this user: no longer a first contact (§11.1, SIGNAL).
      // Written with the first message of each run, not with every one.
      const firstThisRun = !contacted.has(recipient);
      await storage.batch([
        messageOp(record('pending'), messageId),
        pendingSendMarker(crypto, 'd', recipient, sortKey), // resolved at the next start if this run dies
        conversationOp(recipient, sentAt),
        ...(firstThisRun ? [{ type: 'put' as const, key: historyKeys.contacted(recipient), value: sealRecord(crypto, ClientRecordType.CONTACTED, new Uint8Array(0)) }] : []),
      ]);
      if (firstThisRun) {
        if (contacted.size >= MAX_CONTACTED_CACHE) contacted.clear();
        contacted.add(recipient);
      }
      return settleSend(
        storage,
        { kind: 'd', conversation: recipient, sortKey },
        record,
        (message) => messageOp(message, messageId),
        // The relay refuses a send that names out-of-date device lists (DEVICE_MISMATCH,
        // docs/relay-protocol.md): the users it names are refreshed (their signed lists
        // applied, sessions with new devices started, with revoked ones dropped) and the
        // message is encrypted again for the devices current now. Over the relay alone the
        // frames of a refused attempt are never stored; a transport with its own paths
        // (WebRTC) may have delivered some of them directly, and the recipient drops the
        // second copy by its message id (§11.2).
        () =>
          sendWithListRefresh(
            async () => {
              const peers = (await sessions.devices(recipient)).filter((p) => !(recipient === address.userId && p.deviceId === address.deviceId));
              if (peers.length === 0) throw new UsageError('NO_SESSION', { message: 'the user has no devices', details: { userId: recipient, deviceId: '*' } });
              const own = recipient === address.userId ? [] : (await sessions.devices(address.userId)).filter((d) => d.deviceId !== address.deviceId);
              const recipientVersion = await listVersionOf(sessions, recipient);
              const ownVersion = await listVersionOf(sessions, address.userId);
              // Each encrypt persists its advanced chain before returning (SECURITY.md D28).
              // `contact`: the user chose to talk to these devices, so a transport may set up a
              // direct path to them (WebRTC). Nothing core sends on its own is marked: a
              // stranger can make it send (relay-protocol.ts, OutboundMessage.contact).
              const outbound = [];
              for (const peer of peers) outbound.push({ to: peer, frame: await sessions.encrypt(peer, direct), listVersion: recipientVersion, contact: true });
              for (const device of own) outbound.push({ to: device, frame: await sessions.encrypt(device, sync), listVersion: ownVersion, contact: true });
              return outbound;
            },
            (outbound) => transport.send(outbound),
            async (stale) => {
              // At most two users: the recipient and this user (own devices' copies).
              for (const user of stale.slice(0, 2)) await discover(toUserId(user.userId)).catch((err: unknown) => events.emit('error', err));
            },
          ),
      );
    });
  }

  async function history(userId: string, opts?: HistoryOptions): Promise<StoredMessage[]> {
    const user = toUserId(userId);
    const entries = await readHistoryPage(storage, historyKeys.messages(user), opts);
    return entries.map((e) => openRecord(crypto, e.key, ClientRecordType.MESSAGE, e.value, (r) => readStoredMessage(r, user, e.key[2] as string)));
  }

  async function conversations(): Promise<Conversation[]> {
    const entries = await storage.range(historyKeys.conversations(), { limit: 100_000 });
    return entries
      .map((e) => ({ userId: toUserId(e.key[1] as string), ...openRecord(crypto, e.key, ClientRecordType.CONVERSATION, e.value, readConversation) }))
      .sort((a, b) => b.lastActivity - a.lastActivity);
  }

  async function verifySafetyNumber(userId: string, scanned: string | Uint8Array): Promise<boolean> {
    const mine = await sessions.safetyNumber(userId);
    const ok =
      typeof scanned === 'string'
        ? equalBytes(utf8(scanned.replace(/\s+/g, '')), utf8(mine.digits))
        : equalBytes(scanned, mine.qr);
    if (ok) await sessions.setVerified(userId, true);
    return ok;
  }

  return {
    address,
    sessions,
    transport: readonlyTransport(transport),
    ...groupApi,
    on: (event, listener) => events.on(event, listener),
    start: () =>
      (started ??= start().catch((e: unknown) => {
        started = undefined; // a failed start can be retried
        throw e;
      })),
    send,
    conversations,
    history,
    safetyNumber: (userId) => sessions.safetyNumber(userId),
    verifySafetyNumber,
    pendingSafetyNumber: (userId) => sessions.safetyNumber(userId, { pending: true }),
    acceptIdentity: (userId, expectedKey) => sessions.acceptIdentity(userId, expectedKey),
    rejectIdentity: (userId) => sessions.rejectIdentity(userId),
    devices: () => ownDevices(deviceContext),
    async approveDevice(code, opts) {
      await whenStarted();
      return approveDevice(deviceContext, code, opts);
    },
    async revokeDevice(deviceId) {
      await whenStarted();
      return revokeDevice(deviceContext, deviceId);
    },
    async close() {
      if (closed) return;
      closed = true;
      groupLayer?.close();
      announcer.close();
      for (const u of unsubscribe) u();
      signalHandlers.clear();
      await transport.close();
      // Handled events are recorded as such; one that fails is announced again next start.
      await announcer.flush().catch((e: unknown) => events.emit('error', e));
      await storage.close();
      events.clear();
    },
  };
}

export type { AdapterConfig, ModuleLoader };
