/**
 * The relay's limits: every one of docs/relay-protocol.md §5, plus the relay's own
 * protections against floods (SECURITY.md F39, F42). Each may be lowered; those the codec
 * enforces (frame, message, recipients, DELIVER, ACK, wait) cannot be raised above it.
 *
 * @module
 */
import { RELAY_LIMITS, UsageError } from '@deadbolt/spec';

/** A token bucket: `burst` tokens, refilled continuously at `refill` tokens per `intervalMs`. */
export interface RateLimit {
  readonly burst: number;
  readonly refill: number;
  readonly intervalMs: number;
}

/** Every limit of the relay. */
export interface RelayLimits {
  // --- docs/relay-protocol.md §5 ----------------------------------------------------------
  /** Largest relay frame, request or answer (2 MiB). Also the WebSocket `maxPayload` and HTTP body limit. */
  readonly maxFrame: number;
  /** Largest message frame for one recipient (280 KiB). */
  readonly maxMessage: number;
  /** Recipients in one SEND (1,000). */
  readonly maxRecipients: number;
  /** Messages per DELIVER, and unacknowledged messages in flight per WebSocket (100). */
  readonly maxDeliver: number;
  /** Ids per ACK (1,000). */
  readonly maxAck: number;
  /** Longest long-poll wait (30 s). */
  readonly maxWaitMs: number;
  /** Messages per mailbox (10,000). */
  readonly mailboxMessages: number;
  /** Frame bytes per mailbox (64 MiB). */
  readonly mailboxBytes: number;
  /** Messages one sender user may keep queued in one mailbox (1,000). */
  readonly senderQueuedPerMailbox: number;
  /** Bundle fetches that take prekeys, per (requester user, target user): 6, then one per 10 minutes. */
  readonly bundleFetches: RateLimit;
  /**
   * Directory reads (every FETCH_BUNDLES, including those that take no prekey because the
   * caller skips every device it knows), per (requester user, target user): 30, then one
   * per 10 seconds. A read costs the store a few lookups and no key material, so restarts
   * (a page reload, a crash loop) may read their own user's entry often.
   */
  readonly directoryReads: RateLimit;
  /** Messages per (sender user, recipient user): 60, then one per second. */
  readonly messages: RateLimit;
  /** WebSocket connections per device (4); a fifth closes the oldest. */
  readonly connectionsPerDevice: number;
  /** Challenge lifetime (60 s). */
  readonly challengeLifetimeMs: number;
  /** HTTP session token idle lifetime (10 minutes). */
  readonly sessionIdleMs: number;
  /** PUBLISH_DEVICE_LIST per user: 10, then one per minute. */
  readonly deviceListPublishes: RateLimit;
  /** Largest sealed provisioning blob (8 KiB). */
  readonly maxProvisionBlob: number;
  /** Longest PROVISION_TAKE wait (30 s). */
  readonly maxProvisionWaitMs: number;
  /** How long a provisioning blob (or the tombstone of a taken one) is kept (10 minutes). */
  readonly provisionLifetimeMs: number;
  /** Provisioning channels held in memory (10,000). */
  readonly maxProvisionBlobs: number;
  /** PROVISION_TAKE requests waiting at once (1,000). */
  readonly maxProvisionWaiters: number;
  /** PROVISION_TAKE per WebSocket connection (HTTP: per remote address): 10, then one per 5 s. */
  readonly provisionTakes: RateLimit;
  /** PROVISION_PUT per device: 10, then one per minute. */
  readonly provisionPuts: RateLimit;
  // --- the relay's own protections ----------------------------------------------------------
  /** Below this many one-time keys of either kind, the owner is told PREKEYS_LOW (10). */
  readonly prekeysLowThreshold: number;
  /** Devices per user (100, the most one BUNDLES answer carries). */
  readonly devicesPerUser: number;
  /** One-time X25519 prekeys stored per device (2,000). */
  readonly storedOneTimePrekeys: number;
  /** One-time PQ prekeys stored per device (400). */
  readonly storedPqPrekeys: number;
  /** Handed-out prekey ids remembered per device and kind, never accepted again (10,000). */
  readonly rememberConsumedPrekeys: number;
  /** Open WebSocket connections in total (10,000). */
  readonly maxConnections: number;
  /** Open WebSocket connections not yet authenticated (1,000). */
  readonly maxUnauthenticatedConnections: number;
  /** Open TCP sockets in total, HTTP and WebSocket (20,000). */
  readonly maxSockets: number;
  /** Outstanding HTTP challenges (10,000; the oldest are forgotten first). */
  readonly maxPendingChallenges: number;
  /** HTTP sessions in total (100,000) and per device (8); the least recently used go first. */
  readonly maxSessions: number;
  readonly sessionsPerDevice: number;
  /** Long-poll FETCH waiters in total (10,000) and per device (4). */
  readonly maxWaiters: number;
  readonly waitersPerDevice: number;
  /** Keys kept by each rate limiter (100,000); when full of active buckets, new keys are refused. */
  readonly rateLimiterEntries: number;
  /** Challenges and AUTH attempts per remote address: 200, then 20 per second. */
  readonly authAttempts: RateLimit;
  /** Requests per device: 400, then 200 per second. */
  readonly requests: RateLimit;
  /** Message bytes per sender user across all recipients: 32 MiB, then 1 MiB per second. */
  readonly sendBytes: RateLimit;
  /** PUBLISH_PREKEYS per device: 10, then one per 30 s. */
  readonly prekeyUploads: RateLimit;
  /** Requests handled concurrently per WebSocket before it stops reading (16). */
  readonly requestsInFlightPerConnection: number;
  /** WebSocket send buffer above which pushes pause until it drains (1 MiB). */
  readonly pushHighWaterBytes: number;
  /** WebSocket send buffer above which the connection is dropped (8 MiB). */
  readonly maxBufferedBytes: number;
  /** Interval of WebSocket pings; a socket that misses one pong is dropped (30 s). */
  readonly pingIntervalMs: number;
}

