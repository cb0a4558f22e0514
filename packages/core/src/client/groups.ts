/**
 * Groups in the client (docs/protocol.md §11.1 GROUP, §11.5, §12; guide: docs/groups.md):
 * the group engine (`../group/`) wired to pairwise sessions, the relay's fan-out, the
 * trust store, device lists and history.
 *
 * - **Payloads** (changes, welcomes, sender-key distributions, key requests, fragments)
 *   travel as GROUP content inside pairwise messages, and only over a session whose remote
 *   certificate has the account, signing and identity keys the group state names. They are
 *   put in the group inbox **in the same atomic batch** as the ratchet step that decrypted
 *   them, then processed: a crash loses and repeats nothing (SECURITY.md D24).
 * - **Group messages** are encrypted once and uploaded once for every device of the group
 *   (SEND_SHARED); each one arriving is decrypted and written to the group's history **in
 *   the same atomic batch** as the advanced sender chain, then acknowledged.
 * - **Trust** (§7.4): a member whose account key is not the one this device trusts (or
 *   whose key change is pending), and a device its user's signed list does not name, is
 *   never encrypted to: it gets no sender key, is left out of the fan-out, and a key it may
 *   hold is replaced before the next message.
 * - **Devices** (§3.3): when a member's device list changes, this device brings the group
 *   in step where the rules of §12.4 let it: its own user's devices always, other members'
 *   devices when it is an admin.
 * - **Bounded**: every loop is over a group's members (at most 1,000), a change's
 *   operations (at most 100), or a fixed number of attempts; caches are capped.
 *
 * Everything the engine does runs in one queue, so inbox entries and held messages are
 * processed once, in order; the functions the engine calls back never re-enter it.
 *
 * @module
 */
import {
  createAsyncLock,
  CodecError,
  isDeadboltError,
  ProtocolError,
  UsageError,
  deviceId as toDeviceId,
  userId as toUserId,
  type Address,
  type ErrorCode,
  type InboundFrame,
  type SharedRecipient,
  type StorageAdapter,
  type StorageOp,
  type TransportAdapter,
  type UserId,
} from '@deadbolt/spec';
import { fromHex, toHex, utf8 } from '../codec/bytes.js';
import { ByteReader } from '../codec/reader.js';
import { ByteWriter } from '../codec/writer.js';
import { equalBytes } from '../crypto/checks.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { createGroupEngine, type GroupEngine, type GroupEvent } from '../group/group-engine.js';
import { isRetryable } from '../group/group-errors.js';
import { groupIdHex, type GroupId } from '../group/group-id.js';
import { createGroupManager, type GroupDecryptResult, type GroupManager, type NewGroupMember } from '../group/group-manager.js';
import { decodeGroupMessage } from '../group/group-message.js';
import type { GroupOp } from '../group/group-change.js';
import { findMember, type GroupRole, type GroupState } from '../group/group-state.js';
import { Limits } from '../protocol/constants.js';
import type { DeviceCertificate } from '../protocol/device-certificate.js';
import { decodeDeviceList, listsDevice, type DeviceList } from '../protocol/device-list.js';
import { openRecord, RecordType, sealRecord } from '../session/record-envelope.js';
import type { DecryptResult, SessionManager } from '../session/session-manager.js';
import { readTrustRecord, storageKeys, type TrustRecord } from '../session/stored-records.js';
import { decodeContent, encodeContent, MAX_MESSAGE_BODY } from './content.js';
import { listVersionOf, sendWithListRefresh } from './devices.js';
import {
  ClientRecordType,
  encodeConversation,
  encodeStoredMessage,
  historyKeys,
  outgoingMessage,
  readHistoryPage,
  readConversation,
  readStoredGroupMessage,
  type DeliveryStatus,
  type HistoryOptions,
  type ReceivedGroupMessage,
  type StoredGroupMessage,
} from './history.js';
import { pendingSendMarker, settleSend } from './interrupted-sends.js';

/** A member of a group, as this device's copy of the group state records it. */
export interface GroupMemberInfo {
  readonly userId: UserId;
  /** Admins may add and remove members, promote, demote and rename (docs/protocol.md §12.4). */
  readonly role: GroupRole;
  /** The member's devices in the group. */
  readonly devices: readonly string[];
}

/** A member with this device's trust decision about it. */
export interface GroupMemberStatus extends GroupMemberInfo {
  /**
   * The member's account key in the group is not the one this device trusts for that user
   * (or a change of key is pending, §7.4): this device sends it nothing until the key is
   * accepted (`client.acceptIdentity`) and an admin re-adds it under that key.
   */
  readonly untrusted: boolean;
}

/** A group, as this device sees it now. */
export interface GroupInfo {
  /** 64 lowercase hex characters. */
  readonly groupId: string;
  readonly name: string;
  /** Counts the changes since the group was created. */
  readonly epoch: number;
  /** Whether this device is in the group (false once it left or was removed). */
  readonly member: boolean;
  /** Sorted by user id. */
  readonly members: readonly GroupMemberInfo[];
}

/** A group in {@link ClientGroupApi.groups}: with the time of its last message or change here. */
export interface GroupSummary extends GroupInfo {
  readonly lastActivity: number;
}

/** Options of {@link ClientGroupApi.createGroup}. */
export interface CreateGroupOptions {
  /** At most 255 UTF-8 bytes. */
  readonly name: string;
  /** The other users (this user is added as the admin): at most 999, each once. */
  readonly members: readonly string[];
}

/**
 * One group. A handle is a name for the group: it holds no state, and every call reads
 * the group as stored now.
 *
 * @example
 * ```ts
 * const team = await client.createGroup({ name: 'team', members: ['bob', 'carol'] });
 * await team.send('hello, team');
 * await team.addMembers(['dave']);
 * console.log((await team.history({ limit: 20 })).length);
 * ```
 */
