/**
 * Shared machinery for transport adapters (like `validate.ts` for storage adapters), so
 * every transport keeps the contract's invariants the same way: state changes in order,
 * frames handed to the handler one at a time and acknowledged only after it resolves,
 * outbound frames checked and copied before anything is sent, relay refusals mapped to
 * typed errors, and capped exponential backoff with full jitter.
 *
 * @module
 */
import { isDeadboltError, TransportError, UsageError } from './errors.js';
import { PROVISION_CHANNEL_BYTES, RELAY_LIMITS, type DeliveredMessage, type OutboundMessage, type RelayFrame, type UserListVersion } from './relay-protocol.js';
import { deviceId as toDeviceId } from './ids.js';
import type { FetchBundlesOptions, FrameHandler, InboundFrame, SharedRecipient, TransportNotice, TransportState } from './transport.js';

/** Backoff settings: the delay doubles from `initialMs` up to `maxMs`, with full jitter. */
export interface BackoffOptions {
  readonly initialMs?: number;
  readonly maxMs?: number;
}

/**
 * The delay before reconnect attempt `attempt` (0-based): a uniformly random duration
 * between 0 and min(maxMs, initialMs * 2^attempt) ("full jitter"), so many clients
 * dropped at once do not reconnect in lockstep.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = options.initialMs ?? 100;
  const max = options.maxMs ?? 10_000;
  const cap = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * cap);
}

/** Timers a transport takes as an option, so that tests can fire them by hand. */
export interface TransportTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The platform's own timers, the default of every transport's `timers` option. */
export const systemTimers: TransportTimers = Object.freeze({
  setTimeout: (callback: () => void, ms: number): unknown => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle: unknown): void => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
});

/** The `INVALID_ARGUMENT` a transport throws for a bad option or argument. */
export function invalidOption(field: string, expected: string): UsageError<'INVALID_ARGUMENT'> {
  return new UsageError('INVALID_ARGUMENT', { message: `${field} must be ${expected}`, details: { field, expected } });
}

/** A positive integer option, or `fallback` when absent; `INVALID_ARGUMENT` otherwise. */
export function positiveOption(value: unknown, field: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw invalidOption(field, 'a positive integer');
  return value;
}

/**
 * Wraps an application listener (`onStateChange`, `onNotice`) so that its exception cannot
 * break the transport: it is rethrown in a microtask, where the platform reports it.
 * Rejects a listener that is not a function with `INVALID_ARGUMENT`.
 *
 * @example
 * ```ts
 * onStateChange: (listener) => core.onStateChange(isolatedListener(listener)),
 * ```
 */
export function isolatedListener<T>(listener: (value: T) => void): (value: T) => void {
  if (typeof listener !== 'function') throw invalidOption('listener', 'a function');
  return (value) => {
    try {
      listener(value);
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  };
}

/** `TRANSPORT_FAILED` for an operation (the message names the operation, never data). */
export function transportFailed(operation: string, message: string, cause?: unknown): TransportError<'TRANSPORT_FAILED'> {
  return new TransportError('TRANSPORT_FAILED', { message: `${operation}: ${message}`, details: { operation }, cause });
}

const invalid = invalidOption;

const ID_PATTERN = /^[A-Za-z0-9._@:+-]{1,64}$/;
/** Relay frame header: version, kind, requestId, and the u16 count of SEND and SEND_SHARED. */
const SEND_HEADER = 1 + 1 + 4 + 2;

/** Checks an address (ids are ASCII, so their length is their byte length in the frame). */
function checkAddress(to: unknown, field: string): void {
  const a = to as { userId?: unknown; deviceId?: unknown } | undefined;
  if (typeof a?.userId !== 'string' || !ID_PATTERN.test(a.userId)) throw invalid(`${field}.userId`, '1-64 characters of [A-Za-z0-9._@:+-]');
  if (typeof a.deviceId !== 'string' || !ID_PATTERN.test(a.deviceId)) throw invalid(`${field}.deviceId`, '1-64 characters of [A-Za-z0-9._@:+-]');
}

/** A device-list version as SEND carries it (docs/relay-protocol.md §3): absent is 0. */
function checkListVersion(value: unknown, field: string): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) throw invalid(field, 'an integer 0 to 2^32-1');
  return value;
}

