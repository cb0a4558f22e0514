/**
 * The client's side of multiple devices (docs/protocol.md §3.3, §3.4, §11.4): keeping
 * device lists in step with the relay's directory, publishing this user's list, linking
 * and revoking devices.
 *
 * The relay serves lists; it cannot make one. Every list is verified by the session
 * manager under the account key this device trusts before anything uses it, so a relay
 * that adds a device to a user's directory gets a `device-rejected` report, never a
 * session.
 *
 * @module
 */
import {
  isDeadboltError,
  RELAY_LIMITS,
  UsageError,
  deviceId as toDeviceId,
  userId as toUserId,
  type Address,
  type DeviceDirectoryEntry,
  type ErrorCode,
  type StorageAdapter,
  type TransportAdapter,
  type UserId,
  type UserListVersion,
} from '@deadbolt/spec';
import { createDefaultCryptoProvider } from '#crypto-default';
import type { CryptoProvider } from '../crypto/provider.js';
import { verifyDeviceCertificate } from '../protocol/device-certificate.js';
import { decodePrekeyBundle } from '../protocol/prekey-bundle.js';
import type { DeviceListEntry } from '../protocol/device-list.js';
import { createDeviceLinkRequest, type PendingDeviceLink } from '../session/device-link-request.js';
import { createEncryptedStorage } from '../storage/encrypted-storage.js';
import type { SessionManager } from '../session/session-manager.js';
import { resolveStorage, resolveTransport, type AdapterConfig, type ModuleLoader } from './adapter-config.js';

/** Bundles taken from one directory answer (the protocol's device list limit). */
export const MAX_DEVICES_PER_USER = 32;
/** How long a link code is good for at the relay (docs/relay-protocol.md PROVISION). */
export const LINK_LIFETIME_MS = 10 * 60_000;

/** One of this user's devices. */
export interface DeviceInfo {
  readonly deviceId: string;
  /** Whether it is the device this client runs on. */
  readonly thisDevice: boolean;
}

/** What the device functions need from the client. */
export interface DeviceContext {
  readonly self: Address;
  readonly sessions: SessionManager;
  readonly transport: TransportAdapter;
  /** A device the directory offered that is not (or no longer) one of the user's. */
  rejected(userId: UserId, deviceId: string, reason: ErrorCode): void;
  /** A user's device list changed; `removed` lost their sessions; `current` are the device ids it names. */
  changed(userId: UserId, listVersion: number, removed: readonly Address[], current: readonly string[]): void;
  /** A background failure worth reporting. */
  error(e: unknown): void;
  /**
   * Per user, the last read a send made to reach listed devices without a session, and
   * how long to wait before the next ({@link discoveryDue}). Bounded to
   * {@link MAX_TRACKED_REREADS} users, the least recently tried forgotten first.
   */
  readonly rereads: Map<string, RereadState>;
  /** The clock (ms) for {@link rereads}. */
  now(): number;
}

/** What {@link discoveryDue} remembers of a user. */
export interface RereadState {
  /** When the last read was tried (ms), whatever the relay answered. */
  readonly at: number;
  /** The listed devices without a session then (sorted, space-joined: ids have no spaces). */
  readonly missing: string;
  /** The wait before the next read while nothing of the above changes. */
  readonly interval: number;
}

/**
 * The first wait between reads a send makes to reach listed devices without a session: the
 * relay's bundle-fetch limit refills one read per 10 minutes per (requester, user) pair
 * (relay-protocol.md §5), and a read that wants a device with no bundle still counts.
 */
export const REREAD_INTERVAL_MS = 10 * 60_000;
/** The longest wait: the wait doubles after each read while the same devices stay out of reach. */
export const MAX_REREAD_INTERVAL_MS = 6 * 60 * 60_000;
/** Users whose reread state is remembered. */
const MAX_TRACKED_REREADS = 1_000;

function remember(ctx: DeviceContext, user: UserId, state: RereadState): void {
  const map = ctx.rereads;
  map.delete(user);
  map.set(user, state);
  if (map.size > MAX_TRACKED_REREADS) map.delete(map.keys().next().value as string);
}

