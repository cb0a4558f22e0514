import { describe, expect, test } from 'vitest';
import {
  RELAY_LIMITS,
  TransportCore,
  TransportError,
  address,
  backoffDelay,
  checkDeviceListBytes,
  checkProvisionBlob,
  checkProvisionChannel,
  checkProvisionWait,
  deviceMismatchError,
  encodeRelayFrame,
  isDeadboltError,
  isolatedListener,
  planSendRequests,
  planSharedSend,
  prepareFetchSkip,
  prepareOutbound,
  relayError,
  settleSendRequests,
  type DeliveredMessage,
  type InboundFrame,
} from '../src/index.js';

const bob = address('bob', 'laptop');
const msg = (id: string, size = 4): DeliveredMessage => ({ id, from: bob, receivedAt: 1, frame: new Uint8Array(size) });

describe('backoff', () => {
  test('full jitter under a doubling, capped ceiling', () => {
    expect([0, 1, 2, 3, 10].map((a) => backoffDelay(a, { initialMs: 100, maxMs: 1000 }, () => 0.999))).toEqual([99, 199, 399, 799, 999]);
    expect(backoffDelay(5, {}, () => 0)).toBe(0);
    expect(backoffDelay(1000, { initialMs: 100, maxMs: 10_000 }, () => 0.5)).toBe(5000); // no overflow at huge attempts
  });
});