export interface Group {
  /** The group's id (64 lowercase hex characters). */
  readonly id: string;
  /** The group as stored now. */
  info(): Promise<GroupInfo>;
  /**
   * Sends a message to every member device (this user's other devices included). Resolves
   * with its history record (`sent`) once the relay stored it. Devices that could not be
   * given the key are reported by `group-delivery-failed` and do not stop the send.
   */
  send(body: string | Uint8Array): Promise<StoredGroupMessage>;
  /** The group's messages, oldest first: the newest `limit` (default 100, at most 1,000), or the newest `limit` older than `before` (a message's `sortKey`). */
  history(options?: HistoryOptions): Promise<StoredGroupMessage[]>;
  /** The members, with this device's trust decision about each. */
  members(): Promise<GroupMemberStatus[]>;
  /** Adds users (admins only; 1 to 100 per call) with every device this device can reach. */
  addMembers(userIds: readonly string[]): Promise<GroupInfo>;
  /** Removes users (admins only; 1 to 100 per call). They can read nothing sent afterwards. */
  removeMembers(userIds: readonly string[]): Promise<GroupInfo>;
  /** Leaves the group (this user, all of its devices). History stays. */
  leave(): Promise<GroupInfo>;
  /** Makes a member an admin (admins only). */
  promote(userId: string): Promise<GroupInfo>;
  /** Makes an admin a plain member (admins only; one admin always remains). */
  demote(userId: string): Promise<GroupInfo>;
  /** Renames the group (admins only). */
  rename(name: string): Promise<GroupInfo>;
}

/** The group events of the client (see `ClientEvents`). */
export interface GroupClientEvents {
  /**
   * A group message arrived and is in the group's history. Emitted once per message, and
   * again at the next start only if the process stopped before the event was handled
   * (then with `redelivered: true`, docs/protocol.md §11.4).
   */
  'group-message-received': ReceivedGroupMessage;
  /** A change another device made was applied: members, devices, admins or name. */
  'group-changed': GroupInfo;
  /** This device was added to a group (a welcome arrived). */
  'group-invited': GroupInfo;
  /**
   * A group message or group payload was refused (forged, not allowed, replayed into
   * another group, undecryptable) and dropped. Reported without details.
   */
  'group-rejected': { readonly groupId?: string; readonly from?: Address; readonly code: ErrorCode };
  /**
   * Some devices could not be reached with a change or a sender key (no session, a key
   * change not accepted, the relay refused). They cannot read the group's messages until
   * they are reached; a sender key is tried again with the next message.
   */
  'group-delivery-failed': { readonly groupId: string; readonly devices: readonly Address[]; readonly code: ErrorCode };
}

/** The group methods of the client (see `Client`). */
export interface ClientGroupApi {
  /**
   * Creates a group with this user as its admin, the given users as members, and every
   * device of each that this device can reach (fetched from the relay the first time).
   * Rejects with `UNTRUSTED_IDENTITY` if a member's key changed and was not accepted, and
   * `NO_SESSION` / `UNKNOWN_USER` if one has no device.
   */
  createGroup(options: CreateGroupOptions): Promise<Group>;
  /** Every group this device created or joined (also those it left), most recent first. */
  groups(): Promise<GroupSummary[]>;
  /** A group by id, or `undefined` if this device does not know it. */
  group(groupId: string): Promise<Group | undefined>;
}

/** What the group layer needs from the client. */
export interface GroupContext {
  readonly self: Address;
  readonly crypto: CryptoProvider;
  readonly storage: StorageAdapter;
  readonly sessions: SessionManager;
  readonly transport: TransportAdapter;
  readonly now: () => number;
  /** Brings a user's devices in step with the relay's directory (devices.ts). */
  readonly discover: (user: UserId) => Promise<Address[]>;
  /**
   * Before a send to a user: reads a user without sessions (errors thrown), and now and then
   * one whose signed list names a device without a session (errors reported; devices.ts
   * `discoveryDue`).
   */
  readonly reachAll: (user: UserId) => Promise<void>;
  /** Resolves once the client is started; rejects with `NOT_INITIALIZED` or `CLOSED`. */
  readonly ready: () => Promise<void>;
  readonly emit: <K extends keyof GroupClientEvents>(event: K, payload: GroupClientEvents[K]) => void;
  /** The marker written with each group message's history record (§11.4). */
  readonly announceOp: (gid: string, sortKey: string) => StorageOp;
  /** Emits `group-message-received` for a committed message and records it as handled (§11.4). */
  readonly announce: (message: StoredGroupMessage) => void;
  /**
   * Announces the committed messages this run has not announced yet (§11.4): called after
   * an engine call failed part way, whose committed messages' events it never returned.
   */
  readonly sweep: () => Promise<void>;
  /** Reports a background failure. */
  readonly error: (e: unknown) => void;
}

/** The group layer of one client. */
export interface ClientGroups {
  readonly api: ClientGroupApi;
  /** The operation that stores a GROUP payload in the inbox, for the pairwise decrypt's batch. */
  inboxOps(result: DecryptResult, payload: Uint8Array): StorageOp[];
  /** Processes the inbox once a pairwise message carrying a GROUP payload was committed. */
  drain(): Promise<void>;
  /** Handles a group message frame (type 0x10); resolves when it may be acknowledged. */
  receive(frame: InboundFrame): Promise<void>;
  /** A user's signed device list changed (the client's `devices-changed`). */
  devicesChanged(userId: UserId): void;
  /** A device started a session with this one (the client's `session-established`). */
  sessionEstablished(peer: Address): void;
  /**
   * Processes what a crash left in the group inbox, in the background (failures are
   * reported; the next group operation tries again).
   */
  resume(): void;
  /** Stops timers; nothing runs afterwards. */
  close(): void;
}

/** Users added or removed by one call (one change, §12.12 operations per change). */
const MAX_USERS_PER_CALL = Limits.maxGroupOpsPerChange;
/** Decrypted messages waiting for their event (they are emitted right after the engine call). */
const MAX_PENDING_EVENTS = 1024;
/** How long after the last held message of a group its missing keys are requested (§12.9.1). */
const KEY_REQUEST_DELAY_MS = 3000;
/** Groups with a key request waiting. */
const MAX_KEY_TIMERS = 256;
/** How long a device that had no session after a directory fetch is not fetched for again. */
const UNREACHABLE_MS = 60_000;
const MAX_UNREACHABLE = 4096;
const MAX_GROUPS_LISTED = 10_000;
/**
 * Group messages kept for groups not known yet, across all groups (the oldest goes first):
 * a welcome whose frame failed and comes again after them. Small, so a relay inventing
 * groups can only churn it.
 */
