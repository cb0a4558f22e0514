/**
 * Raw protocol clients for tests: a `ws` WebSocket client and `fetch` over HTTP, speaking
 * docs/relay-protocol.md byte for byte through the spec codec. Everything waits on
 * events (messages, closes, responses); nothing sleeps.
 */
import WebSocket from 'ws';
import { decodeRelayFrame, encodeRelayFrame, type RelayFrame } from '@deadbolt/spec';
import type { TestDevice } from './devices.js';

export type Hello = Extract<RelayFrame, { kind: 'hello' }>;

/** Resolves with the first value `check` accepts among events, or rejects at the deadline. */
export function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export class WsClient {
  readonly hello: Hello;
  /** Frames the relay pushed unasked (requestId 0), in order. */
  readonly pushes: RelayFrame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #ws: WebSocket;
  #nextId = 1;
  #waiting = new Map<number, { resolve: (f: RelayFrame) => void; reject: (e: Error) => void }>();
  #pushWaiters: { check: (f: RelayFrame) => boolean; resolve: (f: RelayFrame) => void }[] = [];
  #closedFlag = false;

  private constructor(ws: WebSocket, hello: Hello, closed: Promise<{ code: number; reason: string }>) {
    this.#ws = ws;
    this.hello = hello;
    this.closed = closed;
    ws.on('message', (data: Buffer) => this.#onFrame(new Uint8Array(data)));
    // A request the socket closed under is answered by nobody: fail it at once.
    void closed.then(({ code }) => {
      for (const w of this.#waiting.values()) w.reject(new Error(`socket closed (${code}) before the answer`));
      this.#waiting.clear();
    });
  }

  /** Opens a socket and waits for HELLO. Rejects with the HTTP status if the upgrade is refused. */
  static connect(wsUrl: string, options: { origin?: string; headers?: Record<string, string> } = {}): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl, { ...(options.origin ? { origin: options.origin } : {}), headers: options.headers ?? {}, perMessageDeflate: false });
      const closed = new Promise<{ code: number; reason: string }>((res) => ws.once('close', (code, reason) => res({ code, reason: reason.toString() })));
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', (e) => reject(e));
      ws.once('message', (data: Buffer) => {
        const { frame } = decodeRelayFrame(new Uint8Array(data));
        if (frame.kind !== 'hello') return reject(new Error(`expected HELLO, got ${frame.kind}`));
        resolve(new WsClient(ws, frame, closed));
      });
    });
  }

  #onFrame(bytes: Uint8Array): void {
    const { requestId, frame } = decodeRelayFrame(bytes);
    const waiter = this.#waiting.get(requestId);
    if (requestId !== 0 && waiter) {
      this.#waiting.delete(requestId);
      waiter.resolve(frame);
      return;
    }
    this.pushes.push(frame);
    this.#pushWaiters = this.#pushWaiters.filter((w) => {
      if (!w.check(frame)) return true;
      w.resolve(frame);
      return false;
    });
  }

  /** Sends a request and resolves with its answer. */
  request(frame: RelayFrame, timeoutMs = 10_000): Promise<RelayFrame> {
    const id = this.#nextId++;
    const answer = new Promise<RelayFrame>((resolve, reject) => this.#waiting.set(id, { resolve, reject }));
    this.#ws.send(encodeRelayFrame(id, frame));
    return deadline(answer, timeoutMs, `the answer to ${frame.kind}`);
  }

  /** Sends raw bytes (for malformed and oversize frames). */
  sendRaw(bytes: Uint8Array): void {
    this.#ws.send(bytes);
  }

  /** The first push (already received or future) that `check` accepts, removing it. */
  nextPush(check: (f: RelayFrame) => boolean = () => true, timeoutMs = 10_000, what = 'a push'): Promise<RelayFrame> {
    const i = this.pushes.findIndex(check);
    if (i >= 0) return Promise.resolve(this.pushes.splice(i, 1)[0]!);
    const got = new Promise<RelayFrame>((resolve) =>
      this.#pushWaiters.push({
        check,
        resolve: (f) => {
          this.pushes.splice(this.pushes.indexOf(f), 1);
          resolve(f);
        },
      }),
    );
    return deadline(got, timeoutMs, what);
  }

  /** Collects DELIVER pushes until `n` messages arrived. */
  async delivered(n: number, timeoutMs = 10_000): Promise<Extract<RelayFrame, { kind: 'deliver' }>['messages'][number][]> {
    const out: Extract<RelayFrame, { kind: 'deliver' }>['messages'][number][] = [];
    while (out.length < n) {
      const f = await this.nextPush((x) => x.kind === 'deliver', timeoutMs, `${n - out.length} more delivered messages`);
      if (f.kind === 'deliver') out.push(...f.messages);
    }
    return out;
  }

  /** Stops reading from the socket (the relay's send buffer then fills up). */
  pauseReading(): void {
    this.#ws.pause();
  }

  resumeReading(): void {
    this.#ws.resume();
  }

  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  async close(): Promise<void> {
    if (this.#closedFlag) return;
    this.#closedFlag = true;
    if (this.#ws.readyState === WebSocket.CLOSED) return;
    this.#ws.close();
    await this.closed;
  }
}

/** Connects and authenticates `device` over WebSocket; returns the client and AUTH_OK. */
export async function connectWs(
  wsUrl: string,
  device: TestDevice,
  options: { token?: string; origin?: string } = {},
): Promise<{ client: WsClient; authOk: Extract<RelayFrame, { kind: 'auth-ok' }> }> {
  const client = await WsClient.connect(wsUrl, options.origin ? { origin: options.origin } : {});
  const answer = await client.request({
    kind: 'auth',
    certificate: device.certificate,
    challenge: client.hello.challenge,
    signature: await device.sign(client.hello.relayId, client.hello.challenge),
    token: options.token ?? '',
  });
  if (answer.kind !== 'auth-ok') {
    await client.close();
    throw new Error(`AUTH refused: ${answer.kind === 'error' ? `${answer.code} ${answer.message}` : answer.kind}`);
  }
  return { client, authOk: answer };
}

// --- HTTP -------------------------------------------------------------------------------

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly requestId: number;
  readonly frame: RelayFrame | undefined;
}

