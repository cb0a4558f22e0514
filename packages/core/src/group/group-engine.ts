/**
 * The group engine (docs/protocol.md §12.10): the orchestration a client wraps.
 * It owns no I/O: the client injects `sendPairwise(to, payload)` (a pairwise encrypt and
 * upload to one device), hands it group payloads it decrypted from pairwise sessions, and
 * group messages the relay fanned out; the engine returns events.
 *
 * What it adds to the {@link GroupManager}:
 *
 * - **Inbox.** A group payload decrypted from a pairwise session is written to the group
 *   inbox by {@link GroupEngine.inboxOp} *in the same batch* as the pairwise ratchet step,
 *   then processed and deleted in one later batch per payload, so a crash loses and
 *   repeats nothing. Entries that cannot be processed *yet* (an unknown group, a sender not
 *   yet in the head, an incomplete fragment set) wait for the next pass (SECURITY.md D24).
 * - **Fragments.** Payloads larger than one pairwise message are split and reassembled (§12.9.2).
 * - **Held messages.** A group message whose sender key has not arrived is persisted and
 *   retried, in arrival order, after every change of the group's keys or head.
 * - **Rebase.** This device's own changes that lose a concurrent race are re-issued on the
 *   new head, with the ops that are still allowed (§12.5).
 * - **Key requests** on demand (§12.9.1), and answers to them.
 *
 * Every engine operation runs in one queue, so inbox entries and held messages are
 * processed once. `sendPairwise` is only ever called outside the manager's lock.
 *
 * @module
 */
import { createAsyncLock, CodecError, isDeadboltError, type Address, type ErrorCode, type StorageKey, type StorageOp } from '@deadbolt/spec';
import { toHex } from '../codec/bytes.js';
import { Limits, MessageType } from '../protocol/constants.js';
import type { DeviceCertificate } from '../protocol/device-certificate.js';
import type { GroupOp } from './group-change.js';
import { isRetryable } from './group-errors.js';
import { decodeGroupFragment, fragmentPayload, reassemble, type GroupFragment } from './group-fragment.js';
import { groupIdHex, type GroupId } from './group-id.js';
import { decodeGroupKeyRequest, encodeGroupKeyRequest } from './group-key-request.js';
import type { GroupChangeOutcome, GroupChangeResult, GroupChanges, GroupCreateParams, GroupDecryptResult, GroupDelivery, GroupEncryptOptions, GroupManager, NewGroupMember } from './group-manager.js';
import { decodeGroupMessage } from './group-message.js';
import { decodeGroupWelcome } from './group-welcome.js';
import type { HeldMessageRecord, InboxRecord } from './group-records.js';
import { deviceFingerprint, findDevice, groupDevices, type GroupState } from './group-state.js';
import type { Keyed } from './group-store.js';

/** What the engine reports. */
export type GroupEvent =
  | ({ readonly type: 'message-received' } & GroupDecryptResult)
  | { readonly type: 'group-changed'; readonly groupId: GroupId; readonly head: GroupState; readonly member: boolean; readonly joined: boolean }
  /** A held message that will never decrypt (evicted, a duplicate, or refused). */
  | { readonly type: 'message-dropped'; readonly groupId: GroupId; readonly code: ErrorCode | 'EVICTED' }
  /** A pairwise-delivered group payload that was refused; it is deleted. */
  | { readonly type: 'payload-rejected'; readonly from: Address; readonly code: ErrorCode }
  /**
   * A send the engine made on its own (a rebase, an answer to a key request) failed. The
   * state is consistent; a rebased change is applied locally but some devices lack it.
   */
  | { readonly type: 'send-failed'; readonly groupId: GroupId; readonly error: unknown };