const MAX_ORPHANS = 64;
/** When the inbox could not be processed (a storage failure): first retry, doubling to the maximum. */
const RETRY_INITIAL_MS = 500;
const RETRY_MAX_MS = 30_000;
const GROUP_ID_HEX = /^[0-9a-f]{64}$/;

const addressKey = (a: { readonly userId: string; readonly deviceId: string }): string => `${a.userId}\n${a.deviceId}`;
const codeOf = (e: unknown): ErrorCode => (isDeadboltError(e) ? e.code : 'INTERNAL');

function noSession(a: Address): UsageError<'NO_SESSION'> {
  return new UsageError('NO_SESSION', { message: 'no session with this device', details: { userId: a.userId, deviceId: a.deviceId } });
}

function untrusted(userId: string): UsageError<'UNTRUSTED_IDENTITY'> {
  return new UsageError('UNTRUSTED_IDENTITY', { message: `the identity of ${userId} changed and must be accepted first`, details: { userId } });
}

function parseGroupId(id: unknown): GroupId {
  if (typeof id !== 'string' || !GROUP_ID_HEX.test(id)) {
    throw new UsageError('INVALID_ARGUMENT', { message: 'groupId must be 64 lowercase hex characters', details: { field: 'groupId', expected: '64 lowercase hex characters' } });
  }
  return fromHex(id) as GroupId;
}

function userList(ids: unknown, field: string, min: number, max: number): UserId[] {
  if (!Array.isArray(ids) || ids.length < min || ids.length > max) {
    throw new UsageError('INVALID_ARGUMENT', { message: `${field}: ${min} to ${max} user ids`, details: { field, expected: `${min}..${max} user ids` } });
  }
  const users = ids.map((u) => toUserId(u as string));
  if (new Set(users).size !== users.length) throw new UsageError('INVALID_ARGUMENT', { message: `${field}: each user once`, details: { field, expected: 'distinct user ids' } });
  return users;
}

/** The group as the application sees it. */
export function groupInfo(head: GroupState, member: boolean): GroupInfo {
  return {
    groupId: groupIdHex(head.groupId),
    name: head.name,
    epoch: head.epoch,
    member,
    members: head.members.map((m) => ({ userId: m.userId, role: m.role, devices: m.devices.map((d) => d.deviceId as string) })),
  };
}

/**
 * Creates the group layer of a client.
 *
 * @example
 * ```ts
 * const groups = createClientGroups({ self, crypto, storage, sessions, transport, now, discover, reachAll, ready, emit, error });
 * client = { ...client, ...groups.api };
 * ```
 */
