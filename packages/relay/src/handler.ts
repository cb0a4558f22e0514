/**
 * The one request handler both carriers share (docs/relay-protocol.md §2, §3). It takes a
 * decoded request and the caller's context and returns the answer frame. It never
 * decodes a message frame: SEND, SEND_SHARED and DELIVER move opaque bytes, and
 * PROVISION_PUT / PROVISION_TAKE move a sealed blob.
 *
 * Every check that costs nothing (sizes, counts, rate limits, challenge) runs before any
 * signature verification (SECURITY.md E34, F42).
 *
 * Device lists (protocol §3.3): once a user has published one, the relay serves, accepts
 * and delivers to only the devices it lists; every send names the list version it
 * encrypted for, checked atomically with storing (DEVICE_MISMATCH otherwise).
 *
 * @module
 */
import {
  decodeDeviceCertificate,
  decodePrekeyUpload,
  encodeDeviceCertificate,
  relayAuthSignatureInput,
  verifyDeviceCertificate,
  verifyPrekeyUpload,
  type DeviceCertificate,
} from '@deadbolt/core';
import { isDeadboltError, type RelayErrorCode, type RelayFrame } from '@deadbolt/spec';
import { revokeDevices, revokeUser, tellPrekeysLow, type RelayCore } from './core.js';
import { decodeDeviceList, listsCertificate, verifyDeviceList, type DecodedDeviceList } from './device-list.js';
import { authenticatedDevice, type AuthenticatedDevice } from './device.js';
import { prekeyPutFromUpload, encodeTakenBundle } from './prekey-parts.js';
import { limiterKey } from './rate-limiter.js';
import { addressKey, sameBytes } from './store-util.js';
import type { EnqueueResult, KeptDevice, StoreAddress, StoredMessage, StoreListVersion } from './store.js';

/** Who is asking, and over what. */
export interface RequestContext {
  readonly carrier: 'websocket' | 'http';
  /** The remote address (for per-address limits only; never logged above debug). */
  readonly remote: string;
  /**
   * Keys limits that have no device to key them (PROVISION_TAKE): the WebSocket
   * connection, or the remote address over HTTP.
   */
  readonly connection: string;
  /** The authenticated device, if any. */
  readonly device: AuthenticatedDevice | undefined;
  /** Aborted when the caller goes away (ends a long poll early). */
  readonly signal: AbortSignal;
  /** Checks and consumes an AUTH challenge (single-use, within its lifetime). */
  consumeChallenge(challenge: Uint8Array): boolean;
  /** WebSocket only: ids delivered on this connection and not yet acknowledged. */
  readonly inFlight?: Set<string>;
}

/** The answer, and on AUTH_OK the device that authenticated. */
export interface HandlerResult {
  readonly frame: RelayFrame;
  readonly authenticated?: AuthenticatedDevice;
  /**
   * Work the carrier runs once the answer is written: cutting off revoked devices after
   * PUBLISH_DEVICE_LIST, so that a device removing itself still receives its OK.
   */
  readonly after?: () => void;
}

type Request = Extract<
  RelayFrame,
  { kind: 'auth' | 'send' | 'send-shared' | 'fetch' | 'ack' | 'publish-prekeys' | 'fetch-bundles' | 'publish-device-list' | 'provision-put' | 'provision-take' }
>;

const REQUEST_KINDS: ReadonlySet<RelayFrame['kind']> = new Set([
  'auth',
  'send',
  'send-shared',
  'fetch',
  'ack',
  'publish-prekeys',
  'fetch-bundles',
  'publish-device-list',
  'provision-put',
  'provision-take',
]);

/** Requests answered without authentication (AUTH itself, and PROVISION_TAKE: a new device has no certificate yet, protocol §3.4). */
export function needsNoDevice(frame: RelayFrame): boolean {
  return frame.kind === 'auth' || frame.kind === 'provision-take';
}

/** Whether a frame is something a device may send. */
export function isRequest(frame: RelayFrame): frame is Request {
  return REQUEST_KINDS.has(frame.kind);
}