/** Options of {@link createGroupEngine}. */
export interface GroupEngineOptions {
  readonly groups: GroupManager;
  /**
   * Encrypts `payload` on the pairwise session with `to` and sends it. Must only use a
   * session whose remote certificate has `to`'s account, signing and identity keys.
   */
  readonly sendPairwise: (to: DeviceCertificate, payload: Uint8Array) => Promise<void>;
  /** The clock, in ms (inbox and held-message ordering). */
  readonly now?: () => number;
  /** Largest payload sent in one pairwise message; larger ones are fragmented (default 196,608). */
  readonly maxPairwisePayload?: number;
  /**
   * Storage operations committed in the same atomic batch as each group message this
   * engine decrypts (on arrival or from the held messages): the client's history record
   * (docs/protocol.md §11.2). A throw refuses the message (it is dropped, nothing committed).
   */
  readonly messageOps?: (result: GroupDecryptResult) => readonly StorageOp[] | Promise<readonly StorageOp[]>;
  /**
   * Storage operations committed in the same atomic batch as a group this device creates or
   * joins by a welcome (the client's list of groups). Called with the group's id.
   */
  readonly joinOps?: (groupId: GroupId) => readonly StorageOp[];
}

/** The result of a send. */
export interface GroupSendResult {
  /** The group message for the relay to fan out. */
  readonly message: Uint8Array;
  /** Every device of the head other than this one: the fan-out addressing. */
  readonly recipients: readonly Address[];
  /**
   * Devices whose key distribution could not be sent: they cannot read this message. They
   * stay pending and get the key with the next send (from that generation on).
   */
  readonly undelivered: readonly Address[];
  /** The first error `sendPairwise` threw, if any. */
  readonly error?: unknown;
}

/**
 * The group engine. Create with {@link createGroupEngine}. Its membership changes
 * ({@link GroupChanges}) sign, apply and send the change, and return the new head.
 *
 * @example
 * ```ts
 * const engine = createGroupEngine({ groups, sendPairwise: (to, p) => client.sendGroupPayload(to, p) });
 * const groupId = await engine.create({ name: 'team', members: [{ devices: bobDevices }] });
 * const { message, recipients } = await engine.send(groupId, utf8('hi'));
 * relay.fanOut(recipients, message);
 * // on a pairwise plaintext carrying a group payload:
 * await sessions.decrypt(from, wire, { extraOps: () => [engine.inboxOp(senderCertificate, payload)] });
 * const events = await engine.drainInbox();
 * ```
 */
export interface GroupEngine extends GroupChanges<GroupState> {
  readonly groups: GroupManager;
  create(params: Omit<GroupCreateParams, 'extraOps'>): Promise<GroupId>;
  /**
   * Encrypts once, sends pending key distributions over pairwise sessions, returns the
   * message and its fan-out. `excluded` devices get no key and are left out of the fan-out.
   */
  send(groupId: GroupId, plaintext: Uint8Array, options?: GroupEncryptOptions): Promise<GroupSendResult>;
  /**
   * The storage operation that puts a pairwise-delivered group payload in the inbox.
   * Synchronous: pass it as an extra operation of the pairwise decrypt's batch (§12.10).
   * `from` is the certificate of the session that decrypted the payload.
   */
  inboxOp(from: DeviceCertificate, payload: Uint8Array): StorageOp;
  /** Puts a payload in the inbox and drains it (when it cannot share the pairwise batch). */
  receivePairwise(from: DeviceCertificate, payload: Uint8Array): Promise<GroupEvent[]>;
  /** Processes every inbox entry that can be processed, in arrival order, until no progress. */
  drainInbox(): Promise<GroupEvent[]>;
  /**
   * Decrypts a fanned-out group message, or holds it while its sender key is missing.
   * Throws for messages that will never decrypt (`DUPLICATE_MESSAGE`, `DECRYPT_FAILED`, ...)
   * and `UNKNOWN_KEY` (`group`) for a group this device does not know.
   */
  receiveGroupMessage(message: Uint8Array): Promise<GroupEvent[]>;
  /** Asks each sender of a held message for its current key (§12.9.1); once per sender and key. */
  requestMissingKeys(groupId: GroupId): Promise<number>;
}

const MAX_REQUESTED = 4096;

/**
 * Creates a group engine over a group manager.
 *
 * @example
 * ```ts
 * const engine = createGroupEngine({ groups: createGroupManager({ storage }), sendPairwise });
 * ```
 */
