/**
 * The HTTP adapter's handling of error statuses and retries, against msw (HTTP unit
 * tests only; the conformance suite runs against the real relay).
 */
import { http, HttpResponse } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { address, decodeRelayFrame, encodeRelayFrame, isDeadboltError, type RelayFrame } from '@deadbolt/spec';
import { createHttpPollingTransport } from '../src/index.js';

const BASE = 'http://relay.test';
const bob = address('bob', 'laptop');
const auth = { certificate: new Uint8Array(100), sign: async () => new Uint8Array(64) };

/** A scripted relay: each rpc request gets the next answer for its frame kind. */
function relay(script: Partial<Record<RelayFrame['kind'], (() => Response)[]>>) {
  const seen: { kind: string; authorization: string | null }[] = [];
  const answer = (requestId: number, frame: RelayFrame): Response =>
    new HttpResponse(encodeRelayFrame(requestId, frame), { headers: { 'content-type': 'application/octet-stream' } });
  const handlers = [
    http.get(`${BASE}/v1/hello`, () => answer(0, { kind: 'hello', relayId: 'test', challenge: new Uint8Array(32), serverTime: 0, maxMessage: 286_720 })),
    http.post(`${BASE}/v1/rpc`, async ({ request }) => {
      const { requestId, frame } = decodeRelayFrame(new Uint8Array(await request.arrayBuffer()));
      seen.push({ kind: frame.kind, authorization: request.headers.get('authorization') });
      const scripted = script[frame.kind]?.shift();
      if (scripted) return scripted();
      if (frame.kind === 'auth') return answer(requestId, { kind: 'auth-ok', sessionToken: `token-${seen.filter((s) => s.kind === 'auth').length}`, oneTimePrekeys: 100, pqPrekeys: 20 });
      if (frame.kind === 'fetch') return new Promise<Response>(() => undefined); // a long poll that never answers
      return answer(requestId, { kind: 'ok' });
    }),
  ];
  return { handlers, seen, answer };
}

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

function transport() {
  return createHttpPollingTransport({ url: BASE, backoff: { initialMs: 1, maxMs: 5 }, random: () => 0.5 });
}

describe('HTTP polling transport: statuses and retries', () => {
  test('a 401 makes it authenticate again and retry the request', async () => {
    const r = relay({ send: [() => new HttpResponse(null, { status: 401 })] });
    server.use(...r.handlers);
    const t = transport();
    await t.connect(auth);
    await t.send([{ to: bob, frame: new Uint8Array([1]) }]);
    const kinds = r.seen.filter((s) => s.kind !== 'fetch').map((s) => s.kind);
    expect(kinds).toEqual(['auth', 'send', 'auth', 'send']);
    expect(r.seen.filter((s) => s.kind === 'send').map((s) => s.authorization)).toEqual(['Bearer token-1', 'Bearer token-2']);
    await t.close();
  });

  test('a 429 waits for Retry-After, then retries', async () => {
    const r = relay({ send: [() => new HttpResponse(null, { status: 429, headers: { 'retry-after': '0' } })] });
    server.use(...r.handlers);
    const t = transport();
    await t.connect(auth);
    await t.send([{ to: bob, frame: new Uint8Array([1]) }]);
    expect(r.seen.filter((s) => s.kind === 'send')).toHaveLength(2);
    await t.close();
  });

  test('a 500 and a network error are retried until the relay answers', async () => {
    const r = relay({ send: [() => new HttpResponse(null, { status: 500 }), () => HttpResponse.error(), () => new HttpResponse(null, { status: 503 })] });
    server.use(...r.handlers);
    const t = transport();
    const states: string[] = [];
    t.onStateChange((s) => states.push(s));
    await t.connect(auth);
    await t.send([{ to: bob, frame: new Uint8Array([1]) }]);
    expect(r.seen.filter((s) => s.kind === 'send')).toHaveLength(4);
    expect(states).toContain('reconnecting');
    await t.close();
  });

  test('relay refusals are typed errors and are not retried', async () => {
    const refuse = (code: 'RATE_LIMITED' | 'UNKNOWN_USER' | 'MAILBOX_FULL', retryAfterMs = 0) => () =>
      new HttpResponse(encodeRelayFrame(0, { kind: 'error', code, retryAfterMs, message: code }), { headers: { 'content-type': 'application/octet-stream' } });
    const r = relay({ send: [refuse('RATE_LIMITED', 1500), refuse('MAILBOX_FULL')], 'fetch-bundles': [refuse('UNKNOWN_USER')] });
    server.use(...r.handlers);
    const t = transport();
    await t.connect(auth);
    let caught: unknown;
    await t.send([{ to: bob, frame: new Uint8Array([1]) }]).catch((e: unknown) => (caught = e));
    expect(isDeadboltError(caught, 'RATE_LIMITED') && caught.details.retryAfterMs).toBe(1500);
    await expect(t.send([{ to: bob, frame: new Uint8Array([1]) }])).rejects.toSatisfy((e) => isDeadboltError(e, 'RELAY_REJECTED') && e.details.code === 'MAILBOX_FULL');
    await expect(t.fetchBundles('nobody')).rejects.toSatisfy((e) => isDeadboltError(e, 'UNKNOWN_USER'));
    expect(r.seen.filter((s) => s.kind === 'send')).toHaveLength(2);
    await t.close();
  });

  test('a refused authentication fails connect and leaves the transport idle', async () => {
    const r = relay({ auth: [() => new HttpResponse(encodeRelayFrame(0, { kind: 'error', code: 'UNAUTHENTICATED', retryAfterMs: 0, message: 'no' }))] });
    server.use(...r.handlers);
    const t = transport();
    await expect(t.connect(auth)).rejects.toSatisfy((e) => isDeadboltError(e, 'RELAY_REJECTED'));
    expect(t.state).toBe('idle');
    await t.close();
  });

  test('close aborts the long poll and pending retries', async () => {
    const r = relay({});
    server.use(...r.handlers);
    const t = transport();
    await t.connect(auth);
    await t.close();
    await expect(t.send([{ to: bob, frame: new Uint8Array([1]) }])).rejects.toSatisfy((e) => isDeadboltError(e, 'CLOSED'));
  });
});