/** An ERROR frame. */
export function errorFrame(code: RelayErrorCode, message: string, retryAfterMs = 0): RelayFrame {
  return { kind: 'error', code, retryAfterMs: Math.min(0xffffffff, Math.max(0, Math.ceil(retryAfterMs))), message };
}

/** Per-message overhead in a DELIVER beyond the frame bytes: id, sender, time, lengths. */
const DELIVER_OVERHEAD = 1 + 64 + 1 + 64 + 1 + 64 + 8 + 4;

/**
 * Handles one request. Never throws: failures become ERROR frames (INTERNAL ones are
 * logged by error name and code only).
 */
export async function handleRequest(core: RelayCore, ctx: RequestContext, request: Request): Promise<HandlerResult> {
  if (core.draining) return { frame: errorFrame('UNAVAILABLE', 'the relay is shutting down') };
  try {
    if (request.kind === 'auth') return await authenticate(core, ctx, request);
    if (request.kind === 'provision-take') return { frame: await provisionTake(core, ctx, request.channel, request.waitMs) };
    const device = ctx.device;
    if (device === undefined) return { frame: errorFrame('UNAUTHENTICATED', 'authenticate first') };
    const wait = core.limiters.requests.attempt([device.key]);
    if (wait > 0) return { frame: errorFrame('RATE_LIMITED', 'too many requests', wait) };
    switch (request.kind) {
      case 'send':
        return { frame: await send(core, device, request.messages) };
      case 'send-shared':
        return { frame: await sendShared(core, device, request.recipients, request.frame) };
      case 'publish-device-list':
        return await publishDeviceList(core, device, request.deviceList);
      case 'provision-put':
        return { frame: provisionPut(core, device, request.channel, request.sealed) };
      case 'fetch':
        return { frame: await fetchMail(core, ctx, device, request.waitMs, request.max) };
      case 'ack':
        return { frame: await ack(core, device, request.ids) };
      case 'publish-prekeys':
        return { frame: await publishPrekeys(core, device, request.upload) };
      case 'fetch-bundles':
        return { frame: await fetchBundles(core, device, request.userId, request.skip ?? []) };
    }
  } catch (e) {
    core.log('error', 'request-failed', {
      kind: request.kind,
      error: isDeadboltError(e) ? e.code : e instanceof Error ? e.name : typeof e,
    });
    return { frame: errorFrame('INTERNAL', 'the relay failed') };
  }
}

// --- AUTH (docs/relay-protocol.md §2) ------------------------------------------------------