describe('outbound checks', () => {
  test('copies only the viewed bytes and refuses oversize frames and empty batches', () => {
    const whole = new Uint8Array([1, 2, 3, 4, 5]);
    const [m] = prepareOutbound([{ to: bob, frame: whole.subarray(1, 3) }], 10);
    whole.fill(0);
    expect(Array.from(m!.frame)).toEqual([2, 3]);
    expect(m!.frame.byteOffset).toBe(0);
    expect(() => prepareOutbound([{ to: bob, frame: new Uint8Array(11) }], 10)).toThrow(expect.objectContaining({ code: 'FRAME_TOO_LARGE' }));
    expect(() => prepareOutbound([], 10)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  test('contact (WebRTC review 2, finding 1): kept only as an explicit true, and never on the wire (the relay never learns it)', () => {
    const frame = new Uint8Array([1, 2, 3]);
    const [marked, unmarked, odd] = prepareOutbound(
      [
        { to: bob, frame, contact: true },
        { to: bob, frame, contact: false },
        { to: bob, frame, contact: 'yes' as unknown as boolean },
      ],
      10,
    );
    expect(marked).toEqual({ to: bob, listVersion: 0, frame, contact: true });
    expect(unmarked).toEqual({ to: bob, listVersion: 0, frame });
    expect('contact' in unmarked! || 'contact' in odd!).toBe(false);
    const [plan] = planSendRequests([{ to: bob, frame, contact: true }], 10);
    expect(plan![0]!.contact).toBe(true);
    expect(encodeRelayFrame(1, { kind: 'send', messages: plan! })).toEqual(encodeRelayFrame(1, { kind: 'send', messages: [{ to: bob, frame }] }));
  });

  test('relay refusals map to the errors a caller acts on', () => {
    const err = (code: 'RATE_LIMITED' | 'UNKNOWN_USER' | 'TOO_LARGE' | 'FORBIDDEN') => relayError({ kind: 'error', code, retryAfterMs: 250, message: '' }, 'bob');
    expect(isDeadboltError(err('RATE_LIMITED'), 'RATE_LIMITED') && err('RATE_LIMITED').details).toEqual({ retryAfterMs: 250 });
    expect(err('UNKNOWN_USER').details).toEqual({ userId: 'bob' });
    expect(err('TOO_LARGE').code).toBe('FRAME_TOO_LARGE');
    expect(err('FORBIDDEN').details).toEqual({ code: 'FORBIDDEN' });
  });
});

describe('prepareFetchSkip (FETCH_BUNDLES skip)', () => {
  test('absent: nothing skipped; repeats dropped; the caller\'s array copied', () => {
    expect(prepareFetchSkip(undefined)).toEqual([]);
    expect(prepareFetchSkip({})).toEqual([]);
    const skip = ['phone', 'phone', 'tablet'];
    const out = prepareFetchSkip({ skip });
    skip[0] = 'changed';
    expect(out).toEqual(['phone', 'tablet']);
  });

  test('not an array of at most 100 device ids: INVALID_ARGUMENT naming options.skip', () => {
    const many = Array.from({ length: 101 }, (_, i) => `d${i}`);
    for (const skip of ['phone', [''], ['no spaces'], [7], many] as unknown[]) {
      let caught: unknown;
      try {
        prepareFetchSkip({ skip } as never);
      } catch (e) {
        caught = e;
      }
      expect(isDeadboltError(caught, 'INVALID_ARGUMENT') && caught.details.field).toBe('options.skip');
    }
    expect(prepareFetchSkip({ skip: many.slice(0, 100) })).toHaveLength(100);
  });
});

describe('planning sends (SEND and SEND_SHARED)', () => {
  const carol = address('carol', 'phone');

  test('SEND requests carry each listVersion (absent: 0) and fit one relay frame, counting the listVersion bytes', () => {
    const max = RELAY_LIMITS.maxMessage;
    const plan = planSendRequests(Array.from({ length: 9 }, (_, i) => ({ to: bob, frame: new Uint8Array(max), ...(i === 0 ? { listVersion: 5 } : {}) })), max);
    expect(plan.map((c) => c.length)).toEqual([7, 2]);
    expect(plan[0]![0]!.listVersion).toBe(5);
    expect(plan[0]![1]!.listVersion).toBe(0);
    for (const chunk of plan) expect(encodeRelayFrame(0xffffffff, { kind: 'send', messages: chunk }).byteLength).toBeLessThanOrEqual(RELAY_LIMITS.maxFrame);
    // The split is exact: frames sized so that 8 entries fill the relay frame to within a
    // few bytes; one byte more per frame and only 7 fit (the listVersion bytes count).
    const entry = 1 + 3 + 1 + 6 + 4 + 4;
    const size = Math.floor((RELAY_LIMITS.maxFrame - 8) / 8) - entry;
    const exact = planSendRequests(Array.from({ length: 9 }, () => ({ to: bob, frame: new Uint8Array(size) })), max);
    expect(exact.map((c) => c.length)).toEqual([8, 1]);
    expect(encodeRelayFrame(1, { kind: 'send', messages: exact[0]! }).byteLength).toBeLessThanOrEqual(RELAY_LIMITS.maxFrame);
    const over = planSendRequests(Array.from({ length: 9 }, () => ({ to: bob, frame: new Uint8Array(size + 1) })), max);
    expect(over.map((c) => c.length)).toEqual([7, 2]);
  });

  test('an invalid listVersion or address is refused before anything is planned', () => {
    for (const listVersion of [-1, 1.5, 2 ** 32, Number.NaN, '1' as never]) {
      expect(() => planSendRequests([{ to: bob, frame: new Uint8Array(1), listVersion }], 10), String(listVersion)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
      expect(() => planSharedSend([{ to: bob, listVersion }], new Uint8Array(1), 10), String(listVersion)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
    expect(() => planSendRequests([{ to: { userId: 'bob', deviceId: 'a/b' } as never, frame: new Uint8Array(1) }], 10)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', details: { field: 'messages[0].to.deviceId', expected: expect.any(String) } }),
    );
    expect(() => planSharedSend([{ to: bob }, { to: { userId: '', deviceId: 'x' } as never }], new Uint8Array(1), 10)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', details: { field: 'recipients[1].to.userId', expected: expect.any(String) } }),
    );
    expect(() => planSharedSend([], new Uint8Array(1), 10)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  test('SEND_SHARED: one copy of the viewed frame bytes, recipients split by 1,000, every request within one relay frame', () => {
    const whole = new Uint8Array(RELAY_LIMITS.maxMessage + 10).fill(3);
    const view = whole.subarray(10);
    const long = 'u'.repeat(64);
    const recipients = Array.from({ length: 2500 }, (_, i) => ({ to: address(long, `${'d'.repeat(58)}${String(i).padStart(6, '0')}`), listVersion: 0xffffffff }));
    const plan = planSharedSend(recipients, view, RELAY_LIMITS.maxMessage);
    whole.fill(0);
    expect(plan.frame.byteLength).toBe(RELAY_LIMITS.maxMessage);
    expect(plan.frame.byteOffset === 0 && plan.frame.buffer.byteLength === plan.frame.byteLength && plan.frame[0] === 3).toBe(true);
    expect(plan.requests.map((r) => r.length)).toEqual([1000, 1000, 500]);
    expect(plan.requests.flat().map((r) => r.to.deviceId)).toEqual(recipients.map((r) => r.to.deviceId));
    for (const chunk of plan.requests) {
      expect(encodeRelayFrame(1, { kind: 'send-shared', recipients: chunk, frame: plan.frame }).byteLength).toBeLessThanOrEqual(RELAY_LIMITS.maxFrame);
    }
    expect(planSharedSend([{ to: carol }], new Uint8Array(2), 10).requests).toEqual([[{ to: carol, listVersion: 0 }]]);
    expect(() => planSharedSend([{ to: carol }], new Uint8Array(11), 10)).toThrow(expect.objectContaining({ code: 'FRAME_TOO_LARGE', details: { size: 11, max: 10 } }));
  });

  test('settling a split send: the first failure, with every DEVICE_MISMATCH of the send merged into one', () => {
    const ok: PromiseSettledResult<unknown> = { status: 'fulfilled', value: undefined };
    const fail = (reason: unknown): PromiseSettledResult<unknown> => ({ status: 'rejected', reason });
    expect(() => settleSendRequests([ok, ok])).not.toThrow();
    const limited = new TransportError('RATE_LIMITED', { details: { retryAfterMs: 5 } });
    expect(() => settleSendRequests([ok, fail(limited), fail(deviceMismatchError([{ userId: 'bob', listVersion: 2 }]))])).toThrow(limited);
    let merged: unknown;
    try {
      settleSendRequests([
        fail(deviceMismatchError([{ userId: 'bob', listVersion: 2 }])),
        fail(limited),
        fail(deviceMismatchError([{ userId: 'carol', listVersion: 0 }, { userId: 'bob', listVersion: 2 }])),
      ]);
    } catch (e) {
      merged = e;
    }
    expect(isDeadboltError(merged, 'DEVICE_MISMATCH') && merged.kind === 'transport' && merged.details).toEqual({
      users: [
        { userId: 'bob', listVersion: 2 },
        { userId: 'carol', listVersion: 0 },
      ],
    });
  });
});

describe('provisioning and device-list arguments', () => {
  test('exact sizes are accepted and copied; anything else is INVALID_ARGUMENT', () => {
    const channel = new Uint8Array(20).fill(1).subarray(2, 18);
    const copy = checkProvisionChannel(channel);
    expect(copy.byteLength === 16 && copy.buffer.byteLength === 16).toBe(true);
    expect(checkProvisionBlob(new Uint8Array(RELAY_LIMITS.maxProvisionBlob)).byteLength).toBe(8192);
    expect(checkDeviceListBytes(new Uint8Array(RELAY_LIMITS.maxDeviceList)).byteLength).toBe(4303);
    expect(checkProvisionWait(0)).toBe(0);
    expect(checkProvisionWait(30_000)).toBe(30_000);
    const bad: [string, () => unknown][] = [
      ['channel 15', () => checkProvisionChannel(new Uint8Array(15))],
      ['channel 17', () => checkProvisionChannel(new Uint8Array(17))],
      ['channel not bytes', () => checkProvisionChannel('x'.repeat(16))],
      ['blob empty', () => checkProvisionBlob(new Uint8Array(0))],
      ['blob 8193', () => checkProvisionBlob(new Uint8Array(8193))],
      ['list empty', () => checkDeviceListBytes(new Uint8Array(0))],
      ['list 4304', () => checkDeviceListBytes(new Uint8Array(4304))],
      ['wait 30001', () => checkProvisionWait(30_001)],
      ['wait -1', () => checkProvisionWait(-1)],
      ['wait 1.5', () => checkProvisionWait(1.5)],
    ];
    for (const [what, call] of bad) expect(call, what).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  test('a REVOKED refusal is RELAY_REJECTED with the code', () => {
    const e = relayError({ kind: 'error', code: 'REVOKED', retryAfterMs: 0, message: '' });
    expect(isDeadboltError(e, 'RELAY_REJECTED') && e.details).toEqual({ code: 'REVOKED' });
  });
});

describe('delivery core', () => {
  test('acknowledges exactly the frames whose handler resolved, in order, one at a time', async () => {
    const core = new TransportCore(100);
    const seen: string[] = [];
    let running = 0;
    core.onFrame(async (f: InboundFrame) => {
      running++;
      expect(running).toBe(1);
      seen.push(f.id);
      await Promise.resolve();
      running--;
      if (f.id === 'bad') throw new Error('handler failed');
    });
    const acks: string[][] = [];
    await Promise.all([
      core.deliver([msg('a'), msg('bad'), msg('b')], async (ids) => void acks.push(ids)),
      core.deliver([msg('c'), msg('huge', 101)], async (ids) => void acks.push(ids)),
    ]);
    expect(seen).toEqual(['a', 'bad', 'b', 'c']); // the oversize frame never reaches the handler
    expect(acks).toEqual([['a', 'b'], ['c', 'huge']]); // ...but is acknowledged, as it can never be processed
  });

  test('without a handler nothing is acknowledged; state changes are emitted once, in order', async () => {
    const core = new TransportCore(100);
    const acks: string[][] = [];
    await core.deliver([msg('a')], async (ids) => void acks.push(ids));
    expect(acks).toEqual([]);
    const states: string[] = [];
    core.onStateChange((s) => states.push(s));
    core.setState('connecting');
    core.setState('connecting');
    core.setState('connected');
    core.close();
    core.setState('connected');
    expect(states).toEqual(['connecting', 'connected', 'closed']);
  });
});

describe('isolatedListener', () => {
  test('a throwing listener does not break the caller; its error is rethrown in a microtask', async () => {
    const seen: number[] = [];
    const rethrown = new Promise<unknown>((resolve) => {
      const original = globalThis.queueMicrotask;
      globalThis.queueMicrotask = (fn) =>
        original(() => {
          globalThis.queueMicrotask = original;
          try {
            fn();
          } catch (e) {
            resolve(e);
          }
        });
    });
    const wrapped = isolatedListener((n: number) => {
      seen.push(n);
      throw new Error('listener bug');
    });
    expect(() => wrapped(1)).not.toThrow();
    expect(seen).toEqual([1]);
    expect((await rethrown) as Error).toHaveProperty('message', 'listener bug');
  });

  test('a listener that is not a function is INVALID_ARGUMENT', () => {
    expect(() => isolatedListener(undefined as unknown as (v: number) => void)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