function checkFrame(frame: unknown, field: string, maxFrameSize: number): Uint8Array {
  if (!(frame instanceof Uint8Array)) throw invalid(field, 'a Uint8Array');
  if (frame.byteLength > maxFrameSize) {
    throw new TransportError('FRAME_TOO_LARGE', { message: `frame of ${frame.byteLength} bytes over ${maxFrameSize}`, details: { size: frame.byteLength, max: maxFrameSize } });
  }
  return frame;
}

/**
 * The `skip` of {@link FetchBundlesOptions}, checked and copied (each device id valid, at
 * most `RELAY_LIMITS.maxBundles` distinct ones; repeats dropped), for the FETCH_BUNDLES
 * frame. Throws `INVALID_ARGUMENT` naming `options` or `options.skip`.
 *
 * @example
 * ```ts
 * prepareFetchSkip({ skip: ['phone', 'phone', 'tablet'] }); // ['phone', 'tablet']
 * ```
 */
export function prepareFetchSkip(options: FetchBundlesOptions | undefined): string[] {
  if (options === undefined) return [];
  if (typeof options !== 'object' || options === null) throw new UsageError('INVALID_ARGUMENT', { message: 'options: expected an object', details: { field: 'options', expected: '{ skip? }' } });
  const skip: unknown = options.skip;
  if (skip === undefined) return [];
  const expected = `an array of at most ${RELAY_LIMITS.maxBundles} device ids`;
  const bad = (): UsageError => new UsageError('INVALID_ARGUMENT', { message: `options.skip: expected ${expected}`, details: { field: 'options.skip', expected } });
  if (!Array.isArray(skip)) throw bad();
  const out = new Set<string>();
  for (const d of Array.from(skip as unknown[])) {
    try {
      out.add(toDeviceId(d as string));
    } catch {
      throw bad();
    }
    if (out.size > RELAY_LIMITS.maxBundles) throw bad();
  }
  return [...out];
}

/**
 * Checks and copies outbound messages (contract invariants 4 and 5), keeping each
 * `listVersion`, and `contact: true` where a message has it (anything else there is
 * dropped: only an explicit `true` lets a transport set up a direct path).
 */
export function prepareOutbound(messages: readonly OutboundMessage[], maxFrameSize: number): OutboundMessage[] {
  if (!Array.isArray(messages) || messages.length === 0 || messages.length > RELAY_LIMITS.maxRecipients) {
    throw new UsageError('INVALID_ARGUMENT', {
      message: `send takes 1 to ${RELAY_LIMITS.maxRecipients} messages`,
      details: { field: 'messages', expected: `1-${RELAY_LIMITS.maxRecipients} messages` },
    });
  }
  return messages.map((m, i) => {
    const frame = checkFrame(m?.frame, `messages[${i}].frame`, maxFrameSize);
    const listVersion = checkListVersion(m.listVersion, `messages[${i}].listVersion`);
    return { to: { userId: m.to.userId, deviceId: m.to.deviceId }, listVersion, frame: frame.slice(), ...(m.contact === true ? { contact: true } : {}) };
  });
}

/**
 * Plans `send` (contract invariants 4 and 5): checks every message (addresses, list
 * versions, frame sizes) and copies it, then splits the messages into SEND requests that
 * each fit the relay frame (2 MiB) and the recipient limit (1,000). Everything is checked
 * before anything is sent. Each request is all-or-none at the relay; a send split into
 * several is not (a caller resending after a failure may store some messages twice, which
 * core's at-least-once handling absorbs).
 *
 * @example
 * ```ts
 * const requests = planSendRequests(messages, transport.maxFrameSize);
 * await Promise.allSettled(requests.map((chunk) => relayCall({ kind: 'send', messages: chunk })));
 * ```
 */