async function authenticate(core: RelayCore, ctx: RequestContext, req: Extract<Request, { kind: 'auth' }>): Promise<HandlerResult> {
  const fail = (code: RelayErrorCode, message: string, reason: string): HandlerResult => {
    core.log('info', 'auth-failed', { reason, carrier: ctx.carrier });
    return { frame: errorFrame(code, message) };
  };
  const wait = core.limiters.authAttempts.attempt([ctx.remote]);
  if (wait > 0) return { frame: errorFrame('RATE_LIMITED', 'too many authentication attempts', wait) };
  if (ctx.device !== undefined) return { frame: errorFrame('BAD_REQUEST', 'already authenticated') };

  // 1. A challenge this relay issued within its lifetime, not yet used (consumed now).
  if (!ctx.consumeChallenge(req.challenge)) return fail('UNAUTHENTICATED', 'unknown, used or expired challenge', 'challenge');

  // 2. The certificate decodes and verifies under its own account key.
  let cert: DeviceCertificate;
  try {
    cert = decodeDeviceCertificate(req.certificate);
  } catch {
    return fail('UNAUTHENTICATED', 'undecodable certificate', 'certificate-decode');
  }
  try {
    await verifyDeviceCertificate(core.crypto, cert);
  } catch {
    return fail('BAD_SIGNATURE', 'certificate signature', 'certificate-signature');
  }

  // 3. The device signed this relay's id and the challenge with its signing key.
  const signed = await core.crypto.ed25519Verify(cert.signingKey, relayAuthSignatureInput(core.relayId, req.challenge), req.signature);
  if (!signed) return fail('UNAUTHENTICATED', 'challenge signature', 'challenge-signature');

  // 4. Registration rules: the account key pinned for the user id.
  const userId = cert.userId;
  const pinned = await core.store.getAccountKey(userId);
  if (pinned === undefined || !sameBytes(pinned, cert.accountKey)) {
    if (core.verifyRegistration !== undefined) {
      let accepted: boolean;
      try {
        accepted = (await core.verifyRegistration(userId, cert.accountKey.slice(), req.token)) === true;
      } catch (e) {
        core.log('error', 'registration-hook-failed', { error: e instanceof Error ? e.name : typeof e });
        return { frame: errorFrame('INTERNAL', 'registration check failed') };
      }
      if (!accepted) return fail('UNAUTHENTICATED', 'registration refused', 'registration-refused');
      if (!(await core.store.setAccountKey(userId, cert.accountKey, pinned))) {
        return fail('UNAUTHENTICATED', 'account changed concurrently; retry', 'account-race');
      }
      if (pinned !== undefined) {
        core.log('warn', 'account-key-replaced', {});
        revokeUser(core, userId);
      } else core.log('info', 'account-pinned', {});
    } else {
      // Development mode: first use pins; a different key is refused.
      if (pinned !== undefined) return fail('UNAUTHENTICATED', 'account key differs from the one pinned for this user', 'account-mismatch');
      if (!(await core.store.setAccountKey(userId, cert.accountKey, undefined))) {
        const now = await core.store.getAccountKey(userId);
        if (now === undefined || !sameBytes(now, cert.accountKey)) {
          return fail('UNAUTHENTICATED', 'account key differs from the one pinned for this user', 'account-mismatch');
        }
      } else core.log('info', 'account-pinned', { mode: 'development' });
    }
  }

  // 5. Once the user has a device list, only its current devices authenticate (protocol
  //    §3.3: id, signing key and identity key all as listed). The list was verified under
  //    the pinned key when it was stored, and a key change deletes it.
  const stored = await core.store.getDeviceList(userId);
  let listVersion = 0;
  if (stored !== undefined) {
    if (!listsCertificate(decodeDeviceList(stored.list), cert)) return fail('REVOKED', "this device is not in its user's device list", 'revoked');
    listVersion = stored.version;
  }

  // 6. The device is registered on its first AUTH (with its verified certificate), only if
  //    the list it was checked against is still the current one: a device revoked in
  //    between must not register (compare-and-set, store invariant 3).
  const certificate = encodeDeviceCertificate(cert);
  const address = { userId: cert.userId, deviceId: cert.deviceId };
  const registered = await core.store.registerDevice(address, cert.accountKey, certificate, core.limits.devicesPerUser, listVersion);
  if (registered === 'account-mismatch') return fail('UNAUTHENTICATED', 'account changed concurrently; retry', 'account-race');
  if (registered === 'list-mismatch') return fail('UNAUTHENTICATED', 'device list changed concurrently; retry', 'list-race');
  if (registered === 'too-many-devices') return fail('FORBIDDEN', 'too many devices for this user', 'too-many-devices');
  if (registered !== 'unchanged') core.log('debug', 'device-registered', { userId, deviceId: cert.deviceId, result: registered });

  const device = authenticatedDevice(address, certificate);
  const counts = await core.store.prekeyCounts(address);
  const sessionToken = ctx.carrier === 'http' ? core.sessions.issue(device) : '';
  core.log('debug', 'authenticated', { userId, deviceId: cert.deviceId, carrier: ctx.carrier });
  return { frame: { kind: 'auth-ok', sessionToken, oneTimePrekeys: counts.oneTime, pqPrekeys: counts.pq }, authenticated: device };
}

// --- SEND and SEND_SHARED --------------------------------------------------------------

type Outbound = Extract<Request, { kind: 'send' }>['messages'];
type SharedRecipients = Extract<Request, { kind: 'send-shared' }>['recipients'];

/**
 * The list version the sender names for each recipient user (relay-protocol.md "Device
 * lists"), or `undefined` if it names two different ones for one user: one send is
 * encrypted for one view of each user's devices.
 */