/**
 * A read that should have reached a re-linked device failed ({@link readRelinked}): unless
 * a send already tries this user on a schedule, the next send reads the entry again.
 */
function noteIncompleteRead(ctx: DeviceContext, user: UserId): void {
  if (!ctx.rereads.has(user)) remember(ctx, user, { at: Number.NEGATIVE_INFINITY, missing: '', interval: REREAD_INTERVAL_MS });
}

/**
 * A read {@link discoveryDue} asked for never reached the relay (this device offline, the
 * transport closed): it is not an attempt, so it neither waits nor grows the wait.
 */
export function forgetReread(ctx: DeviceContext, user: UserId, tried: RereadState | undefined): void {
  if (tried === undefined) ctx.rereads.delete(user);
  else remember(ctx, user, tried);
}

/** What {@link discoveryDue} knew of `user` before its answer (to undo it with {@link forgetReread}). */
export function rereadState(ctx: DeviceContext, user: UserId): RereadState | undefined {
  return ctx.rereads.get(user);
}

/**
 * Whether a send to `user`, who has sessions, should first read the user's entry again:
 * the user's signed list names a device (other than this one) this device has no session
 * with. That device may have been linked since (again under an id this device knew: §3.3),
 * or a read that should have reached it failed; without this, nothing would ever start a
 * session with it while others exist. A user without sessions is always read by the send.
 *
 * Tried at most every {@link REREAD_INTERVAL_MS}, the wait doubling (up to
 * {@link MAX_REREAD_INTERVAL_MS}) while the same devices stay out of reach (a device that
 * never uploaded prekeys, or whose bundle does not verify), whatever list versions the
 * contact publishes meanwhile: a device that cannot be reached must not make this client
 * read its user's entry again and again (the relay charges reads per requesting user and
 * target, shared by this user's devices). A true answer counts as the attempt, whatever
 * the relay answers; one that never reached it is undone ({@link forgetReread}). A clock
 * that went back makes the read due.
 */
export async function discoveryDue(ctx: DeviceContext, user: UserId, devices?: readonly Address[]): Promise<boolean> {
  const list = await ctx.sessions.deviceList(user);
  if (list === undefined) return false;
  const known = new Set<string>((devices ?? (await ctx.sessions.devices(user))).map((d) => d.deviceId));
  const isSelf = (id: string): boolean => user === ctx.self.userId && id === ctx.self.deviceId;
  const missing = list.devices
    .map((d) => d.deviceId as string)
    .filter((id) => !isSelf(id) && !known.has(id))
    .sort()
    .join(' ');
  if (missing === '') return false;
  const now = ctx.now();
  const last = ctx.rereads.get(user);
  const same = last !== undefined && last.missing === missing;
  if (same && now >= last.at && now - last.at < last.interval) return false;
  const interval = same ? Math.min(last.interval * 2, MAX_REREAD_INTERVAL_MS) : REREAD_INTERVAL_MS;
  remember(ctx, user, { at: now, missing, interval });
  return true;
}

/**
 * Before a send to `user`: a user without sessions is read (its errors are the send's);
 * one whose signed list names a device without a session is read again now and then
 * ({@link discoveryDue}), its errors reported, the send going on to the devices it has. A
 * read that never reached the relay (offline, closed) is not counted as an attempt.
 */
export async function reachAll(ctx: DeviceContext, user: UserId): Promise<void> {
  const devices = await ctx.sessions.devices(user);
  if (devices.length === 0) {
    await refreshDevices(ctx, user);
    return;
  }
  const before = ctx.rereads.get(user);
  if (!(await discoveryDue(ctx, user, devices))) return;
  await refreshDevices(ctx, user).catch((e: unknown) => {
    if (isDeadboltError(e, 'TRANSPORT_FAILED') || isDeadboltError(e, 'CLOSED')) forgetReread(ctx, user, before);
    ctx.error(e);
  });
}

/**
 * Applies a signed device list of `user` (verified by the session manager; a rollback
 * ignored) and reports a change ({@link DeviceContext.changed}).
 */
