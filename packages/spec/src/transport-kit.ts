/**
 * Shared machinery for transport adapters (like `validate.ts` for storage adapters), so
 * every transport keeps the contract's invariants the same way: state changes in order,
 * frames handed to the handler one at a time and acknowledged only after it resolves,
 * outbound frames checked and copied before anything is sent, relay refusals mapped to
 * typed errors, and capped exponential backoff with full jitter.
 *
 * @module
 */
import { TransportError, UsageError } from './errors.js';
import { RELAY_LIMITS, type DeliveredMessage, type OutboundMessage, type RelayFrame } from './relay-protocol.js';
import type { FrameHandler, InboundFrame, TransportNotice, TransportState } from './transport.js';

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

/** Checks and copies outbound messages (contract invariants 4 and 5). */
export function prepareOutbound(messages: readonly OutboundMessage[], maxFrameSize: number): OutboundMessage[] {
  if (!Array.isArray(messages) || messages.length === 0 || messages.length > RELAY_LIMITS.maxRecipients) {
    throw new UsageError('INVALID_ARGUMENT', {
      message: `send takes 1 to ${RELAY_LIMITS.maxRecipients} messages`,
      details: { field: 'messages', expected: `1-${RELAY_LIMITS.maxRecipients} messages` },
    });
  }
  return messages.map((m, i) => {
    if (!(m?.frame instanceof Uint8Array)) {
      throw new UsageError('INVALID_ARGUMENT', { message: `messages[${i}].frame must be a Uint8Array`, details: { field: `messages[${i}].frame`, expected: 'Uint8Array' } });
    }
    if (m.frame.byteLength > maxFrameSize) {
      throw new TransportError('FRAME_TOO_LARGE', { message: `frame of ${m.frame.byteLength} bytes over ${maxFrameSize}`, details: { size: m.frame.byteLength, max: maxFrameSize } });
    }
    return { to: { userId: m.to.userId, deviceId: m.to.deviceId }, frame: m.frame.slice() };
  });
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