function expectedLists(entries: readonly { readonly to: StoreAddress; readonly listVersion?: number }[]): StoreListVersion[] | undefined {
  const byUser = new Map<string, number>();
  for (const e of entries) {
    const v = e.listVersion ?? 0;
    const seen = byUser.get(e.to.userId);
    if (seen !== undefined && seen !== v) return undefined;
    byUser.set(e.to.userId, v);
  }
  return [...byUser].map(([userId, listVersion]) => ({ userId, listVersion }));
}

/**
 * The rate limits of a send (SECURITY.md F39, F42), all or none: one token per recipient
 * user per (sender user, recipient user) pair, and the stored bytes (each mailbox's copy)
 * against the sender's byte budget. Returns the wait, 0 when taken.
 */
function takeSendLimits(core: RelayCore, device: AuthenticatedDevice, recipients: readonly StoreAddress[], bytes: number): number {
  const sender = device.address.userId;
  const pairKeys = [...new Set(recipients.map((to) => to.userId))].map((to) => limiterKey(sender, to));
  const senderKey = [limiterKey(sender)];
  const wait = Math.max(core.limiters.messages.check(pairKeys), core.limiters.sendBytes.check(senderKey, bytes));
  if (wait > 0) return wait;
  core.limiters.messages.take(pairKeys);
  core.limiters.sendBytes.take(senderKey, bytes);
  return 0;
}

/** The answer to a committed (or refused) enqueue; on success the recipients are woken. */
function enqueued(core: RelayCore, result: EnqueueResult, recipients: readonly StoreAddress[]): RelayFrame {
  if (!result.ok) {
    switch (result.reason) {
      case 'list-mismatch':
        // Nothing was stored: the sender refreshes these users' devices and sends again.
        return { kind: 'device-mismatch', users: result.users.map((u) => ({ userId: u.userId, listVersion: u.listVersion })) };
      case 'unknown-device':
        return errorFrame('UNKNOWN_USER', 'no such registered device');
      case 'mailbox-full':
        return errorFrame('MAILBOX_FULL', "a recipient's mailbox is full");
    }
  }
  // Committed: wake the recipients' connections and long polls.
  for (const key of new Set(recipients.map((to) => addressKey(to)))) core.hub.notify(key);
  return { kind: 'ok' };
}

async function send(core: RelayCore, device: AuthenticatedDevice, messages: Outbound): Promise<RelayFrame> {
  const { limits } = core;
  if (messages.length === 0) return errorFrame('BAD_REQUEST', 'no messages');
  if (messages.length > limits.maxRecipients) return errorFrame('TOO_LARGE', `more than ${limits.maxRecipients} recipients`);
  let bytes = 0;
  for (const m of messages) {
    if (m.frame.byteLength > limits.maxMessage) return errorFrame('TOO_LARGE', `a message is over ${limits.maxMessage} bytes`);
    bytes += m.frame.byteLength;
  }
  const lists = expectedLists(messages);
  if (lists === undefined) return errorFrame('BAD_REQUEST', 'two list versions for one user');
  const wait = takeSendLimits(core, device, messages.map((m) => m.to), bytes);
  if (wait > 0) return errorFrame('RATE_LIMITED', 'sending too fast', wait);
  const result = await core.store.enqueue(
    { from: device.address, receivedAt: core.now(), messages: messages.map((m) => ({ to: m.to, frame: m.frame })), expectedLists: lists },
    { maxMessages: limits.mailboxMessages, maxBytes: limits.mailboxBytes, maxPerSender: limits.senderQueuedPerMailbox },
  );
  return enqueued(core, result, messages.map((m) => m.to));
}

/**
 * SEND_SHARED (relay-protocol.md §3): one frame into every named mailbox, all or none,
 * under the rules of SEND. Each mailbox is charged the full frame against its quota and
 * the sender's byte budget (one upload, but as many stored copies), and the per-pair
 * message limit takes one token per recipient user, as SEND does.
 */