async function applyList(ctx: DeviceContext, user: UserId, encoded: Uint8Array): Promise<void> {
  const applied = await ctx.sessions.applyDeviceList(user, encoded);
  if (applied.changed) ctx.changed(user, applied.list.listVersion, applied.removed, applied.list.devices.map((d) => d.deviceId));
}

/**
 * Brings one user's devices in step with the relay's directory: applies the user's list
 * (when the relay has one: verified, a rollback ignored), then starts sessions with every
 * listed device this device has none with. Returns the devices it now has sessions with.
 * A bundle the list does not cover (or that fails to verify) is skipped and reported; if
 * every bundle fails and no session remains, the (typed) reason is thrown.
 */
export async function refreshDevices(ctx: DeviceContext, user: UserId, prefetched?: DeviceDirectoryEntry): Promise<Address[]> {
  // `prefetched`: an answer this device just got (start-up reads its own user's entry
  // once, for the list and the siblings: the relay rate-limits directory reads).
  // Devices with a session are skipped: the relay takes none of their prekeys (their
  // bundles would be ignored below anyway), and a read that takes none is cheap for it.
  const apply = async (entry: DeviceDirectoryEntry): Promise<void> => {
    if (entry.deviceList === undefined) return;
    try {
      await applyList(ctx, user, entry.deviceList);
    } catch (e) {
      // A list that does not verify (forged, another key, equivocation) is not used; the
      // stored list, if any, keeps governing which bundles are accepted below.
      ctx.error(e);
      if (isDeadboltError(e, 'UNTRUSTED_IDENTITY')) throw e;
    }
  };
  const skip = prefetched === undefined ? await skippableDevices(ctx, user) : [];
  let entry = prefetched ?? (await ctx.transport.fetchBundles(user, { skip }));
  await apply(entry);
  const again = await readRelinked(ctx, user, skip, entry, apply);
  entry = again.entry;
  const known = new Set((await ctx.sessions.devices(user)).map((a) => a.deviceId));
  let lastError: unknown;
  for (const bytes of entry.bundles.slice(0, MAX_DEVICES_PER_USER)) {
    // One bad bundle (forged, malformed, unlisted, an untrusted key) never stops the others.
    try {
      const bundle = decodePrekeyBundle(bytes);
      const cert = bundle.certificate;
      if (cert.userId !== user) continue; // a directory answering for someone else
      if (cert.userId === ctx.self.userId && cert.deviceId === ctx.self.deviceId) continue;
      if (known.has(cert.deviceId)) continue;
      await ctx.sessions.processBundle(bundle);
      known.add(cert.deviceId);
    } catch (e) {
      lastError = e;
      if (isDeadboltError(e, 'DEVICE_NOT_CURRENT')) ctx.rejected(user, e.details.deviceId, 'DEVICE_NOT_CURRENT');
      else ctx.error(e);
    }
  }
  if (!again.complete) noteIncompleteRead(ctx, user);
  const devices = await ctx.sessions.devices(user);
  if (devices.length === 0 && lastError !== undefined) throw lastError;
  return devices;
}

/**
 * After a read that skipped `skip` and applied its list: a skipped device whose sessions
 * the list ended while still naming it (revoked, then linked again under the same id with
 * new keys, §3.3) needs its bundle after all, so the entry is read once more, skipping
 * the devices that still have sessions and those the first answer already served (no
 * second prekey taken from them). The answers' bundles are merged. A second read that
 * fails is reported, not thrown: the first answer stands, and the read is not `complete`,
 * so the next send to the user reads again ({@link discoveryDue}).
 */