export function planSendRequests(messages: readonly OutboundMessage[], maxFrameSize: number): OutboundMessage[][] {
  if (!Array.isArray(messages)) throw invalid('messages', 'an array of { to, frame, listVersion? }');
  messages.forEach((m: Partial<OutboundMessage> | null, i) => checkAddress(m?.to, `messages[${i}].to`));
  const chunks: OutboundMessage[][] = [];
  for (let i = 0; i < Math.max(messages.length, 1); i += RELAY_LIMITS.maxRecipients) {
    chunks.push(prepareOutbound(messages.slice(i, i + RELAY_LIMITS.maxRecipients), maxFrameSize));
  }
  const out: OutboundMessage[][] = [];
  for (const chunk of chunks) {
    let current: OutboundMessage[] = [];
    let size = SEND_HEADER;
    for (const m of chunk) {
      // userId string8, deviceId string8, listVersion u32, frame bytes32.
      const entry = 1 + m.to.userId.length + 1 + m.to.deviceId.length + 4 + 4 + m.frame.byteLength;
      if (current.length > 0 && size + entry > RELAY_LIMITS.maxFrame) {
        out.push(current);
        current = [];
        size = SEND_HEADER;
      }
      current.push(m);
      size += entry;
    }
    out.push(current);
  }
  return out;
}

/** What {@link planSharedSend} returns: one copy of the frame, and the recipients of each SEND_SHARED request. */
export interface SharedSendPlan {
  /** A private copy of the frame (the caller's bytes may change after the call). */
  readonly frame: Uint8Array;
  /** The recipients of each request (each at most 1,000, each request within one relay frame). */
  readonly requests: readonly (readonly SharedRecipient[])[];
}

/**
 * Plans `sendShared` (SEND_SHARED, docs/relay-protocol.md §3): checks the frame (at most
 * `maxFrameSize`, so one request always fits the 2 MiB relay frame with its recipients),
 * every address and list version, and splits the recipients into requests of at most
 * 1,000 (and within one relay frame, which 1,000 maximal entries always are). Each request
 * is all-or-none at the relay.
 *
 * @example
 * ```ts
 * const plan = planSharedSend(recipients, frame, transport.maxFrameSize);
 * for (const chunk of plan.requests) await relayCall({ kind: 'send-shared', recipients: chunk, frame: plan.frame });
 * ```
 */
export function planSharedSend(recipients: readonly SharedRecipient[], frame: Uint8Array, maxFrameSize: number): SharedSendPlan {
  if (!Array.isArray(recipients) || recipients.length === 0) throw invalid('recipients', 'a non-empty array of { to, listVersion? }');
  const checked = recipients.map((r: Partial<SharedRecipient> | null, i): SharedRecipient => {
    checkAddress(r?.to, `recipients[${i}].to`);
    return { to: { userId: r!.to!.userId, deviceId: r!.to!.deviceId }, listVersion: checkListVersion(r!.listVersion, `recipients[${i}].listVersion`) };
  });
  const copy = checkFrame(frame, 'frame', maxFrameSize).slice();
  const fixed = SEND_HEADER + 4 + copy.byteLength;
  const requests: SharedRecipient[][] = [];
  let current: SharedRecipient[] = [];
  let size = fixed;
  for (const r of checked) {
    // userId string8, deviceId string8, listVersion u32.
    const entry = 1 + r.to.userId.length + 1 + r.to.deviceId.length + 4;
    if (current.length > 0 && (current.length >= RELAY_LIMITS.maxRecipients || size + entry > RELAY_LIMITS.maxFrame)) {
      requests.push(current);
      current = [];
      size = fixed;
    }
    current.push(r);
    size += entry;
  }
  requests.push(current);
  return { frame: copy, requests };
}