async function sendShared(core: RelayCore, device: AuthenticatedDevice, recipients: SharedRecipients, frame: Uint8Array): Promise<RelayFrame> {
  const { limits } = core;
  if (recipients.length === 0) return errorFrame('BAD_REQUEST', 'no recipients');
  if (recipients.length > limits.maxRecipients) return errorFrame('TOO_LARGE', `more than ${limits.maxRecipients} recipients`);
  if (frame.byteLength > limits.maxMessage) return errorFrame('TOO_LARGE', `the message is over ${limits.maxMessage} bytes`);
  const to = recipients.map((r) => r.to);
  // One frame per mailbox: a mailbox named twice is a client bug, not a second message.
  if (new Set(to.map((a) => addressKey(a))).size !== to.length) return errorFrame('BAD_REQUEST', 'a recipient is named twice');
  const lists = expectedLists(recipients);
  if (lists === undefined) return errorFrame('BAD_REQUEST', 'two list versions for one user');
  const wait = takeSendLimits(core, device, to, frame.byteLength * to.length);
  if (wait > 0) return errorFrame('RATE_LIMITED', 'sending too fast', wait);
  const result = await core.store.enqueueShared(
    { from: device.address, receivedAt: core.now(), to, frame, expectedLists: lists },
    { maxMessages: limits.mailboxMessages, maxBytes: limits.mailboxBytes, maxPerSender: limits.senderQueuedPerMailbox },
  );
  return enqueued(core, result, to);
}

// --- FETCH / DELIVER ---------------------------------------------------------------------

/** Reads up to `max` waiting messages that fit one DELIVER, skipping those in flight. */
export async function readMail(core: RelayCore, ctx: RequestContext, mailbox: StoreAddress, max: number): Promise<StoredMessage[]> {
  const limit = Math.min(max, core.limits.maxDeliver);
  const maxBytes = Math.max(1, core.limits.maxFrame - 8 - limit * DELIVER_OVERHEAD);
  return core.store.fetch(mailbox, { limit, maxBytes, ...(ctx.inFlight ? { exclude: ctx.inFlight } : {}) });
}

/** A DELIVER of stored messages (also used by the WebSocket push). */
export function deliverFrame(messages: readonly StoredMessage[]): RelayFrame {
  return {
    kind: 'deliver',
    messages: messages.map((m) => ({ id: m.id, from: m.from as RelayFrameAddress, receivedAt: m.receivedAt, frame: m.frame })),
  };
}

type RelayFrameAddress = Extract<RelayFrame, { kind: 'deliver' }>['messages'][number]['from'];

async function fetchMail(core: RelayCore, ctx: RequestContext, device: AuthenticatedDevice, waitMs: number, max: number): Promise<RelayFrame> {
  // A PREKEYS_LOW waiting for an HTTP device is its answer to this FETCH (the next FETCH
  // gets the mail): HTTP has no other way to tell it.
  if (ctx.carrier === 'http') {
    const low = core.pendingLow.get(device.key);
    if (low !== undefined) {
      core.pendingLow.delete(device.key);
      return { kind: 'prekeys-low', oneTimePrekeys: low.oneTime, pqPrekeys: low.pq };
    }
  }
  let room = max;
  if (ctx.inFlight) room = Math.min(room, core.limits.maxDeliver - ctx.inFlight.size);
  if (room <= 0) return deliverFrame([]);

  const mailbox = device.address;
  const wait = Math.min(waitMs, core.limits.maxWaitMs);
  // Subscribe before reading, so mail arriving in between still wakes us.
  let woken: (() => void) | undefined;
  const wake = new Promise<void>((resolve) => (woken = resolve));
  const unsubscribe = wait > 0 ? core.hub.subscribe(device.key, () => woken?.()) : () => {};
  try {
    let messages = await readMail(core, ctx, mailbox, room);
    if (messages.length === 0 && wait > 0 && !ctx.signal.aborted && !core.drainSignal.aborted) {
      const perDevice = core.waiters.perDevice.get(device.key) ?? 0;
      if (core.waiters.total >= core.limits.maxWaiters || perDevice >= core.limits.waitersPerDevice) {
        return errorFrame('RATE_LIMITED', 'too many waiting FETCH requests', 1000);
      }
      core.waiters.total++;
      core.log('debug', 'fetch-waiting', { carrier: ctx.carrier, waiters: core.waiters.total });
      core.waiters.perDevice.set(device.key, perDevice + 1);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => woken?.();
      try {
        ctx.signal.addEventListener('abort', onAbort);
        core.drainSignal.addEventListener('abort', onAbort);
        timer = setTimeout(() => woken?.(), wait);
        await wake;
      } finally {
        clearTimeout(timer);
        ctx.signal.removeEventListener('abort', onAbort);
        core.drainSignal.removeEventListener('abort', onAbort);
        core.waiters.total--;
        const n = (core.waiters.perDevice.get(device.key) ?? 1) - 1;
        if (n <= 0) core.waiters.perDevice.delete(device.key);
        else core.waiters.perDevice.set(device.key, n);
      }
      if (ctx.inFlight) room = Math.min(max, core.limits.maxDeliver - ctx.inFlight.size);
      messages = room > 0 && !ctx.signal.aborted ? await readMail(core, ctx, mailbox, room) : [];
    }
    if (ctx.inFlight) for (const m of messages) ctx.inFlight.add(m.id);
    return deliverFrame(messages);
  } finally {
    unsubscribe();
  }
}

