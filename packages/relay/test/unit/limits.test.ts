import { describe, expect, it } from 'vitest';
import { isDeadboltError, RELAY_LIMITS } from '@deadbolt/spec';
import { DEFAULT_RELAY_LIMITS, resolveRelayLimits } from '../../src/index.js';

describe('relay limits', () => {
  it('defaults are docs/relay-protocol.md §5', () => {
    const d = DEFAULT_RELAY_LIMITS;
    expect(d.maxFrame).toBe(2 * 1024 * 1024);
    expect(d.maxMessage).toBe(286_720);
    expect(d.maxRecipients).toBe(1000);
    expect(d.maxDeliver).toBe(100);
    expect(d.maxAck).toBe(1000);
    expect(d.maxWaitMs).toBe(30_000);
    expect(d.mailboxMessages).toBe(10_000);
    expect(d.mailboxBytes).toBe(64 * 1024 * 1024);
    expect(d.senderQueuedPerMailbox).toBe(1000);
    expect(d.bundleFetches).toEqual({ burst: 6, refill: 1, intervalMs: 600_000 });
    expect(d.messages).toEqual({ burst: 60, refill: 1, intervalMs: 1000 });
    expect(d.connectionsPerDevice).toBe(4);
    expect(d.challengeLifetimeMs).toBe(60_000);
    expect(d.sessionIdleMs).toBe(600_000);
    expect(d.deviceListPublishes).toEqual({ burst: 10, refill: 1, intervalMs: 60_000 });
    expect(d.maxProvisionBlob).toBe(8192);
    expect(d.maxProvisionWaitMs).toBe(30_000);
    expect(d.provisionLifetimeMs).toBe(600_000);
    expect(d.maxProvisionBlobs).toBe(10_000);
    expect(d.maxProvisionWaiters).toBe(1000);
    expect(d.provisionTakes).toEqual({ burst: 10, refill: 1, intervalMs: 5000 });
    expect(d.provisionPuts).toEqual({ burst: 10, refill: 1, intervalMs: 60_000 });
    expect(resolveRelayLimits(undefined)).toEqual(d);
  });

  it('may be lowered, never raised past what the codec enforces; invalid values are refused', () => {
    expect(resolveRelayLimits({ maxMessage: 1024 }).maxMessage).toBe(1024);
    expect(resolveRelayLimits({ mailboxMessages: 20_000 }).mailboxMessages).toBe(20_000);
    const bad = [
      { maxFrame: RELAY_LIMITS.maxFrame + 1 },
      { maxDeliver: 101 },
      { maxProvisionBlob: RELAY_LIMITS.maxProvisionBlob + 1 },
      { maxProvisionWaitMs: RELAY_LIMITS.maxProvisionWaitMs + 1 },
      { maxMessage: 0 },
      { mailboxBytes: 1.5 },
      { messages: { burst: 0, refill: 1, intervalMs: 1 } },
      { bundleFetches: { burst: 6, refill: -1, intervalMs: 1 } },
      { nonsense: 1 } as never,
    ];
    for (const limits of bad) {
      let error: unknown;
      try {
        resolveRelayLimits(limits);
      } catch (e) {
        error = e;
      }
      expect(isDeadboltError(error, 'INVALID_ARGUMENT'), JSON.stringify(limits)).toBe(true);
    }
  });
});
