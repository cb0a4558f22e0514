/**
 * The HTTP carrier (docs/relay-protocol.md §1): `GET /v1/hello`, `POST /v1/rpc` (one
 * request frame in, one answer frame out; bearer sessions; long-poll FETCH) and
 * `GET /v1/health`.
 *
 * - A body over the frame limit is refused with 413 from its `Content-Length` before a
 *   byte is read, or as soon as the streamed bytes pass it (SECURITY.md E34).
 * - Requests carrying an `Origin` not in the allowed list are refused with 403; allowed
 *   origins get CORS headers (never credentials: the relay uses no cookies).
 * - 200 for every answer frame, ERROR included; 400 undecodable; 401 missing or expired
 *   token; 413 too large; 429 rate limited (with `Retry-After`); 503 while draining.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { decodeRelayFrame, encodeRelayFrame, type RelayFrame } from '@deadbolt/spec';
import { originAllowed, type RelayCore } from './core.js';
import type { AuthenticatedDevice } from './device.js';
import { errorFrame, handleRequest, isRequest, needsNoDevice } from './handler.js';
import { peekRequestId } from './websocket.js';

const BEARER = /^Bearer ([A-Za-z0-9_-]{1,128})$/;

function statusOf(frame: RelayFrame): number {
  if (frame.kind !== 'error') return 200;
  if (frame.code === 'RATE_LIMITED') return 429;
  if (frame.code === 'UNAVAILABLE') return 503;
  return 200;
}

function sendFrame(res: ServerResponse, requestId: number, frame: RelayFrame, status = statusOf(frame)): void {
  if (res.headersSent || res.destroyed) return;
  const body = encodeRelayFrame(requestId, frame);
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/octet-stream',
    'Content-Length': body.byteLength,
    'Cache-Control': 'no-store',
  };
  if (frame.kind === 'error' && frame.code === 'RATE_LIMITED') headers['Retry-After'] = Math.max(1, Math.ceil(frame.retryAfterMs / 1000));
  res.writeHead(status, headers);
  res.end(body);
}

function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store', ...headers });
  res.end(text);
}

/** Refuses an oversize body and drops the connection rather than reading the rest. */
function tooLarge(res: ServerResponse, req: IncomingMessage, max: number): void {
  sendFrame(res, 0, errorFrame('TOO_LARGE', `request body over ${max} bytes`), 413);
  res.once('finish', () => req.socket.destroy());
}

function readBody(req: IncomingMessage, max: number): Promise<Uint8Array | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.off('data', onData);
        req.pause();
        resolve('too-large');
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(new Uint8Array(Buffer.concat(chunks, size))));
    req.once('error', reject);
  });
}

/** Creates the HTTP request listener of a relay. */
export function createHttpListener(core: RelayCore): (req: IncomingMessage, res: ServerResponse) => void {
  const { limits } = core;

  async function rpc(req: IncomingMessage, res: ServerResponse, remote: string): Promise<void> {
    if (core.draining) return sendFrame(res, 0, errorFrame('UNAVAILABLE', 'the relay is shutting down'));
    const declared = Number(req.headers['content-length'] ?? '0');
    if (Number.isFinite(declared) && declared > limits.maxFrame) return tooLarge(res, req, limits.maxFrame);
    const body = await readBody(req, limits.maxFrame);
    if (body === 'too-large') return tooLarge(res, req, limits.maxFrame);
    let envelope;
    try {
      envelope = decodeRelayFrame(body);
    } catch {
      return sendFrame(res, peekRequestId(body), errorFrame('BAD_REQUEST', 'undecodable frame'), 400);
    }
    const { requestId, frame } = envelope;
    if (!isRequest(frame)) return sendFrame(res, requestId, errorFrame('BAD_REQUEST', `${frame.kind} is not a request`), 400);

    // AUTH and PROVISION_TAKE are sent without a session token (a new device taking its
    // device-link answer has no certificate yet); every other request needs one.
    let device: AuthenticatedDevice | undefined;
    if (!needsNoDevice(frame)) {
      const token = BEARER.exec(req.headers.authorization ?? '')?.[1];
      device = token === undefined ? undefined : core.sessions.resolve(token);
      if (device === undefined) return sendFrame(res, requestId, errorFrame('UNAUTHENTICATED', 'missing or expired session token'), 401);
    }
    const abort = new AbortController();
    res.once('close', () => abort.abort());
    // Answered inside the tracked section: a graceful close waits for the response too.
    await core.track(async () => {
      const result = await handleRequest(
        core,
        { carrier: 'http', remote, connection: `http:${remote}`, device, signal: abort.signal, consumeChallenge: (c) => core.challenges.consume(c) },
        frame,
      );
      sendFrame(res, requestId, result.frame);
      result.after?.();
    });
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const remote = req.socket.remoteAddress ?? 'unknown';
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://relay').pathname;
    } catch {
      return sendText(res, 400, 'bad request');
    }
    const origin = req.headers.origin;
    if (!originAllowed(core, origin)) {
      core.log('info', 'request-refused', { reason: 'origin' });
      return sendText(res, 403, 'origin not allowed');
    }
    if (origin !== undefined) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
      res.setHeader('Access-Control-Expose-Headers', 'Retry-After');
    }
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS' && (path === '/v1/rpc' || path === '/v1/hello' || path === '/v1/health')) {
      res.writeHead(204, {
        'Access-Control-Allow-Methods': 'GET, POST',
        'Access-Control-Allow-Headers': 'authorization, content-type',
        'Access-Control-Max-Age': '600',
      });
      res.end();
      return;
    }
    switch (path) {
      case '/v1/health': {
        if (method !== 'GET' && method !== 'HEAD') return sendText(res, 405, 'method not allowed', { Allow: 'GET, HEAD' });
        const body = JSON.stringify({ status: core.draining ? 'draining' : 'ok' });
        res.writeHead(core.draining ? 503 : 200, { 'Content-Type': 'application/json', 'Content-Length': body.length, 'Cache-Control': 'no-store' });
        res.end(method === 'HEAD' ? undefined : body);
        return;
      }
      case '/v1/hello': {
        if (method !== 'GET') return sendText(res, 405, 'method not allowed', { Allow: 'GET' });
        if (core.draining) return sendFrame(res, 0, errorFrame('UNAVAILABLE', 'the relay is shutting down'));
        const wait = core.limiters.authAttempts.attempt([remote]);
        if (wait > 0) return sendFrame(res, 0, errorFrame('RATE_LIMITED', 'too many challenges', wait));
        return sendFrame(res, 0, {
          kind: 'hello',
          relayId: core.relayId,
          challenge: core.challenges.issue(),
          serverTime: core.now(),
          maxMessage: Math.min(limits.maxMessage, limits.maxFrame),
        });
      }
      case '/v1/rpc':
        if (method !== 'POST') return sendText(res, 405, 'method not allowed', { Allow: 'POST' });
        return rpc(req, res, remote);
      case '/v1/ws':
        return sendText(res, 426, 'upgrade required', { Upgrade: 'websocket' });
      default:
        return sendText(res, 404, 'not found');
    }
  }

  return (req, res) => {
    route(req, res).catch((e: unknown) => {
      core.log('error', 'http-failed', { error: e instanceof Error ? e.name : typeof e });
      if (!res.headersSent) sendFrame(res, 0, errorFrame('INTERNAL', 'the relay failed'), 500);
      else res.destroy();
    });
  };
}