async function ack(core: RelayCore, device: AuthenticatedDevice, ids: readonly string[]): Promise<RelayFrame> {
  if (ids.length > core.limits.maxAck) return errorFrame('TOO_LARGE', `more than ${core.limits.maxAck} ids`);
  // Only the caller's own mailbox (SECURITY.md F37): other ids are ignored by the store.
  await core.store.ack(device.address, ids);
  // Release the ids on every socket of the device that has them in flight (this one
  // included), which then delivers more.
  for (const peer of core.peers.get(device.key) ?? []) peer.acked(ids);
  return { kind: 'ok' };
}

// --- prekeys ---------------------------------------------------------------------------

async function publishPrekeys(core: RelayCore, device: AuthenticatedDevice, bytes: Uint8Array): Promise<RelayFrame> {
  const wait = core.limiters.prekeyUploads.attempt([device.key]);
  if (wait > 0) return errorFrame('RATE_LIMITED', 'too many prekey uploads', wait);
  let upload;
  try {
    upload = decodePrekeyUpload(bytes); // enforces its own maximum size before parsing
  } catch {
    return errorFrame('BAD_REQUEST', 'undecodable prekey upload');
  }
  // The upload's certificate must be the one this device authenticated with.
  if (!sameBytes(encodeDeviceCertificate(upload.certificate), device.certificate)) {
    return errorFrame('FORBIDDEN', "the upload's certificate is not the caller's");
  }
  // Every signature first; nothing is stored unless all verify (SECURITY.md F40).
  try {
    await verifyPrekeyUpload(core.crypto, upload);
  } catch (e) {
    if (isDeadboltError(e, 'BAD_SIGNATURE')) return errorFrame('BAD_SIGNATURE', 'a prekey signature failed');
    return errorFrame('BAD_REQUEST', 'invalid prekey upload');
  }
  const result = await core.store.putPrekeys(device.address, prekeyPutFromUpload(upload), {
    maxOneTime: core.limits.storedOneTimePrekeys,
    maxPq: core.limits.storedPqPrekeys,
    rememberConsumed: core.limits.rememberConsumedPrekeys,
  });
  if (!result.ok) {
    return result.reason === 'quota'
      ? errorFrame('TOO_LARGE', 'too many one-time prekeys stored for this device')
      : errorFrame('UNAUTHENTICATED', 'this device is no longer registered');
  }
  if (result.counts.oneTime >= core.limits.prekeysLowThreshold && result.counts.pq >= core.limits.prekeysLowThreshold) {
    core.pendingLow.delete(device.key);
  }
  return { kind: 'ok' };
}

/** The user's stored device list, decoded (it was verified before it was stored), or `undefined`. */
async function currentList(core: RelayCore, userId: string): Promise<{ readonly list: DecodedDeviceList; readonly encoded: Uint8Array } | undefined> {
  const stored = await core.store.getDeviceList(userId);
  return stored === undefined ? undefined : { list: decodeDeviceList(stored.list), encoded: stored.list };
}