let httpRequestId = 1;

export async function httpHello(url: string): Promise<Hello> {
  const res = await fetch(`${url}/v1/hello`);
  const { frame } = decodeRelayFrame(new Uint8Array(await res.arrayBuffer()));
  if (frame.kind !== 'hello') throw new Error(`expected HELLO, got ${frame.kind}`);
  return frame;
}

/** POSTs one frame (or raw bytes) to /v1/rpc. */
export async function httpRpc(
  url: string,
  frame: RelayFrame | Uint8Array,
  options: { token?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<HttpAnswer> {
  const requestId = httpRequestId++;
  const body = frame instanceof Uint8Array ? frame : encodeRelayFrame(requestId, frame);
  const res = await fetch(`${url}/v1/rpc`, {
    method: 'POST',
    body: body as Uint8Array<ArrayBuffer>,
    headers: {
      'Content-Type': 'application/octet-stream',
      ...(options.token !== undefined ? { Authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  let decoded: { requestId: number; frame: RelayFrame } | undefined;
  try {
    decoded = decodeRelayFrame(bytes);
  } catch {
    decoded = undefined;
  }
  return { status: res.status, headers: res.headers, requestId: decoded?.requestId ?? -1, frame: decoded?.frame };
}

/** Authenticates over HTTP; returns the session token and AUTH_OK. */
export async function httpAuth(url: string, device: TestDevice, token = ''): Promise<{ token: string; authOk: Extract<RelayFrame, { kind: 'auth-ok' }> }> {
  const hello = await httpHello(url);
  const answer = await httpRpc(url, {
    kind: 'auth',
    certificate: device.certificate,
    challenge: hello.challenge,
    signature: await device.sign(hello.relayId, hello.challenge),
    token,
  });
  if (answer.frame?.kind !== 'auth-ok') throw new Error(`HTTP AUTH refused: ${JSON.stringify(answer.frame)}`);
  return { token: answer.frame.sessionToken, authOk: answer.frame };
}

/** Asserts an answer is an ERROR with `code` and returns it. */
export function expectError(frame: RelayFrame | undefined, code: string): Extract<RelayFrame, { kind: 'error' }> {
  if (frame?.kind !== 'error' || frame.code !== code) {
    throw new Error(`expected ERROR ${code}, got ${frame?.kind === 'error' ? `ERROR ${frame.code} (${frame.message})` : (frame?.kind ?? 'nothing')}`);
  }
  return frame;
}

/** Asserts an answer is OK. */
export function expectOk(frame: RelayFrame | undefined): void {
  if (frame?.kind !== 'ok') throw new Error(`expected OK, got ${frame?.kind === 'error' ? `ERROR ${frame.code} (${frame.message})` : (frame?.kind ?? 'nothing')}`);
}