export function createClientGroups(ctx: GroupContext): ClientGroups {
  const { self, crypto, storage, sessions, transport, now } = ctx;
  const manager: GroupManager = createGroupManager({ storage, crypto, now });
  const queue = createAsyncLock();
  /** Records of messages decrypted by the current engine call, by sender, key and generation. */
  const decrypted = new Map<string, StoredGroupMessage>();
  const keyTimers = new Map<string, ReturnType<typeof setTimeout>>();
  const unreachable = new Map<string, number>();
  /** While a change is published: devices not reached (a change is sent once, best effort). */
  let collector: { failed: Address[]; code: ErrorCode | undefined } | undefined;
  let initialized: Promise<void> | undefined;
  let ownAccountKey: Uint8Array | undefined;
  let closed = false;
  /** Orphans stored (read at the first run); the one being retried, deleted with its decrypt. */
  let orphanCount = 0;
  let retrying: StorageOp | undefined;
  /** Set when committed messages may not have been announced (see `run`). */
  let unannounced = false;
  let seqCounter = 0;
  /**
   * Set when an inbox entry may have been written and not processed yet (a pairwise batch
   * carried one, or a pass failed): the next run processes the inbox first, and a timer
   * retries in case nothing else comes (its frame is acknowledged as a duplicate when it
   * comes again, SECURITY.md D24).
   */
  let dirty = false;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let retryDelay = RETRY_INITIAL_MS;

  const engine: GroupEngine = createGroupEngine({
    groups: manager,
    now,
    sendPairwise,
    messageOps: historyOps,
    joinOps: (groupId) => [indexOp(groupIdHex(groupId), now())],
  });

  // --- records ----------------------------------------------------------------------------

  const messageOp = (m: StoredGroupMessage, messageId: Uint8Array): StorageOp => ({
    type: 'put',
    key: historyKeys.groupMessage(m.groupId, m.sortKey),
    value: sealRecord(crypto, ClientRecordType.GROUP_MESSAGE, encodeStoredMessage(m, messageId)),
  });
  const indexOp = (gid: string, at: number): StorageOp => ({
    type: 'put',
    key: historyKeys.groupConversation(gid),
    value: sealRecord(crypto, ClientRecordType.GROUP_CONVERSATION, encodeConversation({ lastActivity: at })),
  });
  const decryptedKey = (r: { groupId: GroupId; sender: Address; keyId: number; generation: number }): string =>
    `${groupIdHex(r.groupId)}\n${addressKey(r.sender)}\n${r.keyId}\n${r.generation}`;

  /** The trust record of a contact, read directly (this may run inside the group manager's lock). */
  async function readTrust(user: string): Promise<TrustRecord | undefined> {
    const key = storageKeys.trust(user);
    const bytes = await storage.get(key);
    return bytes === undefined ? undefined : openRecord(crypto, key, RecordType.TRUST, bytes, readTrustRecord);
  }

  const listCache = new Map<string, { readonly bytes: Uint8Array; readonly list: DeviceList }>();
  /** A user's stored device list (§3.3), decoded once per stored version. */
  async function readDeviceList(user: string): Promise<DeviceList | undefined> {
    const key = storageKeys.deviceList(user);
    const bytes = await storage.get(key);
    if (bytes === undefined) return undefined;
    const hit = listCache.get(user);
    if (hit && equalBytes(hit.bytes, bytes)) return hit.list;
    const list = openRecord(crypto, key, RecordType.DEVICE_LIST, bytes, (r) => decodeDeviceList(r.fixed('deviceList', r.remaining)));
    listCache.delete(user);
    listCache.set(user, { bytes, list });
    if (listCache.size > Limits.maxGroupMembers) listCache.delete(listCache.keys().next().value as string);
    return list;
  }

  /**
   * A user's stored device list, if it is under `accountKey`: a list signed by a key this
   * device no longer trusts (the user re-installed) says nothing about the new key's devices.
   */
  async function listUnder(user: string, accountKey: Uint8Array): Promise<DeviceList | undefined> {
    const list = await readDeviceList(user);
    return list !== undefined && equalBytes(list.accountKey, accountKey) ? list : undefined;
  }

  /** Whether a member's account key is not the one this device trusts for its user (§7.4). */
  async function keyUntrusted(member: { readonly userId: string; readonly accountKey: Uint8Array }): Promise<boolean> {
    if (member.userId === self.userId) return ownAccountKey === undefined || !equalBytes(member.accountKey, ownAccountKey);
    const trust = await readTrust(member.userId);
    // No record yet: the first session with the user will pin its key (trust on first use),
    // and a session under another key is refused when sending (EncryptOptions).
    return trust !== undefined && (trust.pendingKey !== undefined || !equalBytes(trust.accountKey, member.accountKey));
  }

  /**
   * The devices of the head this device must not encrypt to, and each member user's device
   * list version (for the relay's check). One pass over the members.
   */
  async function audit(head: GroupState): Promise<{ excluded: DeviceCertificate[]; versions: Map<string, number> }> {
    const excluded: DeviceCertificate[] = [];
    const versions = new Map<string, number>();
    for (const m of head.members) {
      const bad = await keyUntrusted(m);
      const stored = await readDeviceList(m.userId);
      versions.set(m.userId, stored?.listVersion ?? 0);
      // A list under another key than the member's says nothing about its devices.
      const list = !bad && stored !== undefined && equalBytes(stored.accountKey, m.accountKey) ? stored : undefined;
      for (const d of m.devices) if (bad || (list !== undefined && !listsDevice(list, d))) excluded.push(d);
    }
    return { excluded, versions };
  }

  /** History records for a decrypted group message (committed with the chain step, §11.2). */
  async function historyOps(r: GroupDecryptResult): Promise<StorageOp[]> {
    const content = decodeContent(r.plaintext);
    if (content.kind !== 'direct') throw new CodecError({ structure: 'GroupContent', field: 'kind', offset: 1, reason: 'not a message' });
    const gid = groupIdHex(r.groupId);
    const head = await manager.store.head(gid);
    const member = head ? findMember(head.state, r.sender.userId) : undefined;
    const direction = r.sender.userId === self.userId ? 'outgoing' : 'incoming';
    const receivedAt = now();
    const id = toHex(content.messageId);
    const message: StoredGroupMessage = {
      id,
      groupId: gid,
      direction,
      sender: r.sender,
      sentAt: content.sentAt,
      receivedAt,
      status: direction === 'incoming' ? 'received' : 'sent',
      untrusted: member === undefined || (await keyUntrusted(member)),
      sortKey: historyKeys.sortKey(receivedAt, direction, id, toHex(crypto.randomBytes(4))),
      body: content.body,
    };
    decrypted.set(decryptedKey(r), message);
    if (decrypted.size > MAX_PENDING_EVENTS) {
      decrypted.delete(decrypted.keys().next().value as string);
      unannounced = true; // its event is announced by the sweep after this run (§11.4)
    }
    // The announcement marker (§11.4) rides in the same batch: a committed message is
    // always announced, at the latest at the next start.
    const ops = [messageOp(message, content.messageId), indexOp(gid, receivedAt), ctx.announceOp(gid, message.sortKey)];
    // An orphan being retried leaves in the same batch as its decrypt (exactly once).
    if (retrying) ops.push(retrying);
    retrying = undefined;
    return ops;
  }

  // --- pairwise delivery ----------------------------------------------------------------------

  /**
   * The engine's `sendPairwise`: seals a group payload as GROUP content with the session of
   * `to`, only if that session's certificate has `to`'s keys, and uploads it. Never calls
   * into the engine.
   */
  async function sendPairwise(to: DeviceCertificate, payload: Uint8Array): Promise<void> {
    try {
      await deliverPairwise(to, payload);
    } catch (e) {
      // A change is published once, best effort: a device not reached is reported, the
      // change stays applied (it was committed before it was sent).
      if (!collector) throw e;
      collector.failed.push({ userId: to.userId, deviceId: to.deviceId });
      collector.code ??= codeOf(e);
    }
  }

  async function deliverPairwise(to: DeviceCertificate, payload: Uint8Array): Promise<void> {
    const peer: Address = { userId: to.userId, deviceId: to.deviceId };
    if (addressKey(peer) === addressKey(self)) throw new UsageError('INVALID_ARGUMENT', { message: 'cannot send to this device itself', details: { field: 'to', expected: 'another device' } });
    const content = encodeContent({ kind: 'group', messageId: crypto.randomBytes(16), sentAt: now(), payload });
    await sendWithListRefresh(
      async () => {
        if (!(await sessions.hasSession(peer))) {
          const id = addressKey(peer);
          const until = unreachable.get(id);
          if (until !== undefined && until > now()) throw noSession(peer);
          await ctx.discover(to.userId);
          if (!(await sessions.hasSession(peer))) {
            unreachable.delete(id);
            unreachable.set(id, now() + UNREACHABLE_MS);
            if (unreachable.size > MAX_UNREACHABLE) unreachable.delete(unreachable.keys().next().value as string);
            throw noSession(peer);
          }
        }
        const listVersion = await listVersionOf(sessions, to.userId);
        // Only on a session with the device the group state names (docs/protocol.md §12.2.2);
        // UNTRUSTED_IDENTITY while the user's key change is pending (§7.4).
        return { to: peer, frame: await sessions.encrypt(peer, content, { remoteCertificate: to }), listVersion };
      },
      (message) => transport.send([message]),
      async () => {
        await ctx.discover(to.userId).catch(ctx.error);
      },
    );
  }

  /** Uploads one group message to every recipient (SEND_SHARED, docs/relay-protocol.md). */
  async function upload(recipients: readonly Address[], message: Uint8Array, versions: ReadonlyMap<string, number>): Promise<Address[]> {
    const shared: SharedRecipient[] = recipients.map((to) => ({ to, listVersion: versions.get(to.userId) ?? 0 }));
    const put = (list: readonly SharedRecipient[]): Promise<void> =>
      typeof transport.sendShared === 'function' ? transport.sendShared(list, message) : transport.send(list.map((r) => ({ to: r.to, frame: message, listVersion: r.listVersion ?? 0 })));
    try {
      await put(shared);
      return [];
    } catch (e) {
      // A device the relay does not know (deleted there, and this device has no list saying
      // so) refuses the whole upload: upload per user, so the others still get it.
      if (!isDeadboltError(e, 'UNKNOWN_USER')) throw e;
    }
    const byUser = new Map<string, SharedRecipient[]>();
    for (const r of shared) byUser.set(r.to.userId, [...(byUser.get(r.to.userId) ?? []), r]);
    const failed: Address[] = [];
    let lastError: unknown;
    for (const list of byUser.values()) {
      try {
        await put(list);
      } catch (e) {
        if (!isDeadboltError(e, 'UNKNOWN_USER')) throw e;
        lastError = e;
        failed.push(...list.map((r) => r.to));
      }
    }
    if (failed.length === shared.length) throw lastError;
    return failed;
  }

  // --- the queue --------------------------------------------------------------------------

  /** Runs `fn` in the group queue, after the first drain of what a crash may have left. */
  function run<T>(fn: () => Promise<T>): Promise<T> {
    return queue(async () => {
      try {
        await (initialized ??= initialize().catch((e: unknown) => {
          initialized = undefined;
          throw e;
        }));
        if (dirty) await drainNow();
        return await fn();
      } catch (e) {
        // An engine call that fails on storage (or an internal error) may have committed
        // messages before it failed (a drain, held messages retried); their events were
        // never returned. Their markers are in storage: announce them now rather than at
        // the next start (§11.4). A refused frame (protocol, codec) committed nothing, so
        // a flood of forged frames costs no scan.
        if (!(isDeadboltError(e) && (e.kind === 'protocol' || e.kind === 'codec'))) unannounced = true;
        throw e;
      } finally {
        if (unannounced) await sweep();
      }
    });
  }

  async function sweep(): Promise<void> {
    try {
      unannounced = false;
      await ctx.sweep();
    } catch (e) {
      unannounced = true; // storage still failing: the next run tries again
      if (!closed) ctx.error(e);
    }
  }

  async function initialize(): Promise<void> {
    ownAccountKey = (await sessions.certificate()).accountKey;
    orphanCount = (await storage.range(historyKeys.groupOrphans(), { limit: MAX_ORPHANS + 1 })).length;
    await drainNow();
    // Groups left with messages waiting for a key (a distribution lost to a crash or the relay).
    for (const gid of await indexedGroups()) if ((await manager.store.held(gid)).length > 0) scheduleKeyRequest(gid);
  }

  /** Processes the inbox, then the orphans whose group it may have made known. */
  async function drainNow(): Promise<void> {
    dirty = false;
    try {
      await dispatch(await engine.drainInbox());
      if (orphanCount > 0) await retryOrphans();
    } catch (e) {
      dirty = true;
      armRetry();
      throw e;
    }
    if (retryTimer !== undefined && !dirty) {
      clearTimeout(retryTimer);
      retryTimer = undefined;
      retryDelay = RETRY_INITIAL_MS;
    }
  }

  /** Makes sure the inbox is processed later even if nothing else arrives. */
  function armRetry(): void {
    if (closed || retryTimer !== undefined) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      if (closed || !dirty) return;
      retryDelay = Math.min(retryDelay * 2, RETRY_MAX_MS);
      run(async () => undefined).catch(() => armRetry());
    }, retryDelay);
    (retryTimer as { unref?: () => void }).unref?.();
  }

  // --- orphans: group messages for a group not known yet ------------------------------------

  const orphanOp = (seq: string, from: Address, frame: Uint8Array): StorageOp => ({
    type: 'put',
    key: historyKeys.groupOrphan(seq),
    value: sealRecord(crypto, ClientRecordType.GROUP_ORPHAN, new ByteWriter(64 + frame.length).u64(now()).string8(from.userId).string8(from.deviceId).bytes32(frame).finish()),
  });
  const readOrphan = (r: ByteReader): { from: Address; frame: Uint8Array } => {
    r.u64('receivedAt');
    const from = { userId: toUserId(r.string8('from.userId')), deviceId: toDeviceId(r.string8('from.deviceId')) };
    return { from, frame: r.bytes32('frame', Limits.maxGroupMessage) };
  };

  /** Keeps a message of a group this device does not know yet (at most MAX_ORPHANS, oldest evicted). */
  async function keepOrphan(from: Address, frame: Uint8Array): Promise<void> {
    const seq = `${String(now()).padStart(16, '0')}-${String(seqCounter++ % 1e8).padStart(8, '0')}-${toHex(crypto.randomBytes(4))}`;
    const stored = await storage.range(historyKeys.groupOrphans(), { limit: MAX_ORPHANS + 1 });
    const evict = stored.slice(0, Math.max(0, stored.length + 1 - MAX_ORPHANS));
    await storage.batch([orphanOp(seq, from, frame), ...evict.map((e): StorageOp => ({ type: 'delete', key: e.key }))]);
    orphanCount = stored.length + 1 - evict.length;
    for (const _ of evict) ctx.emit('group-rejected', { code: 'LIMIT_EXCEEDED' });
  }

  /** Retries the orphans whose group is known now, oldest first. */
  async function retryOrphans(): Promise<void> {
    const stored = await storage.range(historyKeys.groupOrphans(), { limit: MAX_ORPHANS + 1 });
    orphanCount = stored.length;
    for (const e of stored) {
      const del: StorageOp = { type: 'delete', key: e.key };
      let orphan: { from: Address; frame: Uint8Array };
      let gid: string;
      try {
        orphan = openRecord(crypto, e.key, ClientRecordType.GROUP_ORPHAN, e.value, readOrphan);
        gid = groupIdHex(decodeGroupMessage(orphan.frame).header.groupId);
      } catch (err) {
        if (!isDeadboltError(err) || err.kind === 'storage') throw err;
        await storage.batch([del]);
        orphanCount--;
        continue;
      }
      if (!(await manager.store.meta(gid))) continue; // still unknown
      retrying = del;
      try {
        const events = await engine.receiveGroupMessage(orphan.frame);
        // Held for its key (or refused without a record): it is the engine's now.
        if (retrying) await storage.batch([del]);
        await dispatch(events);
      } catch (err) {
        if (isDeadboltError(err, 'DUPLICATE_MESSAGE') || (isDeadboltError(err) && (err.kind === 'protocol' || err.kind === 'codec'))) {
          await storage.batch([del]);
          if (!isDeadboltError(err, 'DUPLICATE_MESSAGE')) ctx.emit('group-rejected', { groupId: gid, from: orphan.from, code: err.code });
        } else throw err;
      } finally {
        retrying = undefined;
      }
      orphanCount--;
    }
  }

  /** Turns engine events into client events. */
  async function dispatch(events: readonly GroupEvent[]): Promise<void> {
    for (const e of events) {
      switch (e.type) {
        case 'message-received': {
          const key = decryptedKey(e);
          const message = decrypted.get(key);
          decrypted.delete(key);
          // Not in the map (evicted past MAX_PENDING_EVENTS): its marker announces it at the next start.
          if (message) ctx.announce(message);
          break;
        }
        case 'group-changed':
          ctx.emit(e.joined ? 'group-invited' : 'group-changed', groupInfo(e.head, e.member));
          break;
        case 'message-dropped':
          ctx.emit('group-rejected', { groupId: groupIdHex(e.groupId), code: e.code === 'EVICTED' ? 'LIMIT_EXCEEDED' : e.code });
          break;
        case 'payload-rejected':
          ctx.emit('group-rejected', { from: e.from, code: e.code });
          break;
        case 'send-failed':
          ctx.emit('group-delivery-failed', { groupId: groupIdHex(e.groupId), devices: [], code: codeOf(e.error) });
          break;
      }
    }
  }

  /** Runs a change-making engine call; devices it did not reach are reported. */
  async function publishing<T>(groupHex: (result: T) => string, fn: () => Promise<T>): Promise<T> {
    const c: { failed: Address[]; code: ErrorCode | undefined } = { failed: [], code: undefined };
    collector = c;
    let result: T;
    try {
      result = await fn();
    } finally {
      collector = undefined;
    }
    if (c.failed.length > 0) ctx.emit('group-delivery-failed', { groupId: groupHex(result), devices: c.failed, code: c.code ?? 'NO_SESSION' });
    return result;
  }

  function scheduleKeyRequest(gid: string): void {
    if (closed) return;
    const previous = keyTimers.get(gid);
    if (previous !== undefined) clearTimeout(previous);
    else if (keyTimers.size >= MAX_KEY_TIMERS) return;
    // Asked once the mailbox had time to deliver the distribution still in flight: an answer
    // at a later generation would make that distribution be ignored (§12.9.1).
    const timer = setTimeout(() => {
      keyTimers.delete(gid);
      if (closed) return;
      run(() => engine.requestMissingKeys(fromHex(gid) as GroupId)).catch(ctx.error);
    }, KEY_REQUEST_DELAY_MS);
    (timer as { unref?: () => void }).unref?.();
    keyTimers.set(gid, timer);
  }

  // --- receiving ------------------------------------------------------------------------------

  async function receive(frame: InboundFrame): Promise<void> {
    let gid: string | undefined;
    try {
      const header = decodeGroupMessage(frame.bytes).header;
      gid = groupIdHex(header.groupId);
      // The relay's word on the uploader must be the signed sender (a message moved to
      // another sender's name, or forwarded, is refused before any cryptography).
      if (addressKey(header.sender) !== addressKey(frame.from)) throw new ProtocolError('SENDER_MISMATCH', { message: 'group message sender differs from the uploader' });
      const held = await run(async () => {
        let events: GroupEvent[];
        try {
          events = await engine.receiveGroupMessage(frame.bytes);
        } catch (e) {
          // A group not known (yet): kept, in a small bounded set, for when its welcome comes.
          if (!isRetryable(e) || (await manager.store.meta(gid as string))) throw e;
          await keepOrphan(frame.from, frame.bytes);
          return false;
        }
        await dispatch(events);
        return !events.some((e) => e.type === 'message-received');
      });
      // Held for its sender key: asked for if the distribution does not follow (§12.9.1).
      if (held) scheduleKeyRequest(gid);
    } catch (e) {
      if (isDeadboltError(e, 'DUPLICATE_MESSAGE')) return; // already processed: acknowledge, no second event
      if (isDeadboltError(e) && (e.kind === 'protocol' || e.kind === 'codec')) {
        ctx.emit('group-rejected', gid === undefined ? { from: frame.from, code: e.code } : { groupId: gid, from: frame.from, code: e.code });
        return;
      }
      throw e; // storage or internal: unacknowledged, delivered again
    }
  }

  // --- members and devices ----------------------------------------------------------------

  /** The certificates of a user's devices that this device can reach and trusts (§7.4, §3.3). */
  async function reachableDevices(user: UserId): Promise<DeviceCertificate[]> {
    await ctx.reachAll(user);
    const trust = await sessions.trust(user);
    if (trust?.pendingKey !== undefined) throw untrusted(user);
    const list = trust === undefined ? undefined : await listUnder(user, trust.accountKey);
    const certs = (await sessions.peerCertificates(user))
      .filter((c) => trust !== undefined && equalBytes(c.accountKey, trust.accountKey) && (list === undefined || listsDevice(list, c)))
      .sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
    if (certs.length === 0) throw noSession({ userId: user, deviceId: '*' as Address['deviceId'] });
    return certs.slice(0, Limits.maxGroupDevicesPerMember);
  }

  /** This user's other devices to put in a new group. */
  async function ownDevices(): Promise<DeviceCertificate[]> {
    const list = await sessions.deviceList(self.userId);
    const mine = (await sessions.certificate()).accountKey;
    return (await sessions.peerCertificates(self.userId))
      .filter((c) => c.deviceId !== self.deviceId && equalBytes(c.accountKey, mine) && (list === undefined || listsDevice(list, c)))
      .slice(0, Limits.maxGroupDevicesPerMember - 1);
  }

  async function indexedGroups(): Promise<string[]> {
    return (await storage.range(historyKeys.groupConversations(), { limit: MAX_GROUPS_LISTED })).map((e) => e.key[1] as string);
  }

  /**
   * Brings `user`'s devices in every group in step with its signed device list and this
   * device's sessions (§3.3, §12.4): removes devices the list no longer names, adds devices
   * with a session, certified by the member's account key, that the list names. Only where
   * this device may: its own user always, another member when this device's user is admin.
   */
  async function syncDevices(user: UserId): Promise<void> {
    let certs: DeviceCertificate[] | undefined;
    for (const gid of await indexedGroups()) {
      const meta = await manager.store.meta(gid);
      if (!meta?.member) continue;
      const groupId = fromHex(gid) as GroupId;
      const head = await manager.state(groupId);
      const member = head ? findMember(head, user) : undefined;
      if (!head || !member) continue;
      if (user !== self.userId && findMember(head, self.userId)?.role !== 'admin') continue;
      const list = await listUnder(user, member.accountKey);
      const ops: GroupOp[] = [];
      const gone = list === undefined ? [] : member.devices.filter((d) => !listsDevice(list, d) && !(user === self.userId && d.deviceId === self.deviceId));
      // REMOVE_DEVICE needs another device left (§12.4); a member with none listed stays
      // excluded from everything this device sends instead.
      if (gone.length < member.devices.length) for (const d of gone) ops.push({ type: 'remove-device', userId: user, deviceId: d.deviceId });
      const kept = new Set(member.devices.filter((d) => !ops.some((o) => o.type === 'remove-device' && o.deviceId === d.deviceId)).map((d) => d.deviceId as string));
      certs ??= await sessions.peerCertificates(user);
      for (const c of certs) {
        if (kept.size >= Limits.maxGroupDevicesPerMember || ops.length >= Limits.maxGroupOpsPerChange) break;
        if (kept.has(c.deviceId) || (user === self.userId && c.deviceId === self.deviceId)) continue;
        if (!equalBytes(c.accountKey, member.accountKey) || (list !== undefined && !listsDevice(list, c))) continue;
        ops.push({ type: 'add-device', userId: user, device: { deviceId: c.deviceId, signingKey: c.signingKey, identityKey: c.identityKey, capabilities: c.capabilities, signature: c.signature } });
        kept.add(c.deviceId);
      }
      if (ops.length === 0) continue;
      await publishing(() => gid, () => engine.change(groupId, ops.slice(0, Limits.maxGroupOpsPerChange)));
    }
  }

  function scheduleSync(user: UserId): void {
    if (closed) return;
    run(() => syncDevices(user)).catch((e: unknown) => {
      if (!closed) ctx.error(e);
    });
  }

  // --- the API ----------------------------------------------------------------------------

  async function requireKnown(groupId: GroupId): Promise<GroupState> {
    const head = await manager.state(groupId);
    if (!head) throw new UsageError('NOT_INITIALIZED', { message: 'unknown group', details: { what: 'group' } });
    return head;
  }

  async function info(groupId: GroupId): Promise<GroupInfo> {
    return groupInfo(await requireKnown(groupId), await manager.isMember(groupId));
  }

  /** Applies a change made of `ops` (built on the head) and publishes it. */
  async function changeGroup(groupId: GroupId, ops: readonly GroupOp[]): Promise<GroupInfo> {
    await ctx.ready();
    return run(async () => {
      await publishing(() => groupIdHex(groupId), () => engine.change(groupId, ops));
      return info(groupId);
    });
  }

  async function send(groupId: GroupId, body: string | Uint8Array): Promise<StoredGroupMessage> {
    await ctx.ready();
    if (typeof body !== 'string' && !(body instanceof Uint8Array)) {
      throw new UsageError('INVALID_ARGUMENT', { message: 'body must be a string or a Uint8Array', details: { field: 'body', expected: 'a string or a Uint8Array' } });
    }
    const bytes = typeof body === 'string' ? utf8(body) : body.slice();
    if (bytes.length > MAX_MESSAGE_BODY) {
      throw new UsageError('INVALID_ARGUMENT', { message: `message body over ${MAX_MESSAGE_BODY} bytes`, details: { field: 'body', expected: `at most ${MAX_MESSAGE_BODY} bytes` } });
    }
    return run(async () => {
      const gid = groupIdHex(groupId);
      await requireKnown(groupId);
      if (!(await manager.isMember(groupId))) throw new UsageError('NOT_INITIALIZED', { message: 'not a member of this group', details: { what: 'group membership' } });
      const messageId = crypto.randomBytes(16);
      const sentAt = now();
      const id = toHex(messageId);
      const content = encodeContent({ kind: 'direct', messageId, sentAt, body: bytes });
      const sortKey = historyKeys.sortKey(sentAt, 'outgoing', id);
      const record = (status: DeliveryStatus): StoredGroupMessage => ({ ...outgoingMessage({ id, sender: self, sentAt, sortKey, body: bytes }, status), groupId: gid });
      // The marker is resolved at the next start if this run dies before the outcome (§11.2).
      await storage.batch([messageOp(record('pending'), messageId), pendingSendMarker(crypto, 'g', gid, sortKey), indexOp(gid, sentAt)]);
      return settleSend(
        storage,
        { kind: 'g', conversation: gid, sortKey },
        record,
        (message) => messageOp(message, messageId),
        // The relay refuses an upload naming out-of-date device lists (DEVICE_MISMATCH): the
        // users it names are refreshed, and the message is encrypted again for the devices
        // current now (a revoked device may hold the key used). A refused attempt's message
        // was never stored by the relay; its generation only leaves a gap.
        () =>
          sendWithListRefresh(
            async () => {
              const head = await requireKnown(groupId);
              const { excluded, versions } = await audit(head);
              const out = await engine.send(groupId, content, { excluded });
              if (out.undelivered.length > 0) ctx.emit('group-delivery-failed', { groupId: gid, devices: out.undelivered, code: codeOf(out.error) });
              return { head, out, versions };
            },
            async ({ out, versions }) => {
              if (out.recipients.length === 0) return; // nobody else in the group
              const missed = await upload(out.recipients, out.message, versions);
              if (missed.length > 0) ctx.emit('group-delivery-failed', { groupId: gid, devices: missed, code: 'UNKNOWN_USER' });
            },
            async (stale, { head }) => {
              const members = new Set(head.members.map((m) => m.userId as string));
              for (const user of stale.filter((u) => members.has(u.userId)).slice(0, Limits.maxGroupMembers)) await ctx.discover(toUserId(user.userId)).catch(ctx.error);
            },
          ),
      );
    });
  }

  async function history(groupId: GroupId, opts?: HistoryOptions): Promise<StoredGroupMessage[]> {
    const gid = groupIdHex(groupId);
    const entries = await readHistoryPage(storage, historyKeys.groupMessages(gid), opts);
    return entries.map((e) => openRecord(crypto, e.key, ClientRecordType.GROUP_MESSAGE, e.value, (r) => readStoredGroupMessage(r, gid, e.key[2] as string)));
  }

  async function members(groupId: GroupId): Promise<GroupMemberStatus[]> {
    const head = await requireKnown(groupId);
    ownAccountKey ??= (await sessions.certificate()).accountKey;
    const out: GroupMemberStatus[] = [];
    for (const m of head.members) out.push({ userId: m.userId, role: m.role, devices: m.devices.map((d) => d.deviceId as string), untrusted: await keyUntrusted(m) });
    return out;
  }

  async function addMembers(groupId: GroupId, userIds: readonly string[]): Promise<GroupInfo> {
    await ctx.ready();
    const users = userList(userIds, 'userIds', 1, MAX_USERS_PER_CALL);
    if (users.includes(self.userId)) throw new UsageError('INVALID_ARGUMENT', { message: 'this user is already a member', details: { field: 'userIds', expected: 'other users' } });
    await requireKnown(groupId);
    // Fetched outside the queue: incoming frames keep flowing meanwhile.
    const ops: GroupOp[] = [];
    for (const user of users) {
      const devices = await reachableDevices(user);
      const first = devices[0] as DeviceCertificate;
      ops.push({ type: 'add-member', member: { userId: user, accountKey: first.accountKey, role: 'member', devices } });
    }
    return changeGroup(groupId, ops);
  }

  function handle(groupId: GroupId): Group {
    const id = groupIdHex(groupId);
    return Object.freeze({
      id,
      info: () => info(groupId),
      send: (body: string | Uint8Array) => send(groupId, body),
      history: (options?: HistoryOptions) => history(groupId, options),
      members: () => members(groupId),
      addMembers: (userIds: readonly string[]) => addMembers(groupId, userIds),
      removeMembers: async (userIds: readonly string[]) => changeGroup(groupId, userList(userIds, 'userIds', 1, MAX_USERS_PER_CALL).map((userId) => ({ type: 'remove-member', userId }))),
      leave: async () => changeGroup(groupId, [{ type: 'remove-member', userId: self.userId }]),
      promote: async (userId: string) => changeGroup(groupId, [{ type: 'promote', userId: toUserId(userId) }]),
      demote: async (userId: string) => changeGroup(groupId, [{ type: 'demote', userId: toUserId(userId) }]),
      rename: async (name: string) => changeGroup(groupId, [{ type: 'rename', name }]),
    });
  }

  const api: ClientGroupApi = {
    async createGroup(options: CreateGroupOptions): Promise<Group> {
      await ctx.ready();
      const name = options?.name;
      if (typeof name !== 'string' || utf8(name).length > 255) {
        throw new UsageError('INVALID_ARGUMENT', { message: 'name must be a string of at most 255 UTF-8 bytes', details: { field: 'name', expected: 'at most 255 bytes' } });
      }
      const users = userList(options?.members, 'members', 0, Limits.maxGroupMembers - 1);
      if (users.includes(self.userId)) throw new UsageError('INVALID_ARGUMENT', { message: 'this user is added as the admin', details: { field: 'members', expected: 'other users' } });
      const input: NewGroupMember[] = [];
      for (const user of users) input.push({ devices: await reachableDevices(user) });
      const ownDevicesNow = await ownDevices();
      const groupId = await run(() => publishing(groupIdHex, () => engine.create({ name, members: input, ownDevices: ownDevicesNow })));
      return handle(groupId);
    },
    async groups(): Promise<GroupSummary[]> {
      const out: GroupSummary[] = [];
      for (const e of await storage.range(historyKeys.groupConversations(), { limit: MAX_GROUPS_LISTED })) {
        const gid = e.key[1] as string;
        const groupId = fromHex(gid) as GroupId;
        const head = await manager.state(groupId);
        if (!head) continue;
        const { lastActivity } = openRecord(crypto, e.key, ClientRecordType.GROUP_CONVERSATION, e.value, readConversation);
        out.push({ ...groupInfo(head, await manager.isMember(groupId)), lastActivity });
      }
      return out.sort((a, b) => b.lastActivity - a.lastActivity);
    },
    async group(id: string): Promise<Group | undefined> {
      const groupId = parseGroupId(id);
      return (await manager.state(groupId)) ? handle(groupId) : undefined;
    },
  };

  return {
    api,
    inboxOps: (result, payload) => {
      dirty = true;
      armRetry();
      return [engine.inboxOp(result.senderCertificate, payload)];
    },
    drain: () => run(drainNow),
    receive,
    devicesChanged: scheduleSync,
    sessionEstablished: (peer) => scheduleSync(peer.userId),
    resume() {
      run(async () => undefined).catch((e: unknown) => {
        if (!closed) ctx.error(e);
      });
    },
    close() {
      closed = true;
      for (const t of keyTimers.values()) clearTimeout(t);
      keyTimers.clear();
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      retryTimer = undefined;
    },
  };
}

export type { StoredGroupMessage };
