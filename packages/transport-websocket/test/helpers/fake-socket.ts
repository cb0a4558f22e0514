/**
 * A scripted relay behind a fake WebSocket class, for the behaviours the real relay cannot
 * be made to show on demand (a full send buffer, an answer that never comes, a HELLO that
 * never comes). The class is injected through the transport's `WebSocket` option, as the
 * platform's would be. Everything is driven by events, never by timers.
 */
import { decodeRelayFrame, encodeRelayFrame, type RelayEnvelope, type RelayFrame } from '@deadbolt/spec';
import type { WebSocketConstructor, WebSocketLike } from '../../src/index.js';

/** What the scripted relay does; each hook may answer through `socket.answer`. */
export interface Script {
  /** After the socket opened (default: send HELLO). */
  onOpen?(socket: FakeSocket): void;
  /** A request arrived (default: AUTH → AUTH_OK, SEND/ACK/PUBLISH → OK, FETCH_BUNDLES → empty BUNDLES). */
  onRequest?(socket: FakeSocket, request: RelayEnvelope): void;
}

export const HELLO: RelayFrame = { kind: 'hello', relayId: 'fake-relay', challenge: new Uint8Array(32).fill(7), serverTime: 0, maxMessage: 286_720 };

export function defaultAnswer(socket: FakeSocket, { requestId, frame }: RelayEnvelope): void {
  if (frame.kind === 'auth') socket.answer(requestId, { kind: 'auth-ok', sessionToken: '', oneTimePrekeys: 0, pqPrekeys: 0 });
  else if (frame.kind === 'fetch-bundles') socket.answer(requestId, { kind: 'bundles', bundles: [], deviceList: undefined });
  else socket.answer(requestId, { kind: 'ok' });
}

export class FakeSocket implements WebSocketLike {
  binaryType = 'blob';
  readyState = 0;
  bufferedAmount = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  /** Every request the transport wrote, decoded. */
  readonly received: RelayEnvelope[] = [];

  constructor(
    readonly url: string,
    private readonly script: Script,
  ) {
    queueMicrotask(() => {
      if (this.readyState !== 0) return;
      this.readyState = 1;
      this.onopen?.({});
      (script.onOpen ?? ((s) => s.answer(0, HELLO)))(this);
    });
  }

  send(data: Uint8Array): void {
    if (this.readyState !== 1) throw new Error('not open');
    const envelope = decodeRelayFrame(data);
    this.received.push(envelope);
    (this.script.onRequest ?? defaultAnswer)(this, envelope);
  }

  close(code = 1000): void {
    if (this.readyState >= 2) return;
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.({ code }));
  }

  // --- the relay's side ---

  /** Sends a frame to the transport (as an ArrayBuffer, like a browser with binaryType 'arraybuffer'). */
  answer(requestId: number, frame: RelayFrame): void {
    if (this.readyState !== 1) return;
    const bytes = encodeRelayFrame(requestId, frame);
    this.onmessage?.({ data: bytes.slice().buffer });
  }

  /** The network drops the connection. */
  drop(): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code: 1006 });
  }

  kinds(): string[] {
    return this.received.map((r) => r.frame.kind);
  }
}

/** A WebSocket class whose instances follow `script`; `sockets` lists them in creation order. */
export function fakeWebSocket(script: Script = {}): { WebSocket: WebSocketConstructor; sockets: FakeSocket[] } {
  const sockets: FakeSocket[] = [];
  const WebSocket = class extends FakeSocket {
    constructor(url: string) {
      super(url, script);
      sockets.push(this);
    }
  };
  return { WebSocket, sockets };
}

/** Resolves once `check()` holds, re-checking after each turn of the event loop's microtasks and I/O. */
export async function until(check: () => boolean, what: string, tries = 2000): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (check()) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  throw new Error(`never happened: ${what}`);
}

export const auth = { certificate: new Uint8Array(100).fill(1), sign: async () => new Uint8Array(64).fill(2) };