/**
 * FETCH_BUNDLES (relay-protocol.md §3): one bundle per current device (all registered
 * devices while the user has no list; only listed ones once it has), and the list. A user
 * with a list is answered BUNDLES even when no bundle is available: the list alone tells
 * the sender which devices are current and at which version. Without a list and without
 * bundles: UNKNOWN_USER.
 *
 * Devices named in `skip` (the caller has sessions with them) get no bundle, so none of
 * their prekeys is taken. Every read counts against `directoryReads`; only a read that
 * takes one-time prekeys counts against the stricter `bundleFetches` too, which protects
 * them from being drained, so a device reading its own user's entry at every start (skipping
 * the siblings it knows) never runs into it.
 */
async function fetchBundles(core: RelayCore, device: AuthenticatedDevice, targetUser: string, skip: readonly string[]): Promise<RelayFrame> {
  const pair = limiterKey(device.address.userId, targetUser);
  const readWait = core.limiters.directoryReads.attempt([pair]);
  if (readWait > 0) return errorFrame('RATE_LIMITED', 'too many directory reads for this user', readWait);
  const current = await currentList(core, targetUser);
  const skipped = new Set(skip);
  const wanted = [];
  let known = false; // whether the caller skipped a current device: it knows the user
  for (const d of await core.store.listDevices(targetUser)) {
    // A device never needs its own bundle.
    if (targetUser === device.address.userId && d.deviceId === device.address.deviceId) continue;
    const certificate = decodeDeviceCertificate(d.certificate);
    if (current !== undefined && !listsCertificate(current.list, certificate)) continue;
    if (skipped.has(d.deviceId)) known = true;
    else wanted.push({ deviceId: d.deviceId, certificate });
  }
  // The bundle-fetch limit protects one-time prekeys from being drained: a read that would
  // take none (every device it wants has none left, or never uploaded any) costs only the
  // directory read. Otherwise a listed device without prekeys would make every read of its
  // user, a DEVICE_MISMATCH refresh included, spend the stricter budget for nothing.
  if (wanted.length > 0 && (await takesOneTimePrekeys(core, targetUser, wanted))) {
    const wait = core.limiters.bundleFetches.attempt([pair]);
    if (wait > 0) return errorFrame('RATE_LIMITED', 'too many bundle fetches for this user', wait);
  }
  const bundles: Uint8Array[] = [];
  for (const { deviceId, certificate } of wanted) {
    const address = { userId: targetUser, deviceId };
    const taken = await core.store.takeBundle(address);
    if (taken === undefined) continue;
    bundles.push(encodeTakenBundle(certificate, taken));
    const low = core.limits.prekeysLowThreshold;
    if (taken.remaining.oneTime < low || taken.remaining.pq < low) tellPrekeysLow(core, addressKey(address), taken.remaining);
  }
  // A user without a list is unknown unless the caller got a bundle or skipped one of its
  // devices (it knows that device): skipping never turns a known user into an unknown one.
  if (bundles.length === 0 && current === undefined && !known) return errorFrame('UNKNOWN_USER', 'no such user, or no device with prekeys');
  return { kind: 'bundles', bundles, deviceList: current?.encoded };
}

/** Whether taking a bundle of any of `wanted` would take a one-time (X25519 or PQ) prekey. */
async function takesOneTimePrekeys(core: RelayCore, userId: string, wanted: readonly { readonly deviceId: string }[]): Promise<boolean> {
  for (const { deviceId } of wanted) {
    const counts = await core.store.prekeyCounts({ userId, deviceId });
    if (counts.oneTime > 0 || counts.pq > 0) return true;
  }
  return false;
}

// --- device lists (relay-protocol.md PUBLISH_DEVICE_LIST, protocol §3.3) ------------------

