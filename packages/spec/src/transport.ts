/**
 * The transport contract (version `deadbolt.transport.v1`, first draft: the relay issue
 * finalises it).
 *
 * A transport moves opaque frames between device mailboxes. It never interprets a frame.
 * Delivery is **at-least-once and unordered**: the same frame may arrive twice and frames
 * may be reordered; core deduplicates and orders. A frame is acknowledged to the relay
 * only after the receive handler's promise resolves, which the client resolves only after
 * the frame's effects are persisted (SECURITY.md E32).
 *
 * Invariants:
 * 1. `connect()` resolves only once the relay (or peer) acknowledged the connection.
 * 2. `maxFrameSize` is declared; `send` of a larger frame rejects with `FRAME_TOO_LARGE`
 *    before anything is sent, and inbound frames over it are dropped before any work.
 * 3. `send` copies the bytes a view covers; later mutation of the input has no effect.
 * 4. `close()` is idempotent; after it, `send` rejects with `CLOSED`.
 * 5. `state` is observable through `onStateChange`.
 *
 * @module
 */
import type { Address } from './ids.js';

/** The transport contract version an adapter implements. */
export const TRANSPORT_SPECIFICATION_VERSION = 'deadbolt.transport.v1';

/** Connection state of a transport. */
export type TransportState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

/** A frame delivered to this device. */
export interface InboundFrame {
  /** The relay-assigned id, used to acknowledge the frame. */
  readonly id: string;
  /** The sender the relay claims (authenticated by the relay, verified again by core). */
  readonly from: Address;
  /** The opaque frame bytes. */
  readonly bytes: Uint8Array;
}

/** Receives a frame. The frame is acknowledged only after the returned promise resolves. */
export type FrameHandler = (frame: InboundFrame) => Promise<void> | void;

/**
 * Moves opaque frames between device mailboxes.
 *
 * @example
 * ```ts
 * transport.onFrame(async (frame) => { await client.receive(frame); });
 * await transport.connect();
 * await transport.send(bob, frameBytes);
 * ```
 */
export interface TransportAdapter {
  /** Which contract this adapter implements. */
  readonly specificationVersion: typeof TRANSPORT_SPECIFICATION_VERSION;
  /** The largest frame, in bytes, this transport carries. */
  readonly maxFrameSize: number;
  /** The current connection state. */
  readonly state: TransportState;
  /** Connects; resolves when the other end acknowledged the connection. */
  connect(): Promise<void>;
  /** Sends one frame to one device mailbox. */
  send(to: Address, frame: Uint8Array): Promise<void>;
  /** Registers the (single) inbound frame handler; returns a function that removes it. */
  onFrame(handler: FrameHandler): () => void;
  /** Observes state changes; returns a function that stops observing. */
  onStateChange(listener: (state: TransportState) => void): () => void;
  /** Disconnects and releases resources. Idempotent. */
  close(): Promise<void>;
}
