/**
 * The transport conformance suite: every invariant of the transport contract
 * (`@deadbolt/spec` transport.ts), checked against a real relay on loopback. Every
 * transport package runs it once, with a factory that starts the relay, creates the
 * transport and makes authenticated devices (the test-kit itself depends on the
 * contracts only). Tests wait on events and promises, never on sleeps.
 *
 * @module
 */
import { afterEach, describe, expect, test } from 'vitest';
import {
  isDeadboltError,
  TRANSPORT_SPECIFICATION_VERSION,
  type Address,
  type InboundFrame,
  type TransportAdapter,
  type TransportAuth,
  type TransportState,
} from '@deadbolt/spec';
import { expectBytesEqual, patternBytes } from './bytes.js';

/** A relay the suite can talk to. */
export interface ConformanceRelay {
  readonly url: string;
  readonly wsUrl: string;
  close(): Promise<void>;
}

/** A device the relay will accept. */
export interface ConformanceDevice {
  readonly address: Address;
  readonly auth: TransportAuth;
  /** An encoded prekey upload of this device (docs/protocol.md §4.5). */
  readonly upload: Uint8Array;
}

/** What a transport package supplies to run the suite. */
export interface TransportConformanceFactory {
  /** Starts a fresh relay on loopback. */
  startRelay(): Promise<ConformanceRelay>;
  /** Stops `relay` and starts a new one at the same URL (state may be lost). */
  restartRelay(relay: ConformanceRelay): Promise<ConformanceRelay>;
  /** A transport to `relay`. */
  createTransport(relay: ConformanceRelay): TransportAdapter;
  /** A new device with its own keys. */
  createDevice(userId: string, deviceId: string): Promise<ConformanceDevice>;
}

/** Collects delivered frames and lets a test wait for a condition on them. */
class Inbox {
  readonly frames: InboundFrame[] = [];
  #waiters: { check: () => boolean; resolve: () => void }[] = [];