async function readRelinked(
  ctx: DeviceContext,
  user: UserId,
  skip: readonly string[],
  entry: DeviceDirectoryEntry,
  apply: (entry: DeviceDirectoryEntry) => Promise<void>,
): Promise<{ entry: DeviceDirectoryEntry; complete: boolean }> {
  if (skip.length === 0) return { entry, complete: true };
  const list = await ctx.sessions.deviceList(user);
  const known = new Set<string>((await ctx.sessions.devices(user)).map((d) => d.deviceId));
  const relinked = skip.filter((id) => !known.has(id) && list?.devices.some((d) => d.deviceId === id));
  if (relinked.length === 0) return { entry, complete: true };
  const served = new Set<string>();
  for (const bytes of entry.bundles.slice(0, MAX_DEVICES_PER_USER)) {
    try {
      served.add(decodePrekeyBundle(bytes).certificate.deviceId);
    } catch {
      // A malformed bundle is reported where the bundles are used.
    }
  }
  const stillSkipped = [...new Set([...skip.filter((id) => known.has(id)), ...served])].slice(0, RELAY_LIMITS.maxBundles);
  try {
    const second = await ctx.transport.fetchBundles(user, { skip: stillSkipped });
    await apply(second);
    return { entry: { bundles: [...entry.bundles, ...second.bundles], deviceList: second.deviceList ?? entry.deviceList }, complete: true };
  } catch (e) {
    ctx.error(e);
    return { entry, complete: false };
  }
}

/** The device list version to name in a send to `user` (0 when none is known). */
export async function listVersionOf(sessions: SessionManager, user: UserId): Promise<number> {
  return (await sessions.deviceList(user))?.listVersion ?? 0;
}

/** Attempts of one send when the relay reports out-of-date device lists (DEVICE_MISMATCH). */
const SEND_ATTEMPTS = 3;

/**
 * One send that names device list versions, tried again while the relay refuses it for
 * naming out-of-date ones (DEVICE_MISMATCH, docs/relay-protocol.md), at most
 * {@link SEND_ATTEMPTS} times. Each attempt runs `prepare` (which encrypts again, for the
 * devices current now: the skipped ratchet steps of a refused attempt leave gaps only),
 * then `deliver`; after a refusal `refresh` gets the users the relay named (and what the
 * refused attempt prepared). Only a DEVICE_MISMATCH from `deliver` is retried: any other
 * error, and the last refusal, is thrown as is.
 */
export async function sendWithListRefresh<P>(
  prepare: () => Promise<P>,
  deliver: (prepared: P) => Promise<void>,
  refresh: (stale: readonly UserListVersion[], refused: P) => Promise<void>,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const prepared = await prepare();
    try {
      await deliver(prepared);
      return;
    } catch (e) {
      if (!isDeadboltError(e, 'DEVICE_MISMATCH') || attempt >= SEND_ATTEMPTS) throw e;
      await refresh(e.details.users, prepared);
    }
  }
}

/**
 * Makes sure the relay has this user's device list (§3.3). When the relay has one, it is
 * applied (this device learns of devices added or revoked elsewhere). When it has none
 * (a new user, or devices of earlier versions) and this device holds the account key, the
 * next list is published: this device and every device the directory offers that carries
 * a valid certificate of this account, so publishing never drops a working device.
 * Returns the directory entry it read (with the list it published, if it did).
 */
