/**
 * Groups for one device (docs/protocol.md §12): changes, welcomes, sender keys and
 * group messages over a storage adapter. Sans-I/O towards the network: operations take
 * bytes in and return bytes to send (with whom to send them to); the client carries them
 * over pairwise sessions and the relay's fan-out.
 *
 * Every operation computes its new state in memory and commits it in **one atomic batch**;
 * a failure commits nothing, so a failed decrypt or a refused change leaves the store
 * byte-identical (SECURITY.md B14). An encrypt returns its message only after the advanced
 * chain is persisted (SECURITY.md D28). Operations run one at a time, inside the storage's
 * exclusive lock when it has one (SECURITY.md D26).
 *
 * The device's identity (certificate and device signing key) is read from the same
 * store's identity record (docs/protocol.md §7.2), which the session manager creates.
 *
 * @module
 */
import {
  createAsyncLock,
  ProtocolError,
  StorageError,
  UsageError,
  isDeadboltError,
  deviceId as toDeviceId,
  userId as toUserId,
  type Address,
  type DeviceId,
  type Ed25519PublicKey,
  type Ed25519SecretKey,
  type StorageAdapter,
  type StorageOp,
  type UserId,
} from '@deadbolt/spec';
import { toHex, utf8 } from '../codec/bytes.js';
import { createDefaultCryptoProvider } from '#crypto-default';
import { equalBytes } from '../crypto/checks.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { Limits } from '../protocol/constants.js';
import { verifyDeviceCertificate, type DeviceCertificate } from '../protocol/device-certificate.js';
import { RecordType, openRecord } from '../session/record-envelope.js';
import { readIdentityRecord, storageKeys, type IdentityRecord } from '../session/stored-records.js';
import {
  GENESIS_NONCE_LENGTH,
  decodeGroupChange,
  genesisGroupId,
  groupChangeHash,
  signGroupChange,
  type GroupChangeBody,
  type GroupOp,
  type SignedGroupChange,
} from './group-change.js';
import { changeNotAllowed, changeRejected, groupLimit, notAMember, senderMismatch, unknownGroupKey } from './group-errors.js';
import { groupIdHex, type GroupId } from './group-id.js';
import { headPath, insertChange, knowsState, resolveHead, type GroupLog, type LogEntry, type StateCache } from './group-log.js';
import { decodeGroupMessage, openGroupMessage, sealGroupMessage, verifyGroupMessageSignature } from './group-message.js';
import { groupKeys, type GroupMetaRecord, type OwnSenderKey, type Recipient, type RecipientsRecord } from './group-records.js';
import {
  compareIds,
  deviceFingerprint,
  encodeGroupState,
  findDevice,
  groupDevices,
  groupStateHash,
  hasGroupDevice,
  ZERO_HASH,
  type GroupMember,
  type GroupRole,
  type GroupState,
} from './group-state.js';
import { createGroupStore, type GroupStore } from './group-store.js';
import { decodeGroupWelcome, encodeGroupWelcome } from './group-welcome.js';
import { applyChange, applyGenesis } from './membership.js';
import { chainStep, installSenderKey, isRetired, planGeneration, takeMessageKey, type InstallOutcome } from './sender-key.js';
import { decodeSenderKeyDistribution, encodeSenderKeyDistribution } from './sender-key-distribution.js';

/** Options of {@link createGroupManager}. Limits may be lowered, never raised (§12.12). */
export interface GroupManagerOptions {
  /** The same store the session manager uses (the identity record is read from it). */
  readonly storage: StorageAdapter;
  readonly crypto?: CryptoProvider;
  /** The clock, in milliseconds (rotation by age, record timestamps). */
  readonly now?: () => number;
  /** Rotate the own sender key after this many messages (1..10,000; default 10,000). */
  readonly rotateAfterMessages?: number;
  /** Rotate the own sender key after this age in ms (1..7 days; default 7 days). */
  readonly rotateAfterMs?: number;
  /** Forward skip per message (1..2,000; default 2,000). */
  readonly maxForwardSkip?: number;
  /** Skipped keys kept per sender device (0..2,000; default 2,000). */
  readonly maxSkippedKeys?: number;
}

/** A member to add: its devices' certificates, which must all name one user and account key. */
export interface NewGroupMember {
  readonly devices: readonly DeviceCertificate[];
  readonly role?: GroupRole;
}

/** A payload to carry over the pairwise session with `to` (§12.10). */
export interface GroupDelivery {
  /**
   * The recipient device as the group state certifies it. The client must send only over a
   * session whose remote certificate has the same account, signing and identity keys.
   */
  readonly to: DeviceCertificate;
  readonly kind: 'change' | 'welcome' | 'sender-key';
  readonly payload: Uint8Array;
}

/** The result of a change this device made. */
export interface GroupChangeOutcome {
  readonly groupId: GroupId;
  readonly change: SignedGroupChange;
  /** The new head. */
  readonly state: GroupState;
  /** The change to every other device of the old and new state; a welcome to every new device. */
  readonly deliveries: readonly GroupDelivery[];
}

/** What processing a received change or welcome did (§12.5). */
export interface GroupChangeResult {
  readonly groupId: GroupId;
  readonly outcome: 'applied' | 'duplicate' | 'pending' | 'stale' | 'joined';
  /** The head after processing. */
  readonly head: GroupState;
  readonly headChanged: boolean;
  /** Whether this device is a device of the head. */
  readonly member: boolean;
  /** Changes that were on the old head's chain and are not on the new one (§12.5). */
  readonly orphaned: readonly SignedGroupChange[];
  /** Devices of the old head that are not in the new one. */
  readonly removedDevices: readonly DeviceCertificate[];
  /** Devices of the new head that were not in the old one. */
  readonly addedDevices: readonly DeviceCertificate[];
}