async function publishDeviceList(core: RelayCore, device: AuthenticatedDevice, bytes: Uint8Array): Promise<HandlerResult> {
  const userId = device.address.userId;
  const wait = core.limiters.deviceListPublishes.attempt([limiterKey(userId)]);
  if (wait > 0) return { frame: errorFrame('RATE_LIMITED', 'too many device list changes', wait) };
  let list: DecodedDeviceList;
  try {
    list = decodeDeviceList(bytes); // enforces its own maximum size before parsing
  } catch {
    return { frame: errorFrame('BAD_REQUEST', 'undecodable device list') };
  }
  // Any authenticated device of the list's user may publish it (a device may remove
  // itself); the account key, not the caller, is what vouches for it.
  if (list.userId !== userId) return { frame: errorFrame('FORBIDDEN', "a device list of another user") };
  const pinned = await core.store.getAccountKey(userId);
  if (pinned === undefined || !sameBytes(pinned, list.accountKey)) return { frame: errorFrame('FORBIDDEN', 'the device list names another account key') };
  if (!(await verifyDeviceList(core.crypto, list))) return { frame: errorFrame('BAD_SIGNATURE', 'device list signature') };

  // Registered devices the list keeps current: same id, signing key and identity key.
  const keep: KeptDevice[] = [];
  for (const d of await core.store.listDevices(userId)) {
    if (listsCertificate(list, decodeDeviceCertificate(d.certificate))) keep.push({ deviceId: d.deviceId, certificate: d.certificate });
  }
  const result = await core.store.putDeviceList(userId, list.accountKey, list.listVersion, list.encoded, keep);
  if (!result.ok) {
    switch (result.reason) {
      case 'stale':
        return { frame: errorFrame('FORBIDDEN', 'a newer device list is stored') };
      case 'conflict':
        return { frame: errorFrame('FORBIDDEN', 'another device list with this version is stored') };
      case 'account-mismatch':
        return { frame: errorFrame('FORBIDDEN', 'the account key changed; the list names the old one') };
    }
  }
  if (!result.changed) return { frame: { kind: 'ok' } };
  core.log('info', 'device-list-published', { listVersion: list.listVersion, devices: list.devices.length, removed: result.removed.length });
  const removed = result.removed;
  return { frame: { kind: 'ok' }, ...(removed.length > 0 ? { after: () => revokeDevices(core, userId, removed) } : {}) };
}

// --- provisioning (relay-protocol.md PROVISION_PUT / PROVISION_TAKE, protocol §3.4) -------

function provisionPut(core: RelayCore, device: AuthenticatedDevice, channel: Uint8Array, sealed: Uint8Array): RelayFrame {
  const wait = core.limiters.provisionPuts.attempt([device.key]);
  if (wait > 0) return errorFrame('RATE_LIMITED', 'too many device-link answers', wait);
  if (sealed.byteLength > core.limits.maxProvisionBlob) return errorFrame('TOO_LARGE', `a device-link answer is over ${core.limits.maxProvisionBlob} bytes`);
  switch (core.provisions.put(channel, sealed)) {
    case 'conflict':
      return errorFrame('FORBIDDEN', 'another answer was left on this channel');
    case 'full':
      return errorFrame('RATE_LIMITED', 'too many device-link answers waiting', core.provisions.retryAfterMs());
    default:
      return { kind: 'ok' };
  }
}

async function provisionTake(core: RelayCore, ctx: RequestContext, channel: Uint8Array, waitMs: number): Promise<RelayFrame> {
  // No device to key a limit by: the connection (WebSocket) or remote address (HTTP).
  const wait = core.limiters.provisionTakes.attempt([ctx.connection]);
  if (wait > 0) return errorFrame('RATE_LIMITED', 'too many PROVISION_TAKE requests', wait);
  // The caller going away, and the relay draining, end the wait with nothing.
  const taking = core.provisions.take(channel, Math.min(waitMs, core.limits.maxProvisionWaitMs), [ctx.signal, core.drainSignal]);
  core.log('debug', 'provision-take', { carrier: ctx.carrier, waiting: core.provisions.waiting });
  const sealed = await taking;
  if (sealed === 'busy') return errorFrame('RATE_LIMITED', 'too many waiting PROVISION_TAKE requests', 1000);
  return { kind: 'provision', sealed };
}
