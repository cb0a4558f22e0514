/**
 * The transport conformance suite: every invariant of the transport contract
 * (`@deadbolt/spec`, `transport.ts`), checked against a real relay on loopback. Every
 * transport package runs it once, with a factory that starts the relay, creates the
 * transport and makes devices with real keys (the test-kit itself depends on the
 * contracts only, never on core or the relay).
 *
 * Transports reach the relay through a TCP proxy the suite puts in front of it, so that
 * cases can cut every connection (a network drop the relay survives with its state) or
 * stall the path, without the relay's cooperation. The proxy needs `node:net`, loaded
 * only when a case runs, so importing the test-kit in a browser stays possible.
 *
 * Cases wait on events and promises, never on sleeps; each wait has a deadline that fails
 * the case with what it was waiting for.
 *
 * @module
 */
import { afterEach, describe, expect, test } from 'vitest';
import {
  isDeadboltError,
  RELAY_LIMITS,
  TRANSPORT_SPECIFICATION_VERSION,
  type Address,
  type InboundFrame,
  type TransportAdapter,
  type TransportAuth,
  type TransportNotice,
  type TransportState,
} from '@deadbolt/spec';
import { expectBytesEqual, patternBytes } from './bytes.js';

/** A relay the suite can talk to (`@deadbolt/relay`'s `Relay` fits). */
export interface ConformanceRelay {
  /** `http://host:port` (HTTP carrier). */
  readonly url: string;
  /** `ws://host:port/v1/ws` (WebSocket carrier). */
  readonly wsUrl: string;
  close(): Promise<void>;
}

/** A device the relay will accept (`@deadbolt/relay/testing`'s `conformanceDevice` makes them). */
export interface ConformanceDevice {
  readonly address: Address;
  readonly auth: TransportAuth;
  /**
   * An encoded prekey upload of this device (docs/protocol.md §4.5) with fewer one-time
   * prekeys of each kind than the relay's PREKEYS_LOW threshold (10), and at least one.
   */
  readonly upload: Uint8Array;
  /**
   * An encoded device list of this device's user (docs/protocol.md §3.3), signed with its
   * account key, at `listVersion`, listing `devices` (devices of this user).
   */
  signDeviceList(listVersion: number, devices: readonly ConformanceDevice[]): Promise<Uint8Array>;
  /** A new device of this device's user, certified by the same account key (protocol §3.4). */
  linkDevice(deviceId: string): Promise<ConformanceDevice>;
}

/**
 * What a transport package supplies to run the suite.
 *
 * @example
 * ```ts
 * import WebSocket from 'ws';
 * import { conformanceDevice, conformanceRelay, restartConformanceRelay } from '@deadbolt/relay/testing';
 *
 * describeTransportConformance('websocket', {
 *   startRelay: () => conformanceRelay(),
 *   restartRelay: restartConformanceRelay,
 *   createTransport: (relay) => createWebSocketTransport({ url: relay.wsUrl, WebSocket, backoff: { initialMs: 20, maxMs: 500 } }),
 *   createDevice: conformanceDevice,
 * });
 * ```
 */
export interface TransportConformanceFactory {
  /**
   * Starts a fresh relay on loopback: empty, in development mode (first use pins an
   * account), with rate limits loose enough for a burst of a few hundred messages from
   * one sender (`conformanceRelay()` of `@deadbolt/relay/testing`).
   */
  startRelay(): Promise<ConformanceRelay>;
  /** Stops `relay` and starts a new one at the same URL (its state may be lost). */
  restartRelay(relay: ConformanceRelay): Promise<ConformanceRelay>;
  /**
   * A new transport to `relay` (use the URL for its carrier). The suite passes a relay
   * whose URLs lead through its proxy. Use a short reconnect backoff (tens of ms), and for
   * polling transports a short poll wait (about 1 s): the PREKEYS_LOW case waits for the
   * next poll.
   */
  createTransport(relay: ConformanceRelay): TransportAdapter;
  /** A new device with its own keys. */
  createDevice(userId: string, deviceId: string): Promise<ConformanceDevice>;
}

/** How long any one wait in a case may take before the case fails. */
const WAIT_MS = 20_000;
const CASE_TIMEOUT_MS = 40_000;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function describeError(e: unknown): string {
  if (isDeadboltError(e)) return `${e.name} ${e.code} (kind ${e.kind})`;
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return typeof e;
}

/** Resolves when `promise` does, or fails with `what` after the deadline. */
function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** The error `promise` rejects with (fails if it resolves). */
async function rejection(what: string, promise: Promise<unknown>): Promise<unknown> {
  try {
    await within(promise, what);
  } catch (e) {
    return e;
  }
  throw new Error(`${what}: expected a rejection, but it resolved`);
}

/** Asserts that `call()` returns a promise rejecting with a `UsageError` `CLOSED`. */
async function expectClosed(what: string, call: () => Promise<unknown>): Promise<void> {
  let result: Promise<unknown>;
  try {
    result = call();
  } catch (e) {
    throw new Error(`${what}: threw synchronously (${describeError(e)}) instead of rejecting`);
  }
  const e = await rejection(what, result);
  if (!isDeadboltError(e, 'CLOSED') || e.kind !== 'usage') throw new Error(`${what}: expected UsageError CLOSED, got ${describeError(e)}`);
}

/** Collects delivered frames (the handler resolves at once unless told otherwise). */
class Collector {
  readonly frames: InboundFrame[] = [];
  #waiters: { check: () => boolean; resolve: () => void }[] = [];

  readonly handler = (frame: InboundFrame): void => {
    this.frames.push(frame);
    this.changed();
  };

  changed(): void {
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.check()) return true;
      w.resolve();
      return false;
    });
  }

  until(check: () => boolean, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    return within(
      new Promise<void>((resolve) => this.#waiters.push({ check, resolve })),
      `${what} (${this.frames.length} frames so far: ${this.texts().slice(0, 5).join(', ')}${this.frames.length > 5 ? ', …' : ''})`,
    );
  }

  texts(): string[] {
    return this.frames.map((f) => text(f.bytes));
  }

  unique(): Set<string> {
    return new Set(this.texts());
  }

  has(t: string): boolean {
    return this.texts().includes(t);
  }
}