export async function ensureOwnDeviceList(ctx: DeviceContext): Promise<DeviceDirectoryEntry> {
  const user = ctx.self.userId;
  // Every start reads this entry (a page reload, a crash loop): the siblings this device
  // has sessions with are skipped, so a restart takes none of their prekeys and stays
  // under the relay's bundle-fetch limit (relay-protocol.md FETCH_BUNDLES).
  const skip = await skippableDevices(ctx, user);
  const stored = await ctx.sessions.deviceList(user);
  const read = async (options: { skip: string[] }): Promise<DeviceDirectoryEntry> => {
    try {
      return await ctx.transport.fetchBundles(user, options);
    } catch (e) {
      // Rate limited (a burst of restarts): a device that holds its user's signed list
      // goes on with it and reads the entry at its next start; the limit is reported.
      if (isDeadboltError(e, 'RATE_LIMITED') && stored !== undefined) {
        ctx.error(e);
        return { bundles: [], deviceList: stored.encoded };
      }
      if (!isDeadboltError(e, 'UNKNOWN_USER')) throw e;
      return { bundles: [], deviceList: undefined };
    }
  };
  let entry = await read({ skip });
  // No list yet: the list this device publishes below is made from the bundles' devices,
  // so it must see every one, skipped or not. (Only before the user's first list.)
  if (entry.deviceList === undefined && skip.length > 0) entry = await read({ skip: [] });
  if (entry.deviceList !== undefined) {
    await applyList(ctx, user, entry.deviceList);
    // A sibling skipped above whose sessions the list just ended (linked again under the
    // same id with new keys) needs its bundle: the caller starts sessions from this entry.
    // A failed second read leaves the first answer (never the stored list the first read's
    // fallback would give: it is older than the list just applied).
    const again = await readRelinked(ctx, user, skip, entry, async (e) => {
      if (e.deviceList === undefined) return;
      await applyList(ctx, user, e.deviceList);
    });
    return again.entry;
  }
  const me = await ctx.sessions.certificate();
  const devices = new Map<string, DeviceListEntry>([[me.deviceId, { deviceId: me.deviceId, signingKey: me.signingKey, identityKey: me.identityKey }]]);
  for (const bytes of entry.bundles.slice(0, MAX_DEVICES_PER_USER)) {
    try {
      const cert = decodePrekeyBundle(bytes).certificate;
      if (cert.userId !== user || devices.has(cert.deviceId) || !sameKey(cert.accountKey, me.accountKey)) continue;
      await verifyDeviceCertificate(ctx.sessions.crypto, cert);
      devices.set(cert.deviceId, { deviceId: cert.deviceId, signingKey: cert.signingKey, identityKey: cert.identityKey });
    } catch (e) {
      ctx.error(e);
    }
  }
  let list;
  try {
    list = await ctx.sessions.signDeviceList([...devices.values()]);
  } catch (e) {
    if (isDeadboltError(e, 'NOT_INITIALIZED')) return entry; // a linked device without the account key cannot publish
    throw e;
  }
  await ctx.transport.publishDeviceList(list.encoded);
  await applyList(ctx, user, list.encoded);
  return { bundles: entry.bundles, deviceList: list.encoded };
}

/**
 * The devices of `user` to name in a directory read's `skip`: those this device has
 * sessions with, and, once the user has a signed list, only those it names (at most
 * {@link MAX_DEVICES_PER_USER}); never more than the relay protocol allows
 * (`RELAY_LIMITS.maxBundles`). Skipping fewer is always safe: a known device's bundle is
 * ignored, at the cost of one of its prekeys; a longer list would make every read refused.
 */
async function skippableDevices(ctx: DeviceContext, user: UserId): Promise<string[]> {
  const list = await ctx.sessions.deviceList(user);
  const listed = list === undefined ? undefined : new Set<string>(list.devices.map((d) => d.deviceId));
  return (await ctx.sessions.devices(user))
    .map((d) => d.deviceId as string)
    .filter((id) => listed === undefined || listed.has(id))
    .slice(0, RELAY_LIMITS.maxBundles);
}


const sameKey = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** This user's devices, from its newest device list (this device alone if there is none). */
export async function ownDevices(ctx: Pick<DeviceContext, 'self' | 'sessions'>): Promise<DeviceInfo[]> {
  const list = await ctx.sessions.deviceList(ctx.self.userId);
  const ids = list?.devices.map((d) => d.deviceId as string) ?? [ctx.self.deviceId];
  return ids.map((deviceId) => ({ deviceId, thisDevice: deviceId === ctx.self.deviceId }));
}

/**
 * Approves a new device from its link code (§3.4): publishes the next device list with it,
 * applies it here, and leaves the sealed answer at the relay for the new device.
 */
export async function approveDevice(ctx: DeviceContext, code: string, options: { readonly canManageDevices?: boolean } = {}): Promise<DeviceInfo> {
  const approval = await ctx.sessions.approveLink(code, options);
  await ctx.transport.publishDeviceList(approval.deviceList.encoded);
  await applyList(ctx, ctx.self.userId, approval.deviceList.encoded);
  await ctx.transport.provisionPut(approval.channel, approval.sealed);
  return { deviceId: approval.device.deviceId, thisDevice: false };
}