/** The `DEVICE_MISMATCH` error of a relay's DEVICE_MISMATCH answer (not retried: the caller must refresh those users' devices). */
export function deviceMismatchError(users: readonly UserListVersion[]): TransportError<'DEVICE_MISMATCH'> {
  const copy = users.map((u) => ({ userId: u.userId, listVersion: u.listVersion }));
  return new TransportError('DEVICE_MISMATCH', {
    message: `the relay holds other device lists for ${copy.length} user(s): fetch their bundles and send again`,
    details: { users: copy },
  });
}

/**
 * Settles the requests of one `send` or `sendShared`: resolves when every request
 * succeeded; otherwise throws the first failure in request order, except that
 * `DEVICE_MISMATCH` failures of several requests become one naming every user (so one
 * refresh covers them all).
 */
export function settleSendRequests(results: readonly PromiseSettledResult<unknown>[]): void {
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length === 0) return;
  const first = failures[0];
  if (!isDeadboltError(first, 'DEVICE_MISMATCH')) throw first;
  const users = new Map<string, UserListVersion>();
  for (const f of failures) if (isDeadboltError(f, 'DEVICE_MISMATCH')) for (const u of f.details.users) users.set(u.userId, u);
  throw deviceMismatchError([...users.values()]);
}

/** Checks and copies a provisioning channel (exactly 16 bytes, docs/protocol.md §3.4). */
export function checkProvisionChannel(channel: unknown): Uint8Array {
  if (!(channel instanceof Uint8Array) || channel.byteLength !== PROVISION_CHANNEL_BYTES) throw invalid('channel', `a Uint8Array of ${PROVISION_CHANNEL_BYTES} bytes`);
  return channel.slice();
}

/** Checks and copies a sealed device-link answer (1 to 8,192 bytes). */
export function checkProvisionBlob(sealed: unknown): Uint8Array {
  if (!(sealed instanceof Uint8Array) || sealed.byteLength === 0 || sealed.byteLength > RELAY_LIMITS.maxProvisionBlob) {
    throw invalid('sealed', `a Uint8Array of 1 to ${RELAY_LIMITS.maxProvisionBlob} bytes`);
  }
  return sealed.slice();
}

/** Checks a PROVISION_TAKE wait (0 to 30,000 ms). */
export function checkProvisionWait(waitMs: unknown): number {
  if (typeof waitMs !== 'number' || !Number.isInteger(waitMs) || waitMs < 0 || waitMs > RELAY_LIMITS.maxProvisionWaitMs) {
    throw invalid('waitMs', `an integer 0 to ${RELAY_LIMITS.maxProvisionWaitMs}`);
  }
  return waitMs;
}

/** Checks and copies an encoded device list for PUBLISH_DEVICE_LIST (1 to 4,303 bytes; the relay verifies it). */
export function checkDeviceListBytes(deviceList: unknown): Uint8Array {
  if (!(deviceList instanceof Uint8Array) || deviceList.byteLength === 0 || deviceList.byteLength > RELAY_LIMITS.maxDeviceList) {
    throw invalid('deviceList', `a Uint8Array of 1 to ${RELAY_LIMITS.maxDeviceList} bytes`);
  }
  return deviceList.slice();
}

/** Maps a relay ERROR frame to the transport error a caller can act on. */
export function relayError(frame: Extract<RelayFrame, { kind: 'error' }>, userId?: string): TransportError {
  switch (frame.code) {
    case 'RATE_LIMITED':
      return new TransportError('RATE_LIMITED', { message: 'the relay asks to slow down', details: { retryAfterMs: frame.retryAfterMs } });
    case 'UNKNOWN_USER':
      return new TransportError('UNKNOWN_USER', { message: 'the relay knows no such user', details: { userId: userId ?? '' } });
    case 'TOO_LARGE':
      return new TransportError('FRAME_TOO_LARGE', { message: 'the relay refused an oversize frame', details: { size: 0, max: RELAY_LIMITS.maxMessage } });
    default:
      return new TransportError('RELAY_REJECTED', { message: `the relay refused: ${frame.code}`, details: { code: frame.code } });
  }
}