  handler = (frame: InboundFrame): void => {
    this.frames.push(frame);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.check()) return true;
      w.resolve();
      return false;
    });
  };

  until(check: () => boolean, what: string, deadlineMs = 20_000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what} (have ${this.frames.length} frames)`)), deadlineMs);
      this.#waiters.push({
        check,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  texts(): string[] {
    return this.frames.map((f) => new TextDecoder().decode(f.bytes));
  }
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/**
 * Registers the conformance suite for a transport.
 *
 * @example
 * ```ts
 * describeTransportConformance('websocket', {
 *   startRelay: () => createRelay({ port: 0 }),
 *   restartRelay: async (r) => { await r.close(); return createRelay({ port: Number(new URL(r.url).port) }); },
 *   createTransport: (relay) => createWebSocketTransport({ url: relay.wsUrl, WebSocket }),
 *   createDevice: makeTestDevice,
 * });
 * ```
 */
export function describeTransportConformance(name: string, factory: TransportConformanceFactory): void {
  describe(`transport conformance: ${name}`, () => {
    let relay: ConformanceRelay | undefined;
    const open: TransportAdapter[] = [];

    afterEach(async () => {
      for (const t of open.splice(0)) await t.close();
      await relay?.close();
      relay = undefined;
    });

    async function connected(device: ConformanceDevice, inbox?: Inbox): Promise<TransportAdapter> {
      relay ??= await factory.startRelay();
      const t = factory.createTransport(relay);
      open.push(t);
      if (inbox) t.onFrame(inbox.handler);
      await t.connect(device.auth);
      return t;
    }

    async function devices(...ids: string[]): Promise<ConformanceDevice[]> {
      return Promise.all(ids.map((id) => factory.createDevice(id, 'd1')));
    }

    test('declares its contract version and frame limit; starts idle', async () => {
      relay = await factory.startRelay();
      const t = factory.createTransport(relay);
      open.push(t);
      expect(t.specificationVersion).toBe(TRANSPORT_SPECIFICATION_VERSION);
      expect(t.maxFrameSize).toBeGreaterThanOrEqual(256 * 1024);
      expect(t.state).toBe('idle');
    });

    test('connect resolves after authentication, with state changes in order (invariants 1, 8)', async () => {
      const [a] = await devices('alice');
      relay = await factory.startRelay();
      const t = factory.createTransport(relay);
      open.push(t);
      const states: TransportState[] = [];
      t.onStateChange((s) => states.push(s));
      await t.connect(a!.auth);
      expect(t.state).toBe('connected');
      expect(states).toEqual(['connecting', 'connected']);
      await t.connect(a!.auth); // no-op while connected
      expect(states).toEqual(['connecting', 'connected']);
    });

    test('a bad signature is refused: connect rejects and the state returns to idle', async () => {
      const [a] = await devices('alice');
      relay = await factory.startRelay();
      const t = factory.createTransport(relay);
      open.push(t);
      const forged: TransportAuth = {
        certificate: a!.auth.certificate,
        sign: async (relayId, challenge) => {
          const sig = await a!.auth.sign(relayId, challenge);
          sig[0] = (sig[0] as number) ^ 1;
          return sig;
        },
      };
      await expect(t.connect(forged)).rejects.toSatisfy((e) => isDeadboltError(e));
      expect(t.state).toBe('idle');
    });

    test('a frame reaches only its addressee (invariant 6)', async () => {
      const [a, b, c] = await devices('alice', 'bob', 'carol');
      const inboxB = new Inbox();
      const inboxC = new Inbox();
      const ta = await connected(a!);
      await connected(b!, inboxB);
      await connected(c!, inboxC);
      await ta.send([{ to: b!.address, frame: bytes('for bob') }]);
      await ta.send([{ to: c!.address, frame: bytes('marker for carol') }]);
      await inboxB.until(() => inboxB.frames.length >= 1, 'bob');
      await inboxC.until(() => inboxC.frames.length >= 1, 'carol');
      expect(inboxB.texts()).toEqual(['for bob']);
      expect(inboxC.texts()).toEqual(['marker for carol']);
      expect(inboxB.frames[0]!.from).toEqual(a!.address);
    });

    test('one upload reaches many mailboxes', async () => {
      const [a, b, c] = await devices('alice', 'bob', 'carol');
      const inboxB = new Inbox();
      const inboxC = new Inbox();
      const ta = await connected(a!);
      await connected(b!, inboxB);
      await connected(c!, inboxC);
      await ta.send([
        { to: b!.address, frame: bytes('to bob') },
        { to: c!.address, frame: bytes('to carol') },
      ]);
      await inboxB.until(() => inboxB.frames.length >= 1, 'bob');
      await inboxC.until(() => inboxC.frames.length >= 1, 'carol');
      expect([inboxB.texts(), inboxC.texts()]).toEqual([['to bob'], ['to carol']]);
    });

    test('a burst of 200 frames is delivered, each at least once (invariant 2)', async () => {
      const [a, b] = await devices('alice', 'bob');
      const inbox = new Inbox();
      const ta = await connected(a!);
      await connected(b!, inbox);
      await Promise.all(Array.from({ length: 200 }, (_, i) => ta.send([{ to: b!.address, frame: bytes(`m${i}`) }])));
      const unique = (): number => new Set(inbox.texts()).size;
      await inbox.until(() => unique() === 200, '200 distinct frames');
      expect(new Set(inbox.frames.map((f) => f.id)).size).toBeGreaterThanOrEqual(200);
    });

    test('a frame is acknowledged only after the handler resolves: a throwing handler gets it again (invariant 2)', async () => {
      const [a, b] = await devices('alice', 'bob');
      const ta = await connected(a!);
      const first = factory.createTransport((relay ??= await factory.startRelay()));
      open.push(first);
      let attempts = 0;
      const failed = new Promise<void>((resolve) => {
        first.onFrame(() => {
          attempts++;
          resolve();
          throw new Error('handler failed');
        });
      });
      await first.connect(b!.auth);
      await ta.send([{ to: b!.address, frame: bytes('retry me') }]);
      await failed;
      await first.close();
      // A new connection for the same device gets the unacknowledged frame again.
      const inbox = new Inbox();
      await connected(b!, inbox);
      await inbox.until(() => inbox.texts().includes('retry me'), 'redelivery');
      expect(attempts).toBe(1);
    });

    test('frames that arrive with no handler are not acknowledged', async () => {
      const [a, b] = await devices('alice', 'bob');
      const ta = await connected(a!);
      const silent = await connected(b!);
      await ta.send([{ to: b!.address, frame: bytes('kept') }]);
      await silent.close();
      const inbox = new Inbox();
      await connected(b!, inbox);
      await inbox.until(() => inbox.texts().includes('kept'), 'the kept frame');
    });

    test('an oversize frame is refused before anything is sent (invariant 4)', async () => {
      const [a, b] = await devices('alice', 'bob');
      const inbox = new Inbox();
      const ta = await connected(a!);
      await connected(b!, inbox);
      const big = new Uint8Array(ta.maxFrameSize + 1);
      await expect(ta.send([{ to: b!.address, frame: bytes('ok') }, { to: b!.address, frame: big }])).rejects.toSatisfy((e) => isDeadboltError(e, 'FRAME_TOO_LARGE'));
      await ta.send([{ to: b!.address, frame: bytes('marker') }]);
      await inbox.until(() => inbox.frames.length >= 1, 'marker');
      expect(inbox.texts()).toEqual(['marker']); // nothing of the refused batch went out
    });

    test('only the bytes a view covers are sent, and inputs are copied (invariant 5)', async () => {
      const [a, b] = await devices('alice', 'bob');
      const inbox = new Inbox();
      const ta = await connected(a!);
      await connected(b!, inbox);
      const whole = patternBytes(4096, 7);
      const view = whole.subarray(1000, 3000);
      const expected = view.slice();
      const sending = ta.send([{ to: b!.address, frame: view }]);
      whole.fill(0); // mutating after the call changes nothing
      await sending;
      await inbox.until(() => inbox.frames.length >= 1, 'the view');
      expectBytesEqual(inbox.frames[0]!.bytes, expected);
      inbox.frames[0]!.bytes.fill(1); // delivered arrays are the caller's own
    });

    test('the key directory: publish prekeys, fetch bundles, unknown users', async () => {
      const [a, b] = await devices('alice', 'bob');
      const ta = await connected(a!);
      const tb = await connected(b!);
      await ta.publishPrekeys(a!.upload);
      await ta.publishPrekeys(a!.upload); // idempotent
      const bundles = await tb.fetchBundles(a!.address.userId);
      expect(bundles.length).toBe(1);
      expect(bundles[0]!.length).toBeGreaterThan(1000);
      await expect(tb.fetchBundles('nobody-here')).rejects.toSatisfy((e) => isDeadboltError(e, 'UNKNOWN_USER'));
    });

    test('reconnects on its own after the relay restarts, and sends again (invariant 3)', async () => {
      const [a, b] = await devices('alice', 'bob');
      const inbox = new Inbox();
      const ta = await connected(a!);
      const tb = await connected(b!, inbox);
      const back = (t: TransportAdapter): Promise<TransportState[]> =>
        new Promise((resolve) => {
          const seen: TransportState[] = [];
          t.onStateChange((s) => {
            seen.push(s);
            if (s === 'connected') resolve(seen);
          });
        });
      const aBack = back(ta);
      const bBack = back(tb);
      relay = await factory.restartRelay(relay!);
      // Both come back on their own (the restarted relay's store is empty, so Bob must
      // have re-registered before he can be sent to).
      expect(await aBack).toEqual(['reconnecting', 'connected']);
      expect(await bBack).toEqual(['reconnecting', 'connected']);
      await ta.send([{ to: b!.address, frame: bytes('after restart') }]);
      await inbox.until(() => inbox.texts().includes('after restart'), 'delivery after restart');
      expect(ta.state).toBe('connected');
    });

    test('close is idempotent; afterwards every operation rejects with CLOSED (invariant 7)', async () => {
      const [a, b] = await devices('alice', 'bob');
      const t = await connected(a!);
      const states: TransportState[] = [];
      t.onStateChange((s) => states.push(s));
      await t.close();
      await t.close();
      expect(t.state).toBe('closed');
      expect(states).toEqual(['closed']);
      const closed = (p: Promise<unknown>) => expect(p).rejects.toSatisfy((e) => isDeadboltError(e, 'CLOSED'));
      await closed(t.send([{ to: b!.address, frame: bytes('x') }]));
      await closed(t.connect(a!.auth));
      await closed(t.fetchBundles('bob'));
      await closed(t.publishPrekeys(a!.upload));
    });
  });
}