/** Revokes one of this user's devices: publishes the next list without it (§3.4). */
export async function revokeDevice(ctx: DeviceContext, deviceId: string): Promise<void> {
  const id = toDeviceId(deviceId);
  const list = await ctx.sessions.deviceList(ctx.self.userId);
  if (list === undefined || !list.devices.some((d) => d.deviceId === id)) {
    throw new UsageError('INVALID_ARGUMENT', { message: 'no such device in this user\'s device list', details: { field: 'deviceId', expected: 'a listed device' } });
  }
  const next = await ctx.sessions.signDeviceList(list.devices.filter((d) => d.deviceId !== id));
  await ctx.transport.publishDeviceList(next.encoded);
  await applyList(ctx, ctx.self.userId, next.encoded);
}

/** Options of {@link linkDevice}. */
export interface LinkDeviceOptions {
  /** The user this device joins. */
  readonly userId: string;
  /** This new device's id (not yet in the user's list). */
  readonly deviceId: string;
  /** An empty store: it receives the identity once linking completes. */
  readonly storage: StorageAdapter | AdapterConfig;
  /** Encryption at rest, as for `createClient` (pass the same key to it afterwards). */
  readonly encryptionKey?: Uint8Array;
  /** A transport to the user's relay (used without authenticating). */
  readonly transport: TransportAdapter | AdapterConfig;
  readonly crypto?: CryptoProvider;
  readonly loadModule?: ModuleLoader;
  /** How long to wait for the approval, in ms (default and maximum: 10 minutes). */
  readonly timeoutMs?: number;
}

/** A link in progress on the new device. */
export interface DeviceLink {
  /** Show this (as a QR code, or text to copy) to a device of the same user. */
  readonly code: string;
  /**
   * Resolves once a device of the user approved this one and its identity is stored:
   * then create the client on the same storage and start it. Rejects when the time runs
   * out, the answer does not check out, or {@link DeviceLink.cancel} was called.
   */
  readonly completed: Promise<void>;
  /** Stops waiting. */
  cancel(): void;
  /** The resolved storage and transport, to hand to `createClient` afterwards. */
  readonly storage: StorageAdapter;
  readonly transport: TransportAdapter;
}

/**
 * Starts linking this (new) device to an existing user (docs/protocol.md §3.4).
 *
 * @example
 * ```ts
 * const link = await linkDevice({ userId: 'alice', deviceId: 'laptop', storage, transport });
 * showQrCode(link.code); // the phone scans it and calls client.approveDevice(code)
 * await link.completed;
 * const client = await createClient({ userId: 'alice', deviceId: 'laptop', storage: link.storage, transport: link.transport });
 * await client.start();
 * ```
 */
export async function linkDevice(options: LinkDeviceOptions): Promise<DeviceLink> {
  const crypto = options.crypto ?? createDefaultCryptoProvider();
  const resolved = await resolveStorage(options.storage, options.loadModule);
  // The identity is written sealed when a key is given; `storage` (returned) stays the
  // adapter itself, to hand to createClient with the same key.
  const sealedStore = options.encryptionKey === undefined ? resolved : createEncryptedStorage(resolved, { key: options.encryptionKey, crypto });
  const transport = await resolveTransport(options.transport, options.loadModule);
  const timeoutMs = Math.min(Math.max(0, options.timeoutMs ?? LINK_LIFETIME_MS), LINK_LIFETIME_MS);
  const pending: PendingDeviceLink = await createDeviceLinkRequest({ storage: sealedStore, crypto, userId: toUserId(options.userId), deviceId: toDeviceId(options.deviceId) });
  let cancelled = false;
  const deadline = Date.now() + timeoutMs;
  const completed = (async () => {
    // Bounded: one long poll at a time, until the answer, the deadline or cancel().
    while (!cancelled) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const sealed = await transport.provisionTake(pending.channel, Math.min(left, 25_000));
      if (cancelled) break;
      if (sealed !== undefined) {
        await pending.complete(sealed);
        return;
      }
    }
    if (cancelled) throw new UsageError('CLOSED', { message: 'linking was cancelled', details: { what: 'device link' } });
    throw new UsageError('INVALID_ARGUMENT', { message: 'no device approved the link code in time', details: { field: 'code', expected: 'an approval within the time limit' } });
  })();
  return {
    code: pending.code,
    completed,
    cancel: () => {
      cancelled = true;
    },
    storage: resolved,
    transport,
  };
}