/**
 * A source of relay request ids (relay-protocol.ts): 1, 2, … up to 2^32-1, then 1 again,
 * never 0 (the id of the frames the relay pushes unasked).
 *
 * @example
 * ```ts
 * const takeId = requestIdCounter();
 * encodeRelayFrame(takeId(), { kind: 'fetch', waitMs: 0, max: 100 }); // requestId 1
 * ```
 */
export function requestIdCounter(): () => number {
  let nextId = 1;
  return () => {
    const id = nextId;
    nextId = nextId >= 0xffffffff ? 1 : nextId + 1;
    return id;
  };
}

/** The closed error every operation rejects with after `close()`. */
export function transportClosed(): UsageError<'CLOSED'> {
  return new UsageError('CLOSED', { message: 'transport is closed', details: { what: 'transport' } });
}

/**
 * State, listeners and inbound delivery shared by transports. A carrier calls `deliver`
 * with each DELIVER frame's messages and an `ack` function; the core hands messages to
 * the handler one at a time and acknowledges exactly those whose handler resolved.
 */
export class TransportCore {
  #state: TransportState = 'idle';
  #handler: FrameHandler | undefined;
  readonly #stateListeners = new Set<(state: TransportState) => void>();
  readonly #noticeListeners = new Set<(notice: TransportNotice) => void>();
  /** Ids being handled now, so a duplicate DELIVER of the same id is not handled twice at once. */
  readonly #inProgress = new Set<string>();
  #queue: Promise<void> = Promise.resolve();

  constructor(readonly maxFrameSize: number) {}

  get state(): TransportState {
    return this.#state;
  }

  setState(next: TransportState): void {
    if (this.#state === next || this.#state === 'closed') return;
    this.#state = next;
    for (const l of [...this.#stateListeners]) l(next);
  }

  onStateChange(listener: (state: TransportState) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  onNotice(listener: (notice: TransportNotice) => void): () => void {
    this.#noticeListeners.add(listener);
    return () => this.#noticeListeners.delete(listener);
  }

  notice(notice: TransportNotice): void {
    for (const l of [...this.#noticeListeners]) l(notice);
  }

  onFrame(handler: FrameHandler): () => void {
    this.#handler = handler;
    return () => {
      if (this.#handler === handler) this.#handler = undefined;
    };
  }

  /**
   * Hands each message to the handler in order (serialised across calls) and then
   * acknowledges the ids whose handler resolved (contract invariant 2). Oversize frames
   * are acknowledged without any work (they can never be processed). Resolves once the
   * batch is handled and acknowledged.
   */
  deliver(messages: readonly DeliveredMessage[], ack: (ids: string[]) => Promise<void>): Promise<void> {
    const run = async (): Promise<void> => {
      const done: string[] = [];
      for (const m of messages) {
        if (this.#state === 'closed') return;
        if (this.#inProgress.has(m.id)) continue;
        if (m.frame.byteLength > this.maxFrameSize) {
          done.push(m.id);
          continue;
        }
        const handler = this.#handler;
        if (!handler) continue; // no handler: not acknowledged, delivered again later
        this.#inProgress.add(m.id);
        try {
          const frame: InboundFrame = { id: m.id, from: m.from, receivedAt: m.receivedAt, bytes: m.frame.slice() };
          await handler(frame);
          done.push(m.id);
        } catch {
          // Not acknowledged: the relay delivers it again (after a reconnect or the next fetch).
        } finally {
          this.#inProgress.delete(m.id);
        }
      }
      if (done.length > 0 && this.#state !== 'closed') await ack(done).catch(() => undefined);
    };
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  close(): void {
    this.setState('closed');
    this.#stateListeners.clear();
    this.#noticeListeners.clear();
    this.#handler = undefined;
  }
}