/** The result of an encrypt. */
export interface GroupEncryptResult {
  /** The group message, for the relay to fan out to every device of the group. */
  readonly message: Uint8Array;
  /** Sender-key distributions to send over pairwise sessions before the message (§12.7.3). */
  readonly distributions: readonly GroupDelivery[];
  readonly keyId: number;
}

/** A decrypted group message. */
export interface GroupDecryptResult {
  readonly groupId: GroupId;
  /** The sending device, a device of the head. */
  readonly sender: Address;
  readonly plaintext: Uint8Array;
  readonly epoch: number;
  readonly keyId: number;
  readonly generation: number;
}

/** What {@link GroupManager.create} takes. */
export interface GroupCreateParams {
  readonly name: string;
  readonly members: readonly NewGroupMember[];
  /** This user's other devices, added with this one. */
  readonly ownDevices?: readonly DeviceCertificate[];
  /** Storage operations for the new group's id, committed in the same batch as the group. */
  readonly extraOps?: (groupId: GroupId) => readonly StorageOp[];
}

/** Options of operations that accept extra operations for their batch. */
export interface GroupCommitOptions {
  /** Storage operations committed in the same atomic batch (for example deleting an inbox entry). */
  readonly extraOps?: readonly StorageOp[];
}

/** Options of {@link GroupManager.decrypt}. */
export interface GroupDecryptOptions extends GroupCommitOptions {
  /**
   * Storage operations computed from the decrypted message and committed in the same
   * atomic batch as the advanced chain (the client's history record, docs/protocol.md
   * §11.2). A throw refuses the message: nothing is committed.
   */
  readonly resultOps?: (result: GroupDecryptResult) => readonly StorageOp[] | Promise<readonly StorageOp[]>;
}

/** Options of {@link GroupManager.encrypt}. */
export interface GroupEncryptOptions {
  /**
   * Devices of the head this device must not encrypt to (the client's trust decisions:
   * a member whose account key is not the trusted one, a device its user's signed list no
   * longer names). They get no distribution, and a key any of them holds is replaced
   * before this message (§12.7.3, as if they had left).
   */
  readonly excluded?: readonly DeviceCertificate[];
}

/**
 * The membership changes of a group (docs/protocol.md §12.4), each signed and applied as one
 * change of the current head; throws `INVALID_ARGUMENT` if this device may not make it. The
 * {@link GroupManager} returns the change's outcome (`R`: the deliveries are the caller's to
 * send); the group engine sends them and returns the new head.
 *
 * @example
 * ```ts
 * const { deliveries } = await groups.promote(groupId, 'bob'); // GroupManager: send the deliveries yourself
 * const head = await engine.rename(groupId, 'team'); // GroupEngine: sent, here is the new head
 * ```
 */
export interface GroupChanges<R> {
  /** A change made of `ops`, built on the head. */
  change(groupId: GroupId, ops: readonly GroupOp[]): Promise<R>;
  addMember(groupId: GroupId, member: NewGroupMember): Promise<R>;
  removeMember(groupId: GroupId, userId: string): Promise<R>;
  /** Removes this device's user from the group (always allowed, §12.4). */
  leave(groupId: GroupId): Promise<R>;
  addDevice(groupId: GroupId, device: DeviceCertificate): Promise<R>;
  removeDevice(groupId: GroupId, userId: string, deviceId: string): Promise<R>;
  promote(groupId: GroupId, userId: string): Promise<R>;
  demote(groupId: GroupId, userId: string): Promise<R>;
  rename(groupId: GroupId, name: string): Promise<R>;
}

/**
 * Groups for one device. Create with {@link createGroupManager}.
 *
 * @example
 * ```ts
 * const groups = createGroupManager({ storage }); // the store the session manager uses
 * const { groupId, deliveries } = await groups.create({ name: 'team', members: [{ devices: bobCerts }] });
 * for (const d of deliveries) await sendPairwise(d.to, d.payload);
 * const { message, distributions } = await groups.encrypt(groupId, utf8('hello'));
 * ```
 */
