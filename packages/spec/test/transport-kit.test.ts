import { describe, expect, test } from 'vitest';
import { TransportCore, address, backoffDelay, isDeadboltError, prepareOutbound, relayError, type DeliveredMessage, type InboundFrame } from '../src/index.js';

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

  test('relay refusals map to the errors a caller acts on', () => {
    const err = (code: 'RATE_LIMITED' | 'UNKNOWN_USER' | 'TOO_LARGE' | 'FORBIDDEN') => relayError({ kind: 'error', code, retryAfterMs: 250, message: '' }, 'bob');
    expect(isDeadboltError(err('RATE_LIMITED'), 'RATE_LIMITED') && err('RATE_LIMITED').details).toEqual({ retryAfterMs: 250 });
    expect(err('UNKNOWN_USER').details).toEqual({ userId: 'bob' });
    expect(err('TOO_LARGE').code).toBe('FRAME_TOO_LARGE');
    expect(err('FORBIDDEN').details).toEqual({ code: 'FORBIDDEN' });
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