/**
 * Limits the codec itself enforces: they may be lowered, never raised. Each is also its
 * default (below).
 */
const CODEC_MAXIMA = Object.freeze({
  maxFrame: RELAY_LIMITS.maxFrame,
  maxMessage: RELAY_LIMITS.maxMessage,
  maxRecipients: RELAY_LIMITS.maxRecipients,
  maxDeliver: RELAY_LIMITS.maxDeliver,
  maxAck: RELAY_LIMITS.maxAck,
  maxWaitMs: RELAY_LIMITS.maxWaitMs,
  devicesPerUser: RELAY_LIMITS.maxBundles,
  maxProvisionBlob: RELAY_LIMITS.maxProvisionBlob,
  maxProvisionWaitMs: RELAY_LIMITS.maxProvisionWaitMs,
}) satisfies Partial<Record<keyof RelayLimits, number>>;

/** The defaults (docs/relay-protocol.md §5 and the relay's own protections above). */
export const DEFAULT_RELAY_LIMITS: RelayLimits = Object.freeze({
  ...CODEC_MAXIMA,
  mailboxMessages: 10_000,
  mailboxBytes: 64 * 1024 * 1024,
  senderQueuedPerMailbox: 1000,
  bundleFetches: Object.freeze({ burst: 6, refill: 1, intervalMs: 10 * 60_000 }),
  directoryReads: Object.freeze({ burst: 30, refill: 1, intervalMs: 10_000 }),
  messages: Object.freeze({ burst: 60, refill: 1, intervalMs: 1000 }),
  connectionsPerDevice: 4,
  challengeLifetimeMs: 60_000,
  sessionIdleMs: 10 * 60_000,
  deviceListPublishes: Object.freeze({ burst: 10, refill: 1, intervalMs: 60_000 }),
  provisionLifetimeMs: 10 * 60_000,
  maxProvisionBlobs: 10_000,
  maxProvisionWaiters: 1000,
  provisionTakes: Object.freeze({ burst: 10, refill: 1, intervalMs: 5000 }),
  provisionPuts: Object.freeze({ burst: 10, refill: 1, intervalMs: 60_000 }),
  prekeysLowThreshold: 10,
  storedOneTimePrekeys: 2000,
  storedPqPrekeys: 400,
  rememberConsumedPrekeys: 10_000,
  maxConnections: 10_000,
  maxUnauthenticatedConnections: 1000,
  maxSockets: 20_000,
  maxPendingChallenges: 10_000,
  maxSessions: 100_000,
  sessionsPerDevice: 8,
  maxWaiters: 10_000,
  waitersPerDevice: 4,
  rateLimiterEntries: 100_000,
  authAttempts: Object.freeze({ burst: 200, refill: 20, intervalMs: 1000 }),
  requests: Object.freeze({ burst: 400, refill: 200, intervalMs: 1000 }),
  sendBytes: Object.freeze({ burst: 32 * 1024 * 1024, refill: 1024 * 1024, intervalMs: 1000 }),
  prekeyUploads: Object.freeze({ burst: 10, refill: 1, intervalMs: 30_000 }),
  requestsInFlightPerConnection: 16,
  pushHighWaterBytes: 1024 * 1024,
  maxBufferedBytes: 8 * 1024 * 1024,
  pingIntervalMs: 30_000,
});

function invalid(field: string, expected: string): UsageError<'INVALID_ARGUMENT'> {
  return new UsageError('INVALID_ARGUMENT', { message: `limits.${field} must be ${expected}`, details: { field: `limits.${field}`, expected } });
}

function checkRate(field: string, v: unknown): RateLimit {
  const r = v as RateLimit;
  if (typeof r !== 'object' || r === null) throw invalid(field, '{ burst, refill, intervalMs }');
  for (const k of ['burst', 'refill', 'intervalMs'] as const) {
    if (typeof r[k] !== 'number' || !Number.isFinite(r[k]) || r[k] <= 0) throw invalid(`${field}.${k}`, 'a positive number');
  }
  if (r.burst < 1) throw invalid(`${field}.burst`, 'at least 1');
  return Object.freeze({ burst: r.burst, refill: r.refill, intervalMs: r.intervalMs });
}

/** Merges `partial` over the defaults, checking every value. Throws `UsageError` `INVALID_ARGUMENT`. */
export function resolveRelayLimits(partial: Partial<RelayLimits> | undefined): RelayLimits {
  const out: Record<string, unknown> = { ...DEFAULT_RELAY_LIMITS };
  for (const [field, value] of Object.entries(partial ?? {})) {
    if (value === undefined) continue;
    if (!(field in DEFAULT_RELAY_LIMITS)) throw invalid(field, 'a known limit');
    const def = (DEFAULT_RELAY_LIMITS as unknown as Record<string, unknown>)[field];
    if (typeof def === 'object') {
      out[field] = checkRate(field, value);
      continue;
    }
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw invalid(field, 'a positive integer');
    const max = (CODEC_MAXIMA as Partial<Record<string, number>>)[field];
    if (max !== undefined && value > max) throw invalid(field, `at most ${max}`);
    out[field] = value;
  }
  return Object.freeze(out) as unknown as RelayLimits;
}