export interface GroupManager extends GroupChanges<GroupChangeOutcome> {
  readonly crypto: CryptoProvider;
  /**
   * Creates a group with this device's user as admin (its other devices in `ownDevices`).
   * `extraOps` are committed in the same batch as the new group (the client's group index).
   */
  create(params: GroupCreateParams): Promise<GroupChangeOutcome>;
  /**
   * Whether `ops` would be allowed as one change of the current head (§12.4), without signing
   * or storing anything. Used to rebase orphaned changes (§12.5).
   */
  canApply(groupId: GroupId, ops: readonly GroupOp[]): Promise<boolean>;
  /** Processes a change received over the pairwise session with `from` (§12.5). */
  processChange(from: DeviceCertificate, bytes: Uint8Array, options?: GroupCommitOptions): Promise<GroupChangeResult>;
  /** Processes a welcome received over the pairwise session with `from` (§12.6). */
  processWelcome(from: DeviceCertificate, bytes: Uint8Array, options?: GroupCommitOptions): Promise<GroupChangeResult>;
  /** Processes a sender-key distribution received over the pairwise session with `from` (§12.7.2). */
  processSenderKey(
    from: DeviceCertificate,
    bytes: Uint8Array,
    options?: GroupCommitOptions,
  ): Promise<{ readonly groupId: GroupId; readonly sender: Address; readonly keyId: number; readonly outcome: InstallOutcome }>;
  /** Encrypts a group message (§12.8.2), rotating and distributing the own key first if needed (§12.7.3). */
  encrypt(groupId: GroupId, plaintext: Uint8Array, options?: GroupEncryptOptions): Promise<GroupEncryptResult>;
  /** Marks distributions of key `keyId` to `devices` as sent (§12.7.3). */
  confirmDistribution(groupId: GroupId, keyId: number, devices: readonly Address[]): Promise<void>;
  /**
   * A distribution of the current own key for `to`, a device of the head, at the current
   * generation (§12.9.1), or undefined if there is no own key yet.
   */
  redistribute(groupId: GroupId, to: DeviceCertificate): Promise<GroupDelivery | undefined>;
  /** Decrypts a group message (§12.8.3). */
  decrypt(message: Uint8Array, options?: GroupDecryptOptions): Promise<GroupDecryptResult>;
  /** The head state, or undefined for an unknown group. */
  state(groupId: GroupId): Promise<GroupState | undefined>;
  /** Whether this device is a device of the head. */
  isMember(groupId: GroupId): Promise<boolean>;
  /** Deletes everything stored about a group. */
  forget(groupId: GroupId): Promise<void>;
  /** This device's certificate. */
  certificate(): Promise<DeviceCertificate>;
  /**
   * Typed access to the records (for the engine, the client and tests; not a stable API).
   *
   * @internal
   */
  readonly store: GroupStore;
  /** Runs `fn` in this manager's queue and lock (for the engine's own record updates). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

const MAX_NAME_BYTES = 255;

function checkLimit(value: number | undefined, field: string, min: number, max: number): number {
  if (value === undefined) return max;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError('INVALID_ARGUMENT', { message: `${field} must be an integer from ${min} to ${max}`, details: { field, expected: `${min}..${max}` } });
  }
  return value;
}

function checkName(name: unknown): string {
  if (typeof name !== 'string' || utf8(name).length > MAX_NAME_BYTES) {
    throw new UsageError('INVALID_ARGUMENT', { message: `name must be a string of at most ${MAX_NAME_BYTES} UTF-8 bytes`, details: { field: 'name', expected: `at most ${MAX_NAME_BYTES} bytes` } });
  }
  return name;
}

function addressOf(c: { readonly userId: UserId; readonly deviceId: DeviceId }): Address {
  return { userId: c.userId, deviceId: c.deviceId };
}

/** Devices of `a` not in `b`, by fingerprint (§12.2.2). */
function devicesNotIn(a: GroupState, b: GroupState): DeviceCertificate[] {
  const inB = new Set(groupDevices(b).map(deviceFingerprint));
  return groupDevices(a).filter((d) => !inB.has(deviceFingerprint(d)));
}

function missingRecord(key: readonly string[]): StorageError<'CORRUPTED_RECORD'> {
  return new StorageError('CORRUPTED_RECORD', { message: `stored record ${key.join('/')} is missing`, details: { key: key.join('/'), reason: 'missing' } });
}

/**
 * Creates the group manager of one device.
 *
 * @example
 * ```ts
 * import { createGroupManager } from '@deadbolt/core/group';
 * const groups = createGroupManager({ storage, rotateAfterMessages: 1000 });
 * ```
 */
export function createGroupManager(options: GroupManagerOptions): GroupManager {
  const storage = options.storage;
  const crypto = options.crypto ?? createDefaultCryptoProvider();
  const now = options.now ?? Date.now;
  const rotateAfterMessages = checkLimit(options.rotateAfterMessages, 'rotateAfterMessages', 1, Limits.maxGroupMessagesPerKey);
  const rotateAfterMs = checkLimit(options.rotateAfterMs, 'rotateAfterMs', 1, Limits.maxGroupKeyAgeMs);
  const maxForwardSkip = checkLimit(options.maxForwardSkip, 'maxForwardSkip', 1, Limits.maxGroupForwardSkip);
  const maxSkippedKeys = checkLimit(options.maxSkippedKeys, 'maxSkippedKeys', 0, Limits.maxGroupSkippedKeys);
  const store = createGroupStore(storage, crypto);
  const queue = createAsyncLock();
  let identityCache: IdentityRecord | undefined;

  async function identity(): Promise<IdentityRecord> {
    if (identityCache) return identityCache;
    const key = storageKeys.identity();
    const bytes = await storage.get(key);
    if (!bytes) throw new UsageError('NOT_INITIALIZED', { message: 'no identity: create one with the session manager first', details: { what: 'identity' } });
    identityCache = openRecord(crypto, key, RecordType.IDENTITY, bytes, readIdentityRecord);
    return identityCache;
  }

  async function requireHead(gid: string): Promise<{ readonly state: GroupState; readonly bytes: Uint8Array }> {
    const head = await store.head(gid);
    if (!head) throw missingRecord(groupKeys.head(gid));
    return head;
  }

  async function requireMember(gid: string): Promise<GroupMetaRecord> {
    const meta = await store.meta(gid);
    if (!meta) throw notAMember('unknown group');
    if (!meta.member) throw notAMember('removed from the group');
    return meta;
  }

  async function loadLog(gid: string): Promise<GroupLog> {
    const base = await store.base(gid);
    if (!base) throw missingRecord(groupKeys.base(gid));
    const entries: LogEntry[] = (await store.changes(gid)).map((c) => ({
      change: c.value.change,
      changeHash: groupChangeHash(crypto, c.value.change),
      stateHash: c.value.stateHash,
    }));
    return { base: base.state, baseHash: groupStateHash(crypto, base.bytes), entries };
  }

  /**
   * Everything that follows a head change (§12.5, §12.7.4): the head and meta records, and
   * the deletion of the keys of every device that left (all group keys if this device left).
   */
  async function headOps(
    me: IdentityRecord,
    gid: string,
    meta: GroupMetaRecord,
    oldHead: GroupState | undefined,
    head: GroupState,
    headBytes: Uint8Array,
    headHash: Uint8Array,
  ): Promise<{ ops: StorageOp[]; member: boolean; removed: DeviceCertificate[]; added: DeviceCertificate[] }> {
    const ops: StorageOp[] = [store.putHead(gid, headBytes)];
    const member = hasGroupDevice(head, me.certificate);
    ops.push(store.putMeta(gid, { ...meta, epoch: head.epoch, stateHash: headHash, lastRemovalEpoch: head.lastRemovalEpoch, member }));
    const removed = oldHead ? devicesNotIn(oldHead, head) : [];
    const added = oldHead ? devicesNotIn(head, oldHead) : groupDevices(head);
    if (!member) {
      // This device left: every key of the group goes (§12.7.4).
      for (const key of await store.keysOf(gid)) {
        if (key[2] === 'own' || key[2] === 'recipients' || key[2] === 'sender') ops.push({ type: 'delete', key });
      }
    } else {
      for (const d of removed) ops.push({ type: 'delete', key: groupKeys.sender(gid, addressOf(d)) });
    }
    return { ops, member, removed, added };
  }

  /**
   * Offers a signed change to the group's log and commits the outcome (§12.5). `from` is
   * the device that carried it (undefined for this device's own changes).
   */
  async function ingest(me: IdentityRecord, change: SignedGroupChange, extraOps: readonly StorageOp[], from?: DeviceCertificate): Promise<GroupChangeResult> {
    const gid = groupIdHex(change.groupId);
    const meta = await store.meta(gid);
    if (!meta) throw unknownGroupKey('group');
    const head = await requireHead(gid);
    const log = await loadLog(gid);
    const cache: StateCache = new Map([[toHex(meta.stateHash), head.state]]);
    const unchanged = (outcome: GroupChangeResult['outcome']): GroupChangeResult => ({
      groupId: change.groupId,
      outcome,
      head: head.state,
      headChanged: false,
      member: meta.member,
      orphaned: [],
      removedDevices: [],
      addedDevices: [],
    });

    const first = await insertChange(crypto, log, change, cache);
    const pending = await store.pending(gid);
    if (first.kind === 'duplicate' || first.kind === 'stale') {
      await store.commit(extraOps);
      return unchanged(first.kind);
    }
    if (first.kind === 'pending') {
      // A held change cannot be verified yet: only a device of the head may make this
      // device hold one, so strangers cannot fill the slots (§12.5 step 3).
      if (from && !hasGroupDevice(head.state, from)) throw senderMismatch('a change held for its parent must come from a device of the group');
      const hex = toHex(groupChangeHash(crypto, change));
      if (!pending.some((p) => p.key[3] === hex)) {
        if (pending.length >= Limits.maxGroupPendingChanges) throw groupLimit('maxGroupPendingChanges', Limits.maxGroupPendingChanges);
        await store.commit([store.putPending(gid, hex, change), ...extraOps]);
      } else await store.commit(extraOps);
      return unchanged('pending');
    }

    const ops: StorageOp[] = [];
    let current = first.log;
    const inserted: LogEntry[] = [first.entry];
    // §12.5 step 4: pending changes whose parent is now known, until no progress. Each
    // pending change is tried at most once, so the loop is bounded by their number.
    let waiting = pending.slice();
    for (let progress = true; progress; ) {
      progress = false;
      for (const p of waiting.slice()) {
        if (!knowsState(current, p.value.parentHash)) continue;
        waiting = waiting.filter((x) => x !== p);
        ops.push({ type: 'delete', key: p.key });
        try {
          const o = await insertChange(crypto, current, p.value, cache);
          if (o.kind === 'inserted') {
            current = o.log;
            inserted.push(o.entry);
            progress = true;
          }
        } catch (e) {
          // An invalid held change (it was never verified) is dropped; anything else is ours.
          if (!isDeadboltError(e) || (e.kind !== 'protocol' && e.kind !== 'codec')) throw e;
        }
      }
    }

    const resolved = await resolveHead(crypto, current, cache);
    for (const p of waiting) if (p.value.epoch <= resolved.log.base.epoch) ops.push({ type: 'delete', key: p.key });
    const dropped = new Set(resolved.dropped.map((e) => toHex(e.changeHash)));
    const insertedHex = new Set(inserted.map((e) => toHex(e.changeHash)));
    for (const e of inserted) {
      if (!dropped.has(toHex(e.changeHash))) ops.push(store.putChange(gid, toHex(e.changeHash), { stateHash: e.stateHash, change: e.change }));
    }
    for (const e of resolved.dropped) if (!insertedHex.has(toHex(e.changeHash))) ops.push({ type: 'delete', key: groupKeys.change(gid, toHex(e.changeHash)) });
    if (!equalBytes(resolved.log.baseHash, log.baseHash)) ops.push(store.putBase(gid, encodeGroupState(resolved.log.base)));

    const headChanged = !equalBytes(resolved.headHash, meta.stateHash);
    let member = meta.member;
    let removedDevices: DeviceCertificate[] = [];
    let addedDevices: DeviceCertificate[] = [];
    if (headChanged) {
      const h = await headOps(me, gid, meta, head.state, resolved.head, encodeGroupState(resolved.head), resolved.headHash);
      ops.push(...h.ops);
      member = h.member;
      removedDevices = h.removed;
      addedDevices = h.added;
    }
    const onNewPath = new Set(resolved.path.map((e) => toHex(e.changeHash)));
    const orphaned = headPath(log)
      .filter((e) => !onNewPath.has(toHex(e.changeHash)))
      .map((e) => e.change);
    await store.commit([...ops, ...extraOps]);
    return { groupId: change.groupId, outcome: 'applied', head: resolved.head, headChanged, member, orphaned, removedDevices, addedDevices };
  }

  // --- changes this device makes ----------------------------------------------------------

  function deliveriesFor(me: IdentityRecord, parent: { readonly state: GroupState; readonly bytes: Uint8Array } | undefined, next: GroupState, change: SignedGroupChange): GroupDelivery[] {
    const out: GroupDelivery[] = [];
    const seen = new Set<string>([deviceFingerprint(me.certificate)]);
    const inParent = new Set(parent ? groupDevices(parent.state).map(deviceFingerprint) : []);
    let welcome: Uint8Array | undefined;
    for (const d of groupDevices(next)) {
      const fp = deviceFingerprint(d);
      if (seen.has(fp)) continue;
      seen.add(fp);
      if (inParent.has(fp)) out.push({ to: d, kind: 'change', payload: change.bytes });
      else out.push({ to: d, kind: 'welcome', payload: (welcome ??= encodeGroupWelcome(parent?.bytes, change)) });
    }
    // Devices that left still learn of the change that removed them.
    for (const d of parent ? groupDevices(parent.state) : []) {
      const fp = deviceFingerprint(d);
      if (seen.has(fp)) continue;
      seen.add(fp);
      out.push({ to: d, kind: 'change', payload: change.bytes });
    }
    return out;
  }

  function memberOf(input: NewGroupMember, field: string): GroupMember {
    const devices = input?.devices;
    const first = devices?.[0];
    if (!first || devices.length > Limits.maxGroupDevicesPerMember) {
      throw new UsageError('INVALID_ARGUMENT', { message: `${field}: 1 to ${Limits.maxGroupDevicesPerMember} devices`, details: { field, expected: `1..${Limits.maxGroupDevicesPerMember} device certificates` } });
    }
    for (const d of devices) {
      if (d.userId !== first.userId || !equalBytes(d.accountKey, first.accountKey)) {
        throw new UsageError('INVALID_ARGUMENT', { message: `${field}: devices of one user and account key`, details: { field, expected: 'certificates of one user' } });
      }
    }
    const sorted = [...devices].sort((a, b) => compareIds(a.deviceId, b.deviceId));
    for (let i = 1; i < sorted.length; i++) {
      if ((sorted[i] as DeviceCertificate).deviceId === (sorted[i - 1] as DeviceCertificate).deviceId) {
        throw new UsageError('INVALID_ARGUMENT', { message: `${field}: duplicate device`, details: { field, expected: 'distinct device ids' } });
      }
    }
    return { userId: first.userId, accountKey: first.accountKey, role: input.role ?? 'member', devices: sorted };
  }

  async function create(params: GroupCreateParams): Promise<GroupChangeOutcome> {
    const me = await identity();
    const name = checkName(params?.name);
    const own = memberOf({ devices: [me.certificate, ...(params.ownDevices ?? [])], role: 'admin' }, 'ownDevices');
    const members: GroupMember[] = [own, ...(params.members ?? []).map((m, i) => memberOf(m, `members[${i}]`))];
    members.sort((a, b) => compareIds(a.userId, b.userId));
    for (let i = 1; i < members.length; i++) {
      if ((members[i] as GroupMember).userId === (members[i - 1] as GroupMember).userId) {
        throw new UsageError('INVALID_ARGUMENT', { message: 'members: each user once (this user included)', details: { field: 'members', expected: 'distinct users' } });
      }
    }
    if (members.length > Limits.maxGroupMembers) throw changeNotAllowed(`at most ${Limits.maxGroupMembers} members`);
    const body: GroupChangeBody = {
      groupId: new Uint8Array(32) as GroupId,
      epoch: 0,
      parentHash: ZERO_HASH,
      signer: addressOf(me.certificate),
      createdAt: now(),
      ops: [{ type: 'create', nonce: crypto.randomBytes(GENESIS_NONCE_LENGTH), name, members }],
    };
    const groupId = genesisGroupId(crypto, body);
    const change = await signGroupChange(crypto, me.signingSecret, { ...body, groupId });
    let state: GroupState;
    try {
      state = await applyGenesis(crypto, change, groupChangeHash(crypto, change), { verify: true });
    } catch (e) {
      throw isDeadboltError(e, 'BAD_SIGNATURE') ? changeNotAllowed((e.details as { what: string }).what) : e;
    }
    const gid = groupIdHex(groupId);
    const bytes = encodeGroupState(state);
    const hash = groupStateHash(crypto, bytes);
    await store.commit([
      store.putBase(gid, bytes),
      store.putHead(gid, bytes),
      store.putMeta(gid, { epoch: 0, stateHash: hash, lastRemovalEpoch: 0, member: true, nextKeyId: 1, welcomedBy: ZERO_HASH }),
      ...(params.extraOps?.(groupId) ?? []),
    ]);
    return { groupId, change, state, deliveries: deliveriesFor(me, undefined, state, change) };
  }

  async function change(groupId: GroupId, ops: readonly GroupOp[]): Promise<GroupChangeOutcome> {
    const me = await identity();
    const gid = groupIdHex(groupId);
    const meta = await requireMember(gid);
    if (!Array.isArray(ops) || ops.length < 1 || ops.length > Limits.maxGroupOpsPerChange) {
      throw new UsageError('INVALID_ARGUMENT', { message: `ops: 1 to ${Limits.maxGroupOpsPerChange} operations`, details: { field: 'ops', expected: `1..${Limits.maxGroupOpsPerChange} operations` } });
    }
    for (const op of ops) if (op.type === 'rename') checkName(op.name);
    const head = await requireHead(gid);
    const signed = await signGroupChange(crypto, me.signingSecret, {
      groupId: head.state.groupId,
      epoch: head.state.epoch + 1,
      parentHash: meta.stateHash,
      signer: addressOf(me.certificate),
      createdAt: now(),
      ops,
    });
    // Checked before anything is stored; then applied exactly as a received change.
    let next: GroupState;
    try {
      next = await applyChange(crypto, head.state, meta.stateHash, signed, groupChangeHash(crypto, signed), { verify: true });
    } catch (e) {
      throw isDeadboltError(e, 'BAD_SIGNATURE') ? changeNotAllowed((e.details as { what: string }).what) : e;
    }
    const result = await ingest(me, signed, []);
    return { groupId: head.state.groupId, change: signed, state: result.head, deliveries: deliveriesFor(me, head, next, signed) };
  }

  async function canApply(groupId: GroupId, ops: readonly GroupOp[]): Promise<boolean> {
    const me = await identity();
    const gid = groupIdHex(groupId);
    const meta = await store.meta(gid);
    if (!meta?.member || ops.length < 1 || ops.length > Limits.maxGroupOpsPerChange) return false;
    const head = await requireHead(gid);
    const body: GroupChangeBody = { groupId: head.state.groupId, epoch: head.state.epoch + 1, parentHash: meta.stateHash, signer: addressOf(me.certificate), createdAt: 0, ops };
    // Unsigned: only the rules of §12.4 are evaluated (the ops come from this device's own change).
    const unsigned: SignedGroupChange = { ...body, signature: new Uint8Array(64), bytes: new Uint8Array(0) };
    try {
      await applyChange(crypto, head.state, meta.stateHash, unsigned, ZERO_HASH, { verify: false });
      return true;
    } catch (e) {
      if (isDeadboltError(e, 'BAD_SIGNATURE')) return false;
      throw e;
    }
  }

  function memberOp(input: NewGroupMember): GroupOp {
    return { type: 'add-member', member: memberOf(input, 'member') };
  }

  // --- received changes and welcomes ----------------------------------------------------------

  async function processChange(from: DeviceCertificate, bytes: Uint8Array, opts?: GroupCommitOptions): Promise<GroupChangeResult> {
    const me = await identity();
    const signed = decodeGroupChange(bytes);
    // The signature, not the carrier, authorizes a change (§12.4): any member may forward one.
    return ingest(me, signed, opts?.extraOps ?? [], from);
  }

  async function processWelcome(from: DeviceCertificate, bytes: Uint8Array, opts?: GroupCommitOptions): Promise<GroupChangeResult> {
    const me = await identity();
    const welcome = decodeGroupWelcome(bytes);
    const signed = welcome.change;
    const changeHash = groupChangeHash(crypto, signed);
    let state: GroupState;
    let base: { readonly state: GroupState; readonly bytes: Uint8Array; readonly hash: Uint8Array };
    if (welcome.parent) {
      // §12.6 step 1: every certificate of the parent verifies under its member's account key.
      for (const d of groupDevices(welcome.parent.state)) {
        try {
          await verifyDeviceCertificate(crypto, d);
        } catch {
          throw changeRejected('welcome state holds an uncertified device');
        }
      }
      const parentHash = groupStateHash(crypto, welcome.parent.bytes);
      state = await applyChange(crypto, welcome.parent.state, parentHash, signed, changeHash, { verify: true });
      base = { ...welcome.parent, hash: parentHash };
    } else {
      state = await applyGenesis(crypto, signed, changeHash, { verify: true });
      const stateBytes = encodeGroupState(state);
      base = { state, bytes: stateBytes, hash: groupStateHash(crypto, stateBytes) };
    }
    if (!hasGroupDevice(state, me.certificate)) throw changeRejected('welcome does not add this device');
    if (!hasGroupDevice(state, from)) throw senderMismatch('the welcoming device is not a device of the group');

    const gid = groupIdHex(signed.groupId);
    const meta = await store.meta(gid);
    // A member processes the change like any other, unless its log cannot link it and the
    // welcome comes from the device whose welcome started that log: that device's word is
    // what the log already rests on (a newcomer whose joining change lost a race, §12.6).
    if (meta?.member) {
      const linkable = knowsState(await loadLog(gid), signed.parentHash);
      const rewelcome = !linkable && equalBytes(meta.welcomedBy, from.signingKey) && state.epoch > meta.epoch;
      if (!rewelcome) return ingest(me, signed, opts?.extraOps ?? [], from);
    }
    // A welcome never takes a device back to an epoch it already passed.
    if (meta && state.epoch <= meta.epoch) throw changeRejected('welcome older than the known state');

    const ops: StorageOp[] = [];
    for (const key of meta ? await store.keysOf(gid) : []) if (key[2] !== 'held') ops.push({ type: 'delete', key });
    const headBytes = welcome.parent ? encodeGroupState(state) : base.bytes;
    const headHash = welcome.parent ? groupStateHash(crypto, headBytes) : base.hash;
    ops.push(store.putBase(gid, base.bytes));
    if (welcome.parent) ops.push(store.putChange(gid, toHex(changeHash), { stateHash: headHash, change: signed }));
    ops.push(store.putHead(gid, headBytes));
    ops.push(
      store.putMeta(gid, { epoch: state.epoch, stateHash: headHash, lastRemovalEpoch: state.lastRemovalEpoch, member: true, nextKeyId: meta?.nextKeyId ?? 1, welcomedBy: from.signingKey }),
    );
    await store.commit([...ops, ...(opts?.extraOps ?? [])]);
    return {
      groupId: signed.groupId,
      outcome: 'joined',
      head: state,
      headChanged: true,
      member: true,
      orphaned: [],
      removedDevices: [],
      addedDevices: groupDevices(state),
    };
  }

  // --- sender keys --------------------------------------------------------------------------

  async function processSenderKey(from: DeviceCertificate, bytes: Uint8Array, opts?: GroupCommitOptions) {
    const d = decodeSenderKeyDistribution(bytes);
    // §12.7.2 step 1: the session's certificate must be the sender the message names.
    if (from?.userId !== d.sender.userId || from.deviceId !== d.sender.deviceId) throw senderMismatch('distribution names another sender');
    const gid = groupIdHex(d.groupId);
    const meta = await store.meta(gid);
    if (!meta) throw unknownGroupKey('group');
    if (!meta.member) throw notAMember('removed from the group');
    const head = await requireHead(gid);
    if (!hasGroupDevice(head.state, from)) {
      // Possibly added by a change not received yet; otherwise not a member (SECURITY.md C21).
      if (d.createdEpoch > head.state.epoch) throw unknownGroupKey('group epoch');
      throw senderMismatch('sender is not a device of the group');
    }
    const record = await store.sender(gid, d.sender);
    const installed = installSenderKey(record, d);
    const ops: StorageOp[] = installed.record ? [store.putSender(gid, d.sender, installed.record)] : [];
    await store.commit([...ops, ...(opts?.extraOps ?? [])]);
    return { groupId: d.groupId, sender: d.sender, keyId: d.keyId, outcome: installed.outcome };
  }

  function distributionFor(me: IdentityRecord, groupId: GroupId, own: OwnSenderKey, to: DeviceCertificate): GroupDelivery {
    return {
      to,
      kind: 'sender-key',
      payload: encodeSenderKeyDistribution({
        groupId,
        sender: addressOf(me.certificate),
        keyId: own.keyId,
        createdEpoch: own.createdEpoch,
        generation: own.generation,
        chainKey: own.chainKey,
        signingKey: own.signingPublic,
      }),
    };
  }

  /**
   * §12.7.3: rotates or extends the own key for the head, returning the key, the
   * recipients and the meta to write. Reads the head and the recipients (the slow path).
   */
  async function reconcile(
    me: IdentityRecord,
    gid: string,
    meta: GroupMetaRecord,
    own: OwnSenderKey | undefined,
    head: GroupState,
    t: number,
    excluded: ReadonlySet<string>,
  ): Promise<{ own: OwnSenderKey; recipients: RecipientsRecord; meta: GroupMetaRecord; changed: boolean }> {
    const self = deviceFingerprint(me.certificate);
    // Excluded devices are treated as not in the head: a key one of them holds is rotated.
    const devices = groupDevices(head).filter((d) => deviceFingerprint(d) !== self && !excluded.has(deviceFingerprint(d)));
    const current = new Set(devices.map(deviceFingerprint));
    const stored = own ? await store.recipients(gid) : undefined;
    const recipients: readonly Recipient[] = stored && own && stored.keyId === own.keyId ? stored.recipients : [];
    const rotate =
      !own ||
      head.lastRemovalEpoch > own.createdEpoch ||
      recipients.some((r) => !current.has(deviceFingerprint(r))) ||
      own.generation >= rotateAfterMessages ||
      t - own.createdAt >= rotateAfterMs;
    if (rotate) {
      if (meta.nextKeyId > 0xffffffff - 1) throw groupLimit('keyId', 0xffffffff);
      const signing = await crypto.ed25519GenerateKeyPair();
      const fresh: OwnSenderKey = {
        keyId: meta.nextKeyId,
        createdEpoch: head.epoch,
        createdAt: t,
        generation: 0,
        chainKey: crypto.randomBytes(32),
        signingSecret: signing.secretKey as Ed25519SecretKey,
        signingPublic: signing.publicKey as Ed25519PublicKey,
        syncedStateHash: synced(meta, excluded),
        pendingCount: devices.length,
      };
      const list = devices.map((d) => ({ userId: d.userId, deviceId: d.deviceId, signingKey: d.signingKey, pending: true }));
      return { own: fresh, recipients: { keyId: fresh.keyId, recipients: list }, meta: { ...meta, nextKeyId: meta.nextKeyId + 1 }, changed: true };
    }
    const known = new Set(recipients.map(deviceFingerprint));
    const list: Recipient[] = [...recipients];
    for (const d of devices) if (!known.has(deviceFingerprint(d))) list.push({ userId: d.userId, deviceId: d.deviceId, signingKey: d.signingKey, pending: true });
    const pendingCount = list.filter((r) => r.pending).length;
    const ownKey = own as OwnSenderKey;
    return { own: { ...ownKey, syncedStateHash: synced(meta, excluded), pendingCount }, recipients: { keyId: ownKey.keyId, recipients: list }, meta, changed: list.length !== recipients.length };
  }

  /**
   * The head hash the own key is reconciled with. With exclusions it is never the head's
   * hash, so every send takes the slow path until they are lifted, and a device whose
   * exclusion is lifted gets the key with the next send.
   */
  function synced(meta: GroupMetaRecord, excluded: ReadonlySet<string>): Uint8Array {
    return excluded.size > 0 ? ZERO_HASH : meta.stateHash;
  }

  async function encrypt(groupId: GroupId, plaintext: Uint8Array, opts?: GroupEncryptOptions): Promise<GroupEncryptResult> {
    if (!(plaintext instanceof Uint8Array)) {
      throw new UsageError('INVALID_ARGUMENT', { message: 'plaintext must be a Uint8Array', details: { field: 'plaintext', expected: 'Uint8Array' } });
    }
    const excluded = new Set((opts?.excluded ?? []).map(deviceFingerprint));
    const me = await identity();
    const gid = groupIdHex(groupId);
    let meta = await requireMember(gid);
    let own = await store.own(gid);
    const t = now();
    const ops: StorageOp[] = [];
    const distributions: GroupDelivery[] = [];
    // The fast path reads only meta and own: same head, nothing pending, nothing due (§12.11).
    const due =
      !own || excluded.size > 0 || !equalBytes(own.syncedStateHash, meta.stateHash) || own.pendingCount > 0 || own.generation >= rotateAfterMessages || t - own.createdAt >= rotateAfterMs;
    if (due) {
      const head = (await requireHead(gid)).state;
      const r = await reconcile(me, gid, meta, own, head, t, excluded);
      own = r.own;
      if (r.changed) ops.push(store.putRecipients(gid, r.recipients));
      if (r.meta !== meta) ops.push(store.putMeta(gid, (meta = r.meta)));
      for (const x of r.recipients.recipients) {
        if (!x.pending) continue;
        const d = findDevice(head, x.userId, x.deviceId);
        if (d) distributions.push(distributionFor(me, groupId, own, d));
      }
    }
    const key = own as OwnSenderKey;
    // §12.8.2: one chain step, one seal, one signature; the chain is persisted before return.
    const step = chainStep(crypto, key.chainKey);
    const message = await sealGroupMessage(
      crypto,
      { groupId, epoch: meta.epoch, sender: addressOf(me.certificate), keyId: key.keyId, generation: key.generation },
      step.mk,
      key.signingSecret,
      plaintext,
    );
    ops.push(store.putOwn(gid, { ...key, generation: key.generation + 1, chainKey: step.next }));
    await store.commit(ops);
    return { message, distributions, keyId: key.keyId };
  }

  async function confirmDistribution(groupId: GroupId, keyId: number, devices: readonly Address[]): Promise<void> {
    const gid = groupIdHex(groupId);
    const own = await store.own(gid);
    const recipients = await store.recipients(gid);
    if (!own || !recipients || own.keyId !== keyId || recipients.keyId !== keyId) return;
    const sent = new Set(devices.map((a) => `${a.userId}\n${a.deviceId}`));
    const list = recipients.recipients.map((r) => (r.pending && sent.has(`${r.userId}\n${r.deviceId}`) ? { ...r, pending: false } : r));
    const pendingCount = list.filter((r) => r.pending).length;
    if (pendingCount === own.pendingCount) return;
    await store.commit([store.putRecipients(gid, { keyId, recipients: list }), store.putOwn(gid, { ...own, pendingCount })]);
  }

  async function redistribute(groupId: GroupId, to: DeviceCertificate): Promise<GroupDelivery | undefined> {
    const me = await identity();
    const gid = groupIdHex(groupId);
    await requireMember(gid);
    const head = (await requireHead(gid)).state;
    if (!hasGroupDevice(head, to)) throw senderMismatch('requesting device is not a device of the group');
    const own = await store.own(gid);
    if (!own) return undefined;
    return distributionFor(me, groupId, own, findDevice(head, to.userId, to.deviceId) as DeviceCertificate);
  }

  async function decrypt(bytes: Uint8Array, opts?: GroupDecryptOptions): Promise<GroupDecryptResult> {
    // §12.8.3 step 1: size, version and type before anything else.
    const m = decodeGroupMessage(bytes);
    const h = m.header;
    const gid = groupIdHex(h.groupId);
    const meta = await store.meta(gid);
    if (!meta) throw unknownGroupKey('group');
    if (!meta.member) throw unknownGroupKey('retired sender key');
    // Step 2: a sender record exists only for devices of the head (§12.7.4).
    const record = await store.sender(gid, h.sender);
    const keyIndex = record ? record.keys.findIndex((k) => k.keyId === h.keyId) : -1;
    if (!record || keyIndex === -1) throw unknownGroupKey(record && isRetired(record, h.keyId) ? 'retired sender key' : 'sender key');
    const key = record.keys[keyIndex] as (typeof record.keys)[number];
    // Step 3: a key made before a removal the sender had seen is refused.
    if (key.createdEpoch < meta.lastRemovalEpoch && meta.lastRemovalEpoch <= h.epoch) throw unknownGroupKey('retired sender key');
    // Step 4: generation bounds, before any derivation (SECURITY.md C23).
    const plan = planGeneration(key, h.generation, maxForwardSkip);
    // Step 5: only the sender can make this device derive anything.
    if (!(await verifyGroupMessageSignature(crypto, key.signingKey, m))) throw new ProtocolError('DECRYPT_FAILED', { message: 'authenticated decryption failed' });
    // Steps 6-7, on a copy.
    const taken = takeMessageKey(crypto, record, keyIndex, plan, maxSkippedKeys);
    const plaintext = openGroupMessage(crypto, m, taken.mk);
    const result: GroupDecryptResult = { groupId: h.groupId, sender: h.sender, plaintext, epoch: h.epoch, keyId: h.keyId, generation: h.generation };
    const resultOps = opts?.resultOps ? await opts.resultOps(result) : [];
    await store.commit([store.putSender(gid, h.sender, taken.record), ...(opts?.extraOps ?? []), ...resultOps]);
    return result;
  }

  async function forget(groupId: GroupId): Promise<void> {
    const gid = groupIdHex(groupId);
    await store.commit((await store.keysOf(gid)).map((key) => ({ type: 'delete' as const, key })));
  }

  const exclusiveLock = storage.exclusive?.bind(storage);
  const locked =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> =>
      queue(() => (exclusiveLock === undefined ? fn(...args) : exclusiveLock(() => fn(...args))));

  return {
    crypto,
    store,
    create: locked(create),
    change: locked(change),
    addMember: locked((g: GroupId, m: NewGroupMember) => change(g, [memberOp(m)])),
    removeMember: locked((g: GroupId, u: string) => change(g, [{ type: 'remove-member', userId: toUserId(u) }])),
    leave: locked(async (g: GroupId) => change(g, [{ type: 'remove-member', userId: (await identity()).certificate.userId }])),
    addDevice: locked((g: GroupId, d: DeviceCertificate) =>
      change(g, [{ type: 'add-device', userId: d.userId, device: { deviceId: d.deviceId, signingKey: d.signingKey, identityKey: d.identityKey, capabilities: d.capabilities, signature: d.signature } }]),
    ),
    removeDevice: locked((g: GroupId, u: string, d: string) => change(g, [{ type: 'remove-device', userId: toUserId(u), deviceId: toDeviceId(d) }])),
    promote: locked((g: GroupId, u: string) => change(g, [{ type: 'promote', userId: toUserId(u) }])),
    demote: locked((g: GroupId, u: string) => change(g, [{ type: 'demote', userId: toUserId(u) }])),
    rename: locked((g: GroupId, name: string) => change(g, [{ type: 'rename', name: checkName(name) }])),
    canApply: locked(canApply),
    processChange: locked(processChange),
    processWelcome: locked(processWelcome),
    processSenderKey: locked(processSenderKey),
    encrypt: locked(encrypt),
    confirmDistribution: locked(confirmDistribution),
    redistribute: locked(redistribute),
    decrypt: locked(decrypt),
    state: locked(async (g: GroupId) => (await store.head(groupIdHex(g)))?.state),
    isMember: locked(async (g: GroupId) => (await store.meta(groupIdHex(g)))?.member === true),
    forget: locked(forget),
    certificate: locked(async () => (await identity()).certificate),
    exclusive: <T>(fn: () => Promise<T>) => locked(fn)(),
  };
}