/**
 * Shows that the refused sends before it stored nothing for `to`: a marker sent from `from`
 * afterwards arrives at `to` (collected by `got`), and it is the only frame there.
 */
async function expectOnlyMarker(from: TransportAdapter, to: Address, got: Collector): Promise<void> {
  await from.send([{ to, frame: utf8('marker') }]);
  await got.until(() => got.has('marker'), 'the marker');
  expect(got.texts()).toEqual(['marker']);
}

/** Records state changes and waits for one. */
class StateLog {
  readonly states: TransportState[] = [];
  #waiters: { state: TransportState; after: number; resolve: () => void }[] = [];

  constructor(transport: TransportAdapter) {
    transport.onStateChange((s) => {
      this.states.push(s);
      this.#waiters = this.#waiters.filter((w) => {
        if (w.state !== s || this.states.length <= w.after) return true;
        w.resolve();
        return false;
      });
    });
  }

  /** Resolves at the first `state` recorded from now on. */
  next(state: TransportState, what: string): Promise<void> {
    const after = this.states.length;
    return within(new Promise<void>((resolve) => this.#waiters.push({ state, after, resolve })), what);
  }
}

/**
 * Watches `transports` (by name) from now on, before a cut or a restart. The returned
 * function waits until each is connected again, and checks that each went `reconnecting`
 * then `connected` (never `idle`, never a fresh `connecting`).
 */
function watchReconnects(transports: Readonly<Record<string, TransportAdapter>>): () => Promise<void> {
  const watched = Object.entries(transports).map(([who, t]) => {
    const log = new StateLog(t);
    return { who, log, back: log.next('connected', `${who} to be connected again`) };
  });
  return async () => {
    await Promise.all(watched.map((w) => w.back));
    for (const w of watched) expect(w.log.states.slice(0, 2), `the states of ${w.who}`).toEqual(['reconnecting', 'connected']);
  };
}

/** A TCP proxy in front of the relay that can cut every connection, or stall the path. */
interface Proxy {
  readonly relay: ConformanceRelay;
  /** Cuts every open connection, both ways (the relay keeps its state). */
  dropAll(): void;
  /** Stops forwarding device → relay (nothing is lost: it is held until `resume`). */
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

async function startProxy(target: ConformanceRelay): Promise<Proxy> {
  const net = await import('node:net');
  const to = new URL(target.url);
  const host = to.hostname.replace(/^\[|\]$/g, '');
  const port = Number(to.port);
  type Pair = { client: import('node:net').Socket; upstream: import('node:net').Socket };
  const pairs = new Set<Pair>();
  let paused = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(port, host);
    const pair: Pair = { client, upstream };
    pairs.add(pair);
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    upstream.pipe(client);
    if (paused) client.pause();
    else client.pipe(upstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const listening = (server.address() as import('node:net').AddressInfo).port;
  const wsPath = new URL(target.wsUrl).pathname;
  return {
    relay: { url: `http://127.0.0.1:${listening}`, wsUrl: `ws://127.0.0.1:${listening}${wsPath}`, close: () => target.close() },
    dropAll() {
      for (const p of [...pairs]) {
        p.client.destroy();
        p.upstream.destroy();
      }
    },
    pause() {
      paused = true;
      for (const p of pairs) {
        p.client.unpipe(p.upstream);
        p.client.pause();
      }
    },
    resume() {
      paused = false;
      for (const p of pairs) p.client.pipe(p.upstream);
    },
    async close() {
      for (const p of [...pairs]) {
        p.client.destroy();
        p.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------

/**
 * Registers the transport conformance suite for one adapter: a vitest `describe` block
 * with one test per checked behaviour, grouped by the numbered invariants of `transport.ts`
 * in `@deadbolt/spec`. Beyond the obvious, it checks what naive transports get wrong:
 *
 * - connect resolving before AUTH_OK, a refused signature leaving the state anywhere but
 *   `idle`, `close()` during `connect`;
 * - three devices where each frame reaches only its addressee, with the relay-authenticated
 *   sender;
 * - a burst of 300 frames (200 concurrent sends and one 100-message send): more than the
 *   relay keeps in flight unacknowledged, so a transport that never acknowledges stalls;
 * - acknowledgement only after the handler resolved: a throwing handler, a handler still
 *   running at `close()`, and no handler at all each get the frame again on the next
 *   connection;
 * - every connection cut (by the proxy) while sends are in flight and while the handler is
 *   busy: every send resolves, every frame arrives; a relay restart: both ends come back
 *   on their own;
 * - oversize frames refused before anything is sent, a frame of exactly `maxFrameSize`,
 *   one `send` larger than a relay frame;
 * - `subarray` inputs sending only their window, inputs copied, fresh delivered arrays;
 * - `close()` idempotent, rejecting pending sends and every later call with `CLOSED`;
 * - state changes in order; PREKEYS_LOW notices; prekey publishing, bundle fetching and
 *   `UNKNOWN_USER`;
 * - device lists: publishing (replays accepted, rollbacks and forks refused), the list in
 *   `fetchBundles`, stale `listVersion`s rejecting `send` and `sendShared` with
 *   `DEVICE_MISMATCH` and storing nothing, a revoked device's transport going idle and
 *   its `connect` refused with `REVOKED`;
 * - `sendShared` delivering one frame to each recipient once, all or none; provisioning
 *   without `connect`, one answer per channel, taken once.
 *
 * Call it once per transport package, at the top level of `test/conformance.test.ts`.
 *
 * @param name - the adapter's name, shown in the test report
 * @param factory - how to start relays and create transports and devices
 *
 * @example
 * ```ts
 * // packages/transport-http-polling/test/conformance.test.ts
 * import { describeTransportConformance } from '@deadbolt/test-kit';
 * import { conformanceDevice, conformanceRelay, restartConformanceRelay } from '@deadbolt/relay/testing';
 * import { createHttpPollingTransport } from '../src/index.js';
 *
 * describeTransportConformance('http-polling', {
 *   startRelay: () => conformanceRelay(),
 *   restartRelay: restartConformanceRelay,
 *   createTransport: (relay) => createHttpPollingTransport({ url: relay.url, pollWaitMs: 1000, backoff: { initialMs: 20, maxMs: 500 } }),
 *   createDevice: conformanceDevice,
 * });
 * ```
 */
export function describeTransportConformance(name: string, factory: TransportConformanceFactory): void {
  describe(`transport conformance (${TRANSPORT_SPECIFICATION_VERSION}): ${name}`, () => {
    let relay: ConformanceRelay | undefined;
    let proxy: Proxy | undefined;
    const opened: TransportAdapter[] = [];

    afterEach(async () => {
      const errors: unknown[] = [];
      for (const t of opened.splice(0)) await t.close().catch((e: unknown) => errors.push(e));
      await proxy?.close().catch((e: unknown) => errors.push(e));
      await relay?.close().catch((e: unknown) => errors.push(e));
      proxy = undefined;
      relay = undefined;
      if (errors.length > 0) throw new AggregateError(errors, 'closing the transports, proxy or relay failed');
    });

    /** The relay of this case (through the proxy), started on first use. */
    async function endpoint(): Promise<Proxy> {
      if (proxy === undefined) {
        relay = await factory.startRelay();
        proxy = await startProxy(relay);
      }
      return proxy;
    }

    /** A new transport for this case (closed after it). */
    async function transport(): Promise<TransportAdapter> {
      const t = factory.createTransport((await endpoint()).relay);
      opened.push(t);
      return t;
    }

    /** A transport connected as `device`, with `collector`'s handler registered first. */
    async function connected(device: ConformanceDevice, collector?: Collector): Promise<TransportAdapter> {
      const t = await transport();
      if (collector) t.onFrame(collector.handler);
      await within(t.connect(device.auth), `${device.address.userId}/${device.address.deviceId} to connect`);
      return t;
    }

    const devices = (...names: string[]): Promise<ConformanceDevice[]> =>
      Promise.all(
        names.map((n) => {
          const [user, device = 'd1'] = n.split('/');
          return factory.createDevice(user!, device);
        }),
      );

    /** Alice and Bob (devices of two users), both connected; what reaches Bob is collected in `got`. */
    async function aliceAndBob() {
      const [a, b] = await devices('alice', 'bob');
      const got = new Collector();
      const ta = await connected(a!);
      const tb = await connected(b!, got);
      return { a: a!, b: b!, ta, tb, got };
    }

    /** Alice with a laptop of her account, both connected with their prekeys published, and Bob connected. */
    async function aliceLaptopAndBob() {
      const [a, b] = await devices('alice', 'bob');
      const laptop = await a!.linkDevice('laptop');
      const ta = await connected(a!);
      const tl = await connected(laptop);
      const tb = await connected(b!);
      await ta.publishPrekeys(a!.upload);
      await tl.publishPrekeys(laptop.upload);
      return { a: a!, b: b!, laptop, ta, tl, tb };
    }

    /** Sends `frames` to `to` from `from`, one send each, all at once. */
    const sendEach = (from: TransportAdapter, to: Address, frames: string[]): Promise<unknown> =>
      Promise.all(frames.map((f) => from.send([{ to, frame: utf8(f) }])));

    const it = (title: string, run: () => Promise<void>): void => {
      test(title, { timeout: CASE_TIMEOUT_MS }, run);
    };

    describe('the adapter interface', () => {
      it('declares its contract version and a frame limit, and starts idle', async () => {
        const t = await transport();
        expect(t.specificationVersion).toBe(TRANSPORT_SPECIFICATION_VERSION);
        expect(Number.isInteger(t.maxFrameSize)).toBe(true);
        expect(t.maxFrameSize).toBeGreaterThanOrEqual(256 * 1024);
        expect(t.maxFrameSize).toBeLessThanOrEqual(RELAY_LIMITS.maxMessage);
        expect(t.state).toBe('idle');
        for (const off of [t.onFrame(() => {}), t.onStateChange(() => {}), t.onNotice(() => {})]) expect(typeof off).toBe('function');
      });
    });

    describe('1. connect', () => {
      it('resolves once the relay accepted the device; states connecting → connected; connect again is a no-op', async () => {
        const [a] = await devices('alice');
        const t = await transport();
        const log = new StateLog(t);
        const connecting = t.connect(a!.auth);
        expect(t.state).toBe('connecting');
        await within(connecting, 'connect');
        expect(t.state).toBe('connected');
        await within(t.connect(a!.auth), 'a second connect');
        expect(log.states).toEqual(['connecting', 'connected']);
        // Accepted means usable at once: the key directory answers.
        await t.publishPrekeys(a!.upload);
      });

      it('a forged signature is refused: connect rejects with a TransportError, the state returns to idle, and a genuine connect works after', async () => {
        const [a] = await devices('alice');
        const t = await transport();
        const log = new StateLog(t);
        const forged: TransportAuth = {
          certificate: a!.auth.certificate,
          sign: async (relayId, challenge) => {
            const sig = await a!.auth.sign(relayId, challenge);
            const flipped = sig.slice();
            flipped[0] = (flipped[0] as number) ^ 1;
            return flipped;
          },
        };
        const e = await rejection('connect with a forged signature', t.connect(forged));
        expect(isDeadboltError(e) && e.kind, describeError(e)).toBe('transport');
        expect(isDeadboltError(e, 'RELAY_REJECTED') ? e.details.code : describeError(e)).toMatch(/^(UNAUTHENTICATED|BAD_SIGNATURE)$/);
        expect(t.state).toBe('idle');
        expect(log.states).toEqual(['connecting', 'idle']);
        await within(t.connect(a!.auth), 'the genuine connect');
        expect(t.state).toBe('connected');
      });

      it('an unreachable relay: connect rejects with TRANSPORT_FAILED and the state returns to idle', async () => {
        const [a] = await devices('alice');
        const t = await transport();
        await proxy!.close(); // nothing listens there any more
        proxy = undefined;
        const e = await rejection('connect to nowhere', t.connect(a!.auth));
        expect(isDeadboltError(e, 'TRANSPORT_FAILED'), describeError(e)).toBe(true);
        expect(t.state).toBe('idle');
      });

      it('close() while connecting: connect rejects with CLOSED', async () => {
        const [a] = await devices('alice');
        const t = await transport();
        const connecting = t.connect(a!.auth);
        await t.close();
        await expectClosed('the interrupted connect', () => connecting);
        expect(t.state).toBe('closed');
      });
    });

    describe('2. delivery: at least once, acknowledged after the handler', () => {
      it('a burst of 300 frames (200 concurrent sends, one 100-message send) all arrive, from the authenticated sender', async () => {
        const { a, b, ta, got } = await aliceAndBob();
        const before = Date.now();
        await within(
          Promise.all([
            sendEach(ta, b.address, Array.from({ length: 200 }, (_, i) => `one-${i}`)),
            ta.send(Array.from({ length: 100 }, (_, i) => ({ to: b.address, frame: utf8(`batch-${i}`) }))),
          ]),
          'the sends to resolve',
        );
        // More than the relay keeps in flight unacknowledged (100): only a transport that
        // acknowledges gets them all.
        await got.until(() => got.unique().size === 300, '300 distinct frames');
        for (const f of got.frames) {
          expect(f.from).toEqual(a.address);
          expect(typeof f.id).toBe('string');
          expect(f.receivedAt).toBeGreaterThanOrEqual(before - 60_000);
          expect(f.receivedAt).toBeLessThanOrEqual(Date.now() + 60_000);
        }
      });

      it('a handler that throws leaves the frame unacknowledged: it comes again', async () => {
        const [a, b] = await devices('alice', 'bob');
        const ta = await connected(a!);
        const first = await transport();
        let calls = 0;
        let failedOnce!: () => void;
        const failed = new Promise<void>((resolve) => (failedOnce = resolve));
        const again = new Collector();
        // Fails the first time, succeeds after: a transport may deliver it again on this
        // connection (a poll) or on the next one.
        const handler = (frame: InboundFrame): void => {
          if (++calls === 1) {
            failedOnce();
            throw new Error('the handler failed (on purpose)');
          }
          again.handler(frame);
        };
        first.onFrame(handler);
        await within(first.connect(b!.auth), 'connect');
        await ta.send([{ to: b!.address, frame: utf8('retry me') }]);
        await within(failed, 'the failing handler call');
        await first.close();
        const second = await transport();
        second.onFrame(handler);
        await within(second.connect(b!.auth), 'reconnect');
        await again.until(() => again.has('retry me'), 'the frame again');
      });

      it('a frame whose handler is still running at close() is not acknowledged: it comes again', async () => {
        const [a, b] = await devices('alice', 'bob');
        const ta = await connected(a!);
        const first = await transport();
        let started!: () => void;
        const running = new Promise<void>((resolve) => (started = resolve));
        first.onFrame(() => {
          started();
          return new Promise<void>(() => {}); // never resolves
        });
        await within(first.connect(b!.auth), 'connect');
        await ta.send([{ to: b!.address, frame: utf8('slow') }]);
        await within(running, 'the handler to start');
        await first.close();
        const got = new Collector();
        await connected(b!, got);
        await got.until(() => got.has('slow'), 'the frame again');
      });

      it('frames arriving with no handler registered are not acknowledged: they come again', async () => {
        const [a, b] = await devices('alice', 'bob');
        const ta = await connected(a!);
        const silent = await connected(b!);
        await ta.send([{ to: b!.address, frame: utf8('kept') }]);
        // A round trip of the silent transport after the frame was stored: a relay that
        // pushes (WebSocket) has written the DELIVER to it before this answer.
        await silent.send([{ to: a!.address, frame: utf8('barrier') }]);
        await silent.close();
        const got = new Collector();
        await connected(b!, got);
        await got.until(() => got.has('kept'), 'the kept frame');
      });
    });

    describe('3. no frame lost across reconnects', () => {
      it('every connection cut while sends are in flight: every send resolves, every frame arrives, the states say reconnecting → connected', async () => {
        const { b, ta, tb, got } = await aliceAndBob();
        const reconnected = watchReconnects({ alice: ta, bob: tb });
        const names = Array.from({ length: 40 }, (_, i) => `cut-${i}`);
        const sending = sendEach(ta, b.address, names);
        proxy!.dropAll();
        await within(sending, 'the sends to resolve across the cut');
        await reconnected();
        await got.until(() => names.every((n) => got.has(n)), 'all 40 frames');
        // And later sends work as before.
        await ta.send([{ to: b.address, frame: utf8('after the cut') }]);
        await got.until(() => got.has('after the cut'), 'the frame after the cut');
      });

      it('frames delivered but not yet handled when the connection is cut are delivered again', async () => {
        const [a, b] = await devices('alice', 'bob');
        const got = new Collector();
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        let first!: () => void;
        const busy = new Promise<void>((resolve) => (first = resolve));
        const tb = await transport();
        tb.onFrame(async (frame) => {
          first();
          await gate; // the first frame holds the handler until after the cut
          got.handler(frame);
        });
        await within(tb.connect(b!.auth), 'bob to connect');
        const ta = await connected(a!);
        const names = Array.from({ length: 20 }, (_, i) => `held-${i}`);
        await sendEach(ta, b!.address, names);
        await within(busy, 'the handler to start');
        proxy!.dropAll();
        release();
        await got.until(() => names.every((n) => got.has(n)), 'all 20 frames');
      });

      it('after the relay restarts (losing its state), both ends reconnect on their own and sending works again', async () => {
        const { b, ta, tb, got } = await aliceAndBob();
        const reconnected = watchReconnects({ alice: ta, bob: tb });
        relay = await factory.restartRelay(relay!);
        await reconnected();
        // Bob registered again with the new relay before he reported connected.
        await ta.send([{ to: b.address, frame: utf8('after restart') }]);
        await got.until(() => got.has('after restart'), 'delivery after the restart');
      });
    });

    describe('4. bounds', () => {
      it('a frame over maxFrameSize rejects with FRAME_TOO_LARGE before anything of the send goes out', async () => {
        const { b, ta, got } = await aliceAndBob();
        const max = ta.maxFrameSize;
        const e = await rejection(
          'send with an oversize frame',
          ta.send([
            { to: b.address, frame: utf8('ok but refused with its batch') },
            { to: b.address, frame: new Uint8Array(max + 1) },
          ]),
        );
        expect(isDeadboltError(e, 'FRAME_TOO_LARGE') ? e.details : describeError(e)).toEqual({ size: max + 1, max });
        await expectOnlyMarker(ta, b.address, got);
      });

      it('a frame of exactly maxFrameSize, and one send larger than a relay frame, are delivered intact', async () => {
        const { b, ta, got } = await aliceAndBob();
        const max = ta.maxFrameSize;
        const biggest = patternBytes(max, 1);
        await ta.send([{ to: b.address, frame: biggest }]);
        await got.until(() => got.frames.some((f) => f.bytes.byteLength === max), 'the largest frame');
        expectBytesEqual(got.frames.find((f) => f.bytes.byteLength === max)?.bytes, biggest, 'the largest frame');
        // Together more than one relay frame (2 MiB) holds.
        const count = Math.ceil((RELAY_LIMITS.maxFrame + 1) / max) + 1;
        const many = Array.from({ length: count }, (_, i) => patternBytes(max, 100 + i));
        await within(ta.send(many.map((frame) => ({ to: b.address, frame }))), `a send of ${count} maximal frames`);
        await got.until(() => got.frames.length >= count + 1, `${count} more frames`);
        for (let i = 0; i < count; i++) {
          const seed = many[i]!;
          const match = got.frames.find((f) => f.bytes.byteLength === max && f.bytes[0] === seed[0] && f.bytes[1] === seed[1] && f.bytes[max - 1] === seed[max - 1]);
          expectBytesEqual(match?.bytes, seed, `frame ${i} of the large send`);
        }
      });
    });

    describe('5. copies', () => {
      it('only the bytes a view covers are sent; changing the input after send() changes nothing; delivered frames are fresh arrays', async () => {
        const { b, ta, got } = await aliceAndBob();
        const whole = patternBytes(4096, 7);
        const view = whole.subarray(1000, 3000);
        const expected = view.slice();
        const sending = ta.send([{ to: b.address, frame: view }]);
        whole.fill(0);
        await within(sending, 'the send');
        await got.until(() => got.frames.length >= 1, 'the view');
        const bytes = got.frames[0]!.bytes;
        expectBytesEqual(bytes, expected, 'the delivered view');
        expect(Object.getPrototypeOf(bytes)).toBe(Uint8Array.prototype);
        expect(bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength, 'a compact array of its own').toBe(true);
      });
    });

    describe('6. addressing', () => {
      it('each frame reaches only the device it was sent to, from the authenticated sender (three devices)', async () => {
        // Devices of different users: the factory's devices each have their own account.
        const [a, phone, laptop] = await devices('alice', 'bob', 'carol');
        const toAlice = new Collector();
        const toPhone = new Collector();
        const toLaptop = new Collector();
        const ta = await connected(a!, toAlice);
        const tp = await connected(phone!, toPhone);
        await connected(laptop!, toLaptop);
        await ta.send([
          { to: phone!.address, frame: utf8('for the phone') },
          { to: laptop!.address, frame: utf8('for the laptop') },
        ]);
        await tp.send([{ to: laptop!.address, frame: utf8('phone to laptop') }]);
        // Markers sent after: by the time each arrives, a misdelivered frame would have too.
        await ta.send([
          { to: phone!.address, frame: utf8('marker') },
          { to: laptop!.address, frame: utf8('marker') },
        ]);
        await tp.send([{ to: a!.address, frame: utf8('marker') }]);
        await toPhone.until(() => toPhone.has('marker') && toPhone.has('for the phone'), "the phone's frames");
        await toLaptop.until(() => toLaptop.has('marker') && toLaptop.has('for the laptop') && toLaptop.has('phone to laptop'), "the laptop's frames");
        await toAlice.until(() => toAlice.has('marker'), "alice's marker");
        expect([...toPhone.unique()].sort()).toEqual(['for the phone', 'marker']);
        expect([...toLaptop.unique()].sort()).toEqual(['for the laptop', 'marker', 'phone to laptop']);
        expect([...toAlice.unique()]).toEqual(['marker']);
        expect(toLaptop.frames.find((f) => text(f.bytes) === 'phone to laptop')!.from).toEqual(phone!.address);
        expect(toPhone.frames.find((f) => text(f.bytes) === 'for the phone')!.from).toEqual(a!.address);
      });
    });

    describe('7. close', () => {
      it('close() is idempotent; afterwards every operation rejects with CLOSED and the state is closed', async () => {
        const [a, b] = await devices('alice', 'bob');
        const t = await connected(a!);
        const log = new StateLog(t);
        await Promise.all([t.close(), t.close()]);
        await t.close();
        expect(t.state).toBe('closed');
        expect(log.states).toEqual(['closed']);
        await expectClosed('send', () => t.send([{ to: b!.address, frame: utf8('x') }]));
        await expectClosed('connect', () => t.connect(a!.auth));
        await expectClosed('fetchBundles', () => t.fetchBundles('bob'));
        await expectClosed('publishPrekeys', () => t.publishPrekeys(a!.upload));
        await expectClosed('sendShared', () => t.sendShared([{ to: b!.address }], utf8('x')));
        await expectClosed('publishDeviceList', () => t.publishDeviceList(utf8('a list')));
        await expectClosed('provisionPut', () => t.provisionPut(new Uint8Array(16), utf8('x')));
        await expectClosed('provisionTake', () => t.provisionTake(new Uint8Array(16), 0));
        // Subscribing after close neither throws nor fires.
        for (const off of [t.onFrame(() => {}), t.onStateChange(() => {}), t.onNotice(() => {})]) off();
      });

      it('requests still waiting for the relay reject with CLOSED when the transport closes', async () => {
        const [a, b] = await devices('alice', 'bob');
        const ta = await connected(a!);
        await connected(b!);
        proxy!.pause(); // nothing reaches the relay any more
        const waiting = [
          ta.send([{ to: b!.address, frame: utf8('stuck') }]),
          ta.fetchBundles('bob'),
          ta.publishPrekeys(a!.upload),
          ta.sendShared([{ to: b!.address }], utf8('stuck')),
          ta.publishDeviceList(await a!.signDeviceList(1, [a!])),
          ta.provisionTake(new Uint8Array(16), 30_000),
        ];
        const settled = Promise.allSettled(waiting);
        await ta.close();
        for (const [i, p] of waiting.entries()) await expectClosed(`pending request ${i}`, () => p);
        await settled;
        proxy!.resume();
      });
    });

    describe('8. state changes', () => {
      it('are reported in order to every listener until it unsubscribes', async () => {
        const [a] = await devices('alice');
        const t = await transport();
        const first: TransportState[] = [];
        const second: TransportState[] = [];
        const offFirst = t.onStateChange((s) => first.push(s));
        t.onStateChange((s) => second.push(s));
        await within(t.connect(a!.auth), 'connect');
        offFirst();
        const back = new StateLog(t).next('connected', 'connected again');
        proxy!.dropAll();
        await back;
        await t.close();
        expect(first).toEqual(['connecting', 'connected']);
        expect(second).toEqual(['connecting', 'connected', 'reconnecting', 'connected', 'closed']);
      });
    });

    describe('the key directory and notices', () => {
      it('publishPrekeys, fetchBundles (one bundle per device), UNKNOWN_USER for an unknown user or device', async () => {
        const [a, b] = await devices('alice', 'bob');
        const ta = await connected(a!);
        const tb = await connected(b!);
        await ta.publishPrekeys(a!.upload);
        await ta.publishPrekeys(a!.upload.subarray(0)); // idempotent
        const { bundles, deviceList } = await tb.fetchBundles(a!.address.userId);
        expect(bundles).toHaveLength(1);
        expect(bundles[0]).toBeInstanceOf(Uint8Array);
        expect(bundles[0]!.byteLength).toBeGreaterThan(1000); // certificate, X25519 and ML-KEM keys
        expect(deviceList).toBeUndefined(); // Alice has published no device list
        const unknown = await rejection('fetchBundles of an unknown user', tb.fetchBundles('nobody-here'));
        expect(isDeadboltError(unknown, 'UNKNOWN_USER') ? unknown.details : describeError(unknown)).toEqual({ userId: 'nobody-here' });
        const noDevice = await rejection('send to an unregistered device', tb.send([{ to: { ...a!.address, deviceId: 'no-such-device' as Address['deviceId'] }, frame: utf8('x') }]));
        expect(isDeadboltError(noDevice, 'UNKNOWN_USER') ? noDevice.details : describeError(noDevice)).toEqual({ userId: a!.address.userId });
      });

      it('fetchBundles with skip: no bundle of a skipped device (a known user is not UNKNOWN_USER); an invalid skip is INVALID_ARGUMENT', async () => {
        const [a, b] = await devices('alice', 'bob');
        const ta = await connected(a!);
        const tb = await connected(b!);
        await ta.publishPrekeys(a!.upload);
        const skipped = await tb.fetchBundles(a!.address.userId, { skip: [a!.address.deviceId] });
        expect(skipped).toEqual({ bundles: [], deviceList: undefined });
        expect((await tb.fetchBundles(a!.address.userId, { skip: ['another-device'] })).bundles).toHaveLength(1);
        for (const skip of [['not a device id'], 'phone', [7]] as unknown[]) {
          const bad = await rejection(`fetchBundles with skip ${JSON.stringify(skip)}`, tb.fetchBundles(a!.address.userId, { skip } as never));
          expect(isDeadboltError(bad, 'INVALID_ARGUMENT'), describeError(bad)).toBe(true);
        }
      });

      it('PREKEYS_LOW reaches onNotice when a fetch leaves the device few one-time prekeys', async () => {
        const [a, b] = await devices('alice', 'bob');
        const ta = await connected(a!);
        const tb = await connected(b!, new Collector());
        const notices: TransportNotice[] = [];
        const noticed = new Promise<void>((resolve) =>
          tb.onNotice((n) => {
            notices.push(n);
            resolve();
          }),
        );
        await tb.publishPrekeys(b!.upload);
        await ta.fetchBundles(b!.address.userId);
        await within(noticed, 'the PREKEYS_LOW notice');
        const n = notices[0]!;
        expect(n.type).toBe('prekeys-low');
        expect(Number.isInteger(n.oneTimePrekeys) && Number.isInteger(n.pqPrekeys)).toBe(true);
        expect(Math.min(n.oneTimePrekeys, n.pqPrekeys)).toBeLessThan(10);
      });
    });

    describe('device lists (docs/protocol.md §3.3)', () => {
      it('publishDeviceList: fetchBundles returns the list (none before); the same list again is accepted; other bytes at its version and lower versions are RELAY_REJECTED FORBIDDEN', async () => {
        const { a, laptop, ta, tl, tb } = await aliceLaptopAndBob();
        const before = await tb.fetchBundles('alice');
        expect([before.bundles.length, before.deviceList]).toEqual([2, undefined]);
        const v1 = await a.signDeviceList(1, [a, laptop]);
        const input = new Uint8Array(v1.byteLength + 8);
        input.set(v1, 4);
        await ta.publishDeviceList(input.subarray(4, 4 + v1.byteLength));
        input.fill(0); // the transport sent its own copy
        await tl.publishDeviceList(v1); // any device of the user; the same list again changes nothing
        const after = await tb.fetchBundles('alice');
        expect(after.bundles).toHaveLength(2);
        expectBytesEqual(after.deviceList, v1, 'the published list');
        expect(after.deviceList!.byteOffset === 0 && after.deviceList!.buffer.byteLength === v1.byteLength, 'a compact array of its own').toBe(true);
        const forbidden = async (what: string, list: Uint8Array): Promise<void> => {
          const e = await rejection(what, ta.publishDeviceList(list));
          expect(isDeadboltError(e, 'RELAY_REJECTED') ? e.details : describeError(e), what).toEqual({ code: 'FORBIDDEN' });
        };
        await forbidden('other bytes at version 1', await a.signDeviceList(1, [a]));
        await ta.publishDeviceList(await a.signDeviceList(2, [a, laptop]));
        await forbidden('version 1 after version 2', v1);
        // Bob cannot publish Alice's list.
        const notHis = await rejection("Bob publishing Alice's list", tb.publishDeviceList(await a.signDeviceList(3, [a])));
        expect(isDeadboltError(notHis, 'RELAY_REJECTED') ? notHis.details : describeError(notHis)).toEqual({ code: 'FORBIDDEN' });
        const invalid = await rejection('an empty list', ta.publishDeviceList(new Uint8Array(0)));
        expect(isDeadboltError(invalid, 'INVALID_ARGUMENT'), describeError(invalid)).toBe(true);
      });

      it('a stale listVersion rejects send and sendShared with DEVICE_MISMATCH (users and current versions), not retried, nothing stored; the current version is delivered', async () => {
        const [a, b, c] = await devices('alice', 'bob', 'carol');
        const laptop = await a!.linkDevice('laptop');
        const toAlice = new Collector();
        const toLaptop = new Collector();
        const toCarol = new Collector();
        const ta = await connected(a!, toAlice);
        await connected(laptop, toLaptop);
        await connected(c!, toCarol);
        const tb = await connected(b!);
        await ta.publishDeviceList(await a!.signDeviceList(3, [a!, laptop]));

        const stale = await rejection('a send naming list version 2', tb.send([{ to: laptop.address, listVersion: 2, frame: utf8('stale') }]));
        expect(isDeadboltError(stale, 'DEVICE_MISMATCH') ? [stale.kind, stale.details] : describeError(stale)).toEqual(['transport', { users: [{ userId: 'alice', listVersion: 3 }] }]);
        const none = await rejection('a send naming no list', tb.send([{ to: a!.address, frame: utf8('stale') }]));
        expect(isDeadboltError(none, 'DEVICE_MISMATCH') ? none.details : describeError(none)).toEqual({ users: [{ userId: 'alice', listVersion: 3 }] });
        const shared = await rejection(
          'a shared send naming version 2 for alice and 1 for carol',
          tb.sendShared([{ to: a!.address, listVersion: 2 }, { to: laptop.address, listVersion: 2 }, { to: c!.address, listVersion: 1 }], utf8('stale shared')),
        );
        expect(isDeadboltError(shared, 'DEVICE_MISMATCH') ? shared.details : describeError(shared)).toEqual({
          users: [
            { userId: 'alice', listVersion: 3 },
            { userId: 'carol', listVersion: 0 },
          ],
        });

        await tb.send([{ to: laptop.address, listVersion: 3, frame: utf8('current') }]);
        await tb.sendShared([{ to: a!.address, listVersion: 3 }, { to: laptop.address, listVersion: 3 }, { to: c!.address }], utf8('shared'));
        await toLaptop.until(() => toLaptop.has('current') && toLaptop.has('shared'), "the laptop's frames");
        await toAlice.until(() => toAlice.has('shared'), "alice's shared frame");
        await toCarol.until(() => toCarol.has('shared'), "carol's shared frame");
        // The refused sends stored nothing (they were sent before these, and are not here).
        expect([...toLaptop.unique()].sort()).toEqual(['current', 'shared']);
        expect([...toAlice.unique()]).toEqual(['shared']);
        expect([...toCarol.unique()]).toEqual(['shared']);
        for (const got of [toAlice, toLaptop, toCarol]) expect(got.frames.find((f) => text(f.bytes) === 'shared')!.from).toEqual(b!.address);
      });

      it('a device the list leaves out is revoked: its transport stops reconnecting and goes idle; connect rejects with RELAY_REJECTED REVOKED; bundles come only from listed devices', async () => {
        const { a, laptop, ta, tl, tb } = await aliceLaptopAndBob();
        const log = new StateLog(tl);
        const idle = log.next('idle', 'the revoked laptop to go idle');
        await ta.publishDeviceList(await a.signDeviceList(1, [a]));
        await idle;
        expect(tl.state).toBe('idle');
        expect(log.states.at(-1)).toBe('idle');
        const again = await rejection('connect of the revoked laptop', tl.connect(laptop.auth));
        expect(isDeadboltError(again, 'RELAY_REJECTED') ? [again.kind, again.details] : describeError(again)).toEqual(['transport', { code: 'REVOKED' }]);
        expect(tl.state).toBe('idle');
        const fresh = await transport();
        const refused = await rejection('connect of the revoked laptop on a new transport', fresh.connect(laptop.auth));
        expect(isDeadboltError(refused, 'RELAY_REJECTED') ? refused.details : describeError(refused)).toEqual({ code: 'REVOKED' });
        expect(fresh.state).toBe('idle');
        const entry = await tb.fetchBundles('alice');
        expect(entry.bundles).toHaveLength(1);
        expect(entry.deviceList).toBeInstanceOf(Uint8Array);
        expect(ta.state).toBe('connected');
      });
    });

    describe('shared sends', () => {
      it('sendShared stores one frame for every recipient: each gets it once, from the authenticated sender; only the viewed bytes are sent; a frame of exactly maxFrameSize arrives intact', async () => {
        const [a, b, c] = await devices('alice', 'bob', 'carol');
        const bobPhone = await b!.linkDevice('phone');
        const toBob = new Collector();
        const toPhone = new Collector();
        const toCarol = new Collector();
        const ta = await connected(a!);
        await connected(b!, toBob);
        await connected(bobPhone, toPhone);
        await connected(c!, toCarol);
        const whole = patternBytes(3000, 11);
        const view = whole.subarray(500, 2500);
        const expected = view.slice();
        const sending = ta.sendShared([{ to: b!.address }, { to: bobPhone.address }, { to: c!.address }], view);
        whole.fill(0);
        await within(sending, 'the shared send');
        const biggest = patternBytes(ta.maxFrameSize, 12);
        await ta.sendShared([{ to: b!.address }, { to: c!.address }], biggest);
        await ta.send([{ to: bobPhone.address, frame: utf8('marker') }]);
        await toBob.until(() => toBob.frames.length >= 2, "bob's two frames");
        await toCarol.until(() => toCarol.frames.length >= 2, "carol's two frames");
        await toPhone.until(() => toPhone.has('marker'), "the phone's marker");
        for (const [got, n] of [[toBob, 2], [toCarol, 2], [toPhone, 2]] as const) {
          expect(new Set(got.frames.map((f) => f.id)).size, 'distinct deliveries').toBeGreaterThanOrEqual(n);
          expectBytesEqual(got.frames.find((f) => f.bytes.byteLength === 2000)?.bytes, expected, 'the shared view');
          expect(got.frames.every((f) => f.from.userId === a!.address.userId && f.from.deviceId === a!.address.deviceId)).toBe(true);
        }
        expectBytesEqual(toBob.frames.find((f) => f.bytes.byteLength === ta.maxFrameSize)?.bytes, biggest, 'the largest shared frame to bob');
        expectBytesEqual(toCarol.frames.find((f) => f.bytes.byteLength === ta.maxFrameSize)?.bytes, biggest, 'the largest shared frame to carol');
        expect(toPhone.frames.some((f) => f.bytes.byteLength === ta.maxFrameSize)).toBe(false);
      });

      it('sendShared: an oversize frame is FRAME_TOO_LARGE and an unregistered device UNKNOWN_USER, and nothing is stored for anyone', async () => {
        const { b, ta, got } = await aliceAndBob();
        const max = ta.maxFrameSize;
        const big = await rejection('a shared send over maxFrameSize', ta.sendShared([{ to: b.address }], new Uint8Array(max + 1)));
        expect(isDeadboltError(big, 'FRAME_TOO_LARGE') ? big.details : describeError(big)).toEqual({ size: max + 1, max });
        const ghost = await rejection('a shared send naming an unregistered device', ta.sendShared([{ to: b.address }, { to: { ...b.address, deviceId: 'ghost' as Address['deviceId'] } }], utf8('refused')));
        expect(isDeadboltError(ghost, 'UNKNOWN_USER'), describeError(ghost)).toBe(true);
        const empty = await rejection('a shared send to nobody', ta.sendShared([], utf8('x')));
        expect(isDeadboltError(empty, 'INVALID_ARGUMENT'), describeError(empty)).toBe(true);
        await expectOnlyMarker(ta, b.address, got);
      });
    });

    describe('provisioning (docs/protocol.md §3.4)', () => {
      it('provisionTake needs no connect: it gets what provisionPut leaves on its channel, once; nothing within the wait is undefined', async () => {
        const [a] = await devices('alice');
        const ta = await connected(a!);
        const newcomer = await transport(); // never connected: a new device has no certificate yet
        const channel = globalThis.crypto.getRandomValues(new Uint8Array(16));
        const whole = patternBytes(5000, 21);
        const sealed = whole.subarray(100, 4100);
        const expected = sealed.slice();
        const taking = newcomer.provisionTake(channel.slice(), 20_000);
        await ta.provisionPut(channel, sealed);
        whole.fill(0);
        expectBytesEqual(await within(taking, 'the take'), expected, 'the taken answer');
        expect(newcomer.state).toBe('idle');
        expect(await within(newcomer.provisionTake(channel, 0), 'a second take')).toBeUndefined();
        const other = globalThis.crypto.getRandomValues(new Uint8Array(16));
        expect(await within(newcomer.provisionTake(other, 200), 'a take on an empty channel')).toBeUndefined();
        // One answer per channel: the same bytes again are accepted, others refused.
        await ta.provisionPut(channel, expected);
        const conflict = await rejection('another answer on a used channel', ta.provisionPut(channel, utf8('another answer')));
        expect(isDeadboltError(conflict, 'RELAY_REJECTED') ? conflict.details : describeError(conflict)).toEqual({ code: 'FORBIDDEN' });
      });

      it('provisionPut needs a connection; arguments are checked before anything is sent; close() ends a waiting take with CLOSED', async () => {
        const newcomer = await transport();
        const channel = new Uint8Array(16).fill(3);
        const unconnected = await rejection('provisionPut before connect', newcomer.provisionPut(channel, utf8('x')));
        expect(isDeadboltError(unconnected, 'TRANSPORT_FAILED'), describeError(unconnected)).toBe(true);
        for (const [what, call] of [
          ['a 15-byte channel', () => newcomer.provisionTake(new Uint8Array(15), 0)],
          ['a wait over 30 s', () => newcomer.provisionTake(channel, 30_001)],
          ['an empty answer', () => newcomer.provisionPut(channel, new Uint8Array(0))],
          ['an answer over 8 KiB', () => newcomer.provisionPut(channel, new Uint8Array(8193))],
        ] as const) {
          const e = await rejection(what, call());
          expect(isDeadboltError(e, 'INVALID_ARGUMENT'), `${what}: ${describeError(e)}`).toBe(true);
        }
        const waiting = newcomer.provisionTake(channel, 30_000);
        await newcomer.close();
        await expectClosed('the waiting take', () => waiting);
      });
    });
  });
}