export function createGroupEngine(options: GroupEngineOptions): GroupEngine {
  const groups = options.groups;
  const store = groups.store;
  const crypto = groups.crypto;
  const now = options.now ?? Date.now;
  const chunk = options.maxPairwisePayload ?? Limits.maxGroupFragmentChunk;
  const queue = createAsyncLock();
  let counter = 0;
  const requested = new Set<string>();
  const fanOutCache = new Map<string, { readonly hash: string; readonly recipients: readonly Address[] }>();

  const seq = (): string => `${String(now()).padStart(16, '0')}-${String(counter++ % 1e8).padStart(8, '0')}-${toHex(crypto.randomBytes(4))}`;
  const commit = (ops: readonly StorageOp[]): Promise<void> => (ops.length === 0 ? Promise.resolve() : groups.exclusive(() => store.commit(ops)));
  const addr = (c: { userId: string; deviceId: string }): string => `${c.userId}\n${c.deviceId}`;

  /** Sends every delivery (fragmented if needed); returns the devices reached and the first failure. */
  async function sendAll(deliveries: readonly GroupDelivery[]): Promise<{ sent: Address[]; error?: unknown }> {
    const sent: Address[] = [];
    let error: unknown;
    for (const d of deliveries) {
      try {
        for (const part of fragmentPayload(crypto, d.payload, chunk)) await options.sendPairwise(d.to, part);
        sent.push({ userId: d.to.userId, deviceId: d.to.deviceId });
      } catch (e) {
        error ??= e;
      }
    }
    return error === undefined ? { sent } : { sent, error };
  }

  async function publish(outcome: GroupChangeOutcome): Promise<GroupState> {
    const { error } = await sendAll(outcome.deliveries);
    if (error !== undefined) throw error;
    return outcome.state;
  }

  /**
   * Re-issues the still-allowed ops of this device's orphaned changes on the new head
   * (§12.5). A failure to send is reported, not thrown: the payload that caused the rebase
   * was processed and must not be reported as refused.
   */
  async function rebase(result: GroupChangeResult): Promise<GroupEvent[]> {
    if (!result.member) return [];
    const me = await groups.certificate();
    const events: GroupEvent[] = [];
    for (const lost of result.orphaned) {
      if (lost.signer.userId !== me.userId || lost.signer.deviceId !== me.deviceId) continue;
      const keep: GroupOp[] = [];
      for (const op of lost.ops) if (await groups.canApply(result.groupId, [...keep, op])) keep.push(op);
      if (keep.length === 0) continue;
      const out = await groups.change(result.groupId, keep);
      const { error } = await sendAll(out.deliveries);
      if (error !== undefined) events.push({ type: 'send-failed', groupId: result.groupId, error });
    }
    return events;
  }

  function changed(r: GroupChangeResult): GroupEvent[] {
    return r.headChanged ? [{ type: 'group-changed', groupId: r.groupId, head: r.head, member: r.member, joined: r.outcome === 'joined' }] : [];
  }

  type Processed = { readonly status: 'done' | 'retry' | 'rejected'; readonly events: GroupEvent[]; readonly group?: GroupId };

  /** Processes one payload; `deletes` go in the same batch as its effect. */
  async function processPayload(from: DeviceCertificate, payload: Uint8Array, deletes: readonly StorageOp[]): Promise<Processed> {
    const type = payload.length > 1 ? payload[1] : -1;
    let result: GroupChangeResult | undefined;
    let answer: { groupId: GroupId; delivery: GroupDelivery | undefined } | undefined;
    let groupId: GroupId | undefined;
    try {
      switch (type) {
        case MessageType.GROUP_SENDER_KEY:
          groupId = (await groups.processSenderKey(from, payload, { extraOps: deletes })).groupId;
          break;
        case MessageType.GROUP_CHANGE:
          result = await groups.processChange(from, payload, { extraOps: deletes });
          break;
        case MessageType.GROUP_WELCOME: {
          const join = options.joinOps ? options.joinOps(decodeGroupWelcome(payload).change.groupId) : [];
          result = await groups.processWelcome(from, payload, { extraOps: [...deletes, ...join] });
          break;
        }
        case MessageType.GROUP_KEY_REQUEST: {
          const q = decodeGroupKeyRequest(payload);
          answer = { groupId: q.groupId, delivery: await groups.redistribute(q.groupId, from) };
          await commit(deletes);
          break;
        }
        default:
          throw new CodecError({ structure: 'GroupPayload', field: 'type', offset: 1, reason: 'not a group payload type' });
      }
    } catch (e) {
      if (isRetryable(e)) return { status: 'retry', events: [] };
      if (!isDeadboltError(e) || e.kind === 'storage' || e.kind === 'transport' || e.kind === 'internal') throw e;
      await commit(deletes);
      return { status: 'rejected', events: [{ type: 'payload-rejected', from: { userId: from.userId, deviceId: from.deviceId }, code: e.code }] };
    }
    // The payload is processed and deleted; what follows only sends.
    if (result) return { status: 'done', events: [...changed(result), ...(await rebase(result))], group: result.groupId };
    if (answer?.delivery) {
      const { error } = await sendAll([answer.delivery]);
      if (error !== undefined) return { status: 'done', events: [{ type: 'send-failed', groupId: answer.groupId, error }] };
    }
    return groupId ? { status: 'done', events: [], group: groupId } : { status: 'done', events: [] };
  }

  /** One pass over the inbox; returns its events and whether anything was consumed. */
  async function drainPass(): Promise<{ events: GroupEvent[]; progress: boolean; touched: Set<string> }> {
    const entries = await store.inbox(2 * Limits.maxGroupInbox);
    const events: GroupEvent[] = [];
    const touched = new Set<string>();
    let progress = false;
    const sets = new Map<string, { from: DeviceCertificate; keys: StorageKey[]; fragments: GroupFragment[] }>();
    const stuck: Keyed<InboxRecord>[] = [];
    const handle = async (from: DeviceCertificate, payload: Uint8Array, deletes: StorageOp[], entry?: Keyed<InboxRecord>): Promise<void> => {
      const r = await processPayload(from, payload, deletes);
      events.push(...r.events);
      if (r.group) touched.add(groupIdHex(r.group));
      if (r.status === 'retry') {
        if (entry) stuck.push(entry);
      } else progress = true;
    };
    for (const e of entries) {
      const payload = e.value.payload;
      if (payload[1] === MessageType.GROUP_FRAGMENT) {
        let f: GroupFragment;
        try {
          f = decodeGroupFragment(payload);
        } catch (err) {
          if (!isDeadboltError(err)) throw err;
          await commit([{ type: 'delete', key: e.key }]);
          events.push({ type: 'payload-rejected', from: { userId: e.value.from.userId, deviceId: e.value.from.deviceId }, code: err.code });
          progress = true;
          continue;
        }
        const id = `${addr(e.value.from)}\n${toHex(e.value.from.signingKey)}\n${toHex(f.payloadHash)}`;
        const set = sets.get(id) ?? { from: e.value.from, keys: [], fragments: [] };
        set.keys.push(e.key);
        set.fragments.push(f);
        sets.set(id, set);
        continue;
      }
      await handle(e.value.from, payload, [{ type: 'delete', key: e.key }], e);
    }
    for (const set of sets.values()) {
      const deletes: StorageOp[] = set.keys.map((key) => ({ type: 'delete', key }));
      let whole: Uint8Array | undefined;
      try {
        whole = reassemble(crypto, set.fragments);
      } catch (err) {
        if (!isDeadboltError(err)) throw err;
        await commit(deletes);
        events.push({ type: 'payload-rejected', from: { userId: set.from.userId, deviceId: set.from.deviceId }, code: err.code });
        progress = true;
        continue;
      }
      if (whole) await handle(set.from, whole, deletes);
    }
    // Bounded inbox (§12.12): beyond the cap, the oldest entries still waiting are dropped.
    const excess = entries.length - Limits.maxGroupInbox;
    if (excess > 0 && stuck.length > 0) {
      const drop = stuck.slice(0, excess);
      await commit(drop.map((e) => ({ type: 'delete', key: e.key })));
      for (const e of drop) events.push({ type: 'payload-rejected', from: { userId: e.value.from.userId, deviceId: e.value.from.deviceId }, code: 'LIMIT_EXCEEDED' });
    }
    return { events, progress, touched };
  }

  /**
   * Retries a group's held messages (§12.10): senders in the order their first held message
   * arrived, each sender's messages in its sending order (key id, then generation).
   */
  async function retryHeld(gid: string): Promise<GroupEvent[]> {
    const events: GroupEvent[] = [];
    const bySender = new Map<string, { entry: Keyed<HeldMessageRecord>; keyId: number; generation: number; groupId: GroupId }[]>();
    for (const h of await store.held(gid)) {
      let header;
      try {
        header = decodeGroupMessage(h.value.message).header;
      } catch {
        await commit([{ type: 'delete', key: h.key }]);
        continue;
      }
      const id = addr(header.sender);
      const list = bySender.get(id) ?? [];
      list.push({ entry: h, keyId: header.keyId, generation: header.generation, groupId: header.groupId });
      bySender.set(id, list);
    }
    for (const list of bySender.values()) {
      list.sort((a, b) => a.keyId - b.keyId || a.generation - b.generation);
      for (const { entry, groupId } of list) {
        const del: StorageOp = { type: 'delete', key: entry.key };
        try {
          const r = await groups.decrypt(entry.value.message, options.messageOps ? { extraOps: [del], resultOps: options.messageOps } : { extraOps: [del] });
          events.push({ type: 'message-received', ...r });
        } catch (e) {
          if (isRetryable(e)) continue;
          if (!isDeadboltError(e) || e.kind === 'storage' || e.kind === 'internal') throw e;
          await commit([del]);
          events.push({ type: 'message-dropped', groupId, code: e.code });
        }
      }
    }
    return events;
  }

  async function drainInbox(): Promise<GroupEvent[]> {
    const events: GroupEvent[] = [];
    const touched = new Set<string>();
    // Each pass consumes at least one entry or stops: bounded by the inbox size.
    for (let pass = 0; pass <= 2 * Limits.maxGroupInbox; pass++) {
      const r = await drainPass();
      events.push(...r.events);
      for (const g of r.touched) touched.add(g);
      if (!r.progress) break;
    }
    for (const gid of touched) events.push(...(await retryHeld(gid)));
    return events;
  }

  async function receiveGroupMessage(message: Uint8Array): Promise<GroupEvent[]> {
    try {
      const r = await groups.decrypt(message, options.messageOps ? { resultOps: options.messageOps } : {});
      return [{ type: 'message-received', ...r }];
    } catch (e) {
      if (!isRetryable(e)) throw e;
      const header = decodeGroupMessage(message).header;
      const gid = groupIdHex(header.groupId);
      // Held only for groups this device knows, so the relay cannot fill the store with
      // messages for invented groups.
      if (!(await store.meta(gid))) throw e;
      const events: GroupEvent[] = [];
      const held = await store.held(gid);
      const ops: StorageOp[] = [store.putHeld(gid, seq(), { receivedAt: now(), message })];
      for (const old of held.slice(0, Math.max(0, held.length + 1 - Limits.maxGroupHeldMessages))) {
        ops.push({ type: 'delete', key: old.key });
        events.push({ type: 'message-dropped', groupId: header.groupId, code: 'EVICTED' });
      }
      await commit(ops);
      return events;
    }
  }

  async function requestMissingKeys(groupId: GroupId): Promise<number> {
    const gid = groupIdHex(groupId);
    const head = await groups.state(groupId);
    if (!head) return 0;
    const deliveries: GroupDelivery[] = [];
    for (const h of await store.held(gid)) {
      const { sender, keyId } = decodeGroupMessage(h.value.message).header;
      const id = `${gid}\n${addr(sender)}\n${keyId}`;
      const to = findDevice(head, sender.userId, sender.deviceId);
      if (!to || requested.has(id)) continue;
      if (requested.size >= MAX_REQUESTED) requested.delete(requested.values().next().value as string);
      requested.add(id);
      deliveries.push({ to, kind: 'sender-key', payload: encodeGroupKeyRequest({ groupId, keyId }) });
    }
    const { error } = await sendAll(deliveries);
    if (error !== undefined) throw error;
    return deliveries.length;
  }

  async function send(groupId: GroupId, plaintext: Uint8Array, sendOptions?: GroupEncryptOptions): Promise<GroupSendResult> {
    const out = await groups.encrypt(groupId, plaintext, sendOptions);
    let undelivered: Address[] = [];
    let error: unknown;
    if (out.distributions.length > 0) {
      const r = await sendAll(out.distributions);
      await groups.confirmDistribution(groupId, out.keyId, r.sent);
      // One unreachable device does not stop the group: it is reported, and stays pending.
      const sent = new Set(r.sent.map(addr));
      undelivered = out.distributions.filter((d) => !sent.has(addr(d.to))).map((d) => ({ userId: d.to.userId, deviceId: d.to.deviceId }));
      error = r.error;
    }
    const excluded = new Set((sendOptions?.excluded ?? []).map(deviceFingerprint));
    let recipients = await fanOut(groupId);
    if (excluded.size > 0) {
      const head = await groups.state(groupId);
      const out = new Set(head ? groupDevices(head).filter((d) => excluded.has(deviceFingerprint(d))).map(addr) : []);
      recipients = recipients.filter((r) => !out.has(addr(r)));
    }
    return error === undefined ? { message: out.message, recipients, undelivered } : { message: out.message, recipients, undelivered, error };
  }

  /** Every device of the head but this one, cached per head (the only per-recipient work of a send). */
  async function fanOut(groupId: GroupId): Promise<readonly Address[]> {
    const gid = groupIdHex(groupId);
    const meta = await store.meta(gid);
    const hash = meta ? toHex(meta.stateHash) : '';
    const hit = fanOutCache.get(gid);
    if (hit && hit.hash === hash) return hit.recipients;
    const me = await groups.certificate();
    const head = await groups.state(groupId);
    const recipients = head ? groupDevices(head).filter((d) => addr(d) !== addr(me)).map((d) => ({ userId: d.userId, deviceId: d.deviceId })) : [];
    fanOutCache.delete(gid);
    fanOutCache.set(gid, { hash, recipients });
    if (fanOutCache.size > 64) fanOutCache.delete(fanOutCache.keys().next().value as string);
    return recipients;
  }

  const serial =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> =>
      queue(() => fn(...args));
  const changing =
    <A extends unknown[]>(fn: (...args: A) => Promise<GroupChangeOutcome>) =>
    (...args: A): Promise<GroupState> =>
      queue(async () => publish(await fn(...args)));

  return {
    groups,
    create: serial(async (params: Omit<GroupCreateParams, 'extraOps'>) => {
      const joinOps = options.joinOps;
      const out = await groups.create(joinOps ? { ...params, extraOps: joinOps } : params);
      await publish(out);
      return out.groupId;
    }),
    change: changing((g: GroupId, ops: readonly GroupOp[]) => groups.change(g, ops)),
    addMember: changing((g: GroupId, m: NewGroupMember) => groups.addMember(g, m)),
    removeMember: changing((g: GroupId, u: string) => groups.removeMember(g, u)),
    leave: changing((g: GroupId) => groups.leave(g)),
    addDevice: changing((g: GroupId, d: DeviceCertificate) => groups.addDevice(g, d)),
    removeDevice: changing((g: GroupId, u: string, d: string) => groups.removeDevice(g, u, d)),
    promote: changing((g: GroupId, u: string) => groups.promote(g, u)),
    demote: changing((g: GroupId, u: string) => groups.demote(g, u)),
    rename: changing((g: GroupId, n: string) => groups.rename(g, n)),
    send: serial(send),
    inboxOp: (from, payload) => store.putInbox(seq(), { receivedAt: now(), from, payload }),
    receivePairwise: serial(async (from: DeviceCertificate, payload: Uint8Array) => {
      await commit([store.putInbox(seq(), { receivedAt: now(), from, payload })]);
      return drainInbox();
    }),
    drainInbox: serial(drainInbox),
    receiveGroupMessage: serial(receiveGroupMessage),
    requestMissingKeys: serial(requestMissingKeys),
  };
}
