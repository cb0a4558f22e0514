/**
 * `client.transport` is a read-only view (packages/core/src/client/transport-view.ts; hostile
 * review 13, finding 2). Handing out the live transport let an application unplug core:
 * `onFrame` replaces the transport's single frame handler (frames were then acknowledged
 * to the relay and never decrypted, lost for good), `attachSignalling` replaces core's
 * signalling channel, `send` with `contact: true` opens direct links the user never chose,
 * `connect` and `close` go round the client's lifecycle. Checked here:
 *
 * - every acting member is refused with a `UsageError` INVALID_ARGUMENT naming it, absent
 *   from the view's type and from `in`, and the view cannot be written to;
 * - nothing on the view hands out the raw transport: what it inherits from
 *   `Object.prototype` (`valueOf()` returned it, `__defineGetter__` wrote to it),
 *   `constructor`, `__proto__`, and an extra returning `this` (or a promise of it);
 * - after those attempts core still receives (messages, and signals over its channel);
 * - the read-only members and the adapter's own extras still work, read live and bound
 *   to the adapter.
 *
 * Real clients over the real relay; Alice's transport is the WebSocket one with what a
 * WebRTC transport adds (the signalling hook, `path`, `onPathChange`, `directLinksDisabled`,
 * `preconnect`).
 */
import { expect, test } from 'vitest';
import { createClient, type Client, type ReadonlyTransport } from '@deadbolt/core';
import { isDeadboltError, type Address, type SignallingChannel, type TransportAdapter, type TransportState } from '@deadbolt/spec';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import { makeTransport, perTestRelay } from './stack.js';

const scope = perTestRelay();
const { open } = scope;

/** What the WebRTC transport adds to the contract, as far as these tests need it. */
interface WithExtras extends TransportAdapter {
  path(peer: Address): 'direct' | 'relay';
  onPathChange(listener: (change: { peer: Address; path: 'direct' | 'relay' }) => void): () => void;
  readonly directLinksDisabled: string | undefined;
  preconnect(peer: Address): Promise<boolean>;
  attachSignalling(channel: SignallingChannel): void;
  /** Uses `this`: works through the view only if the view binds it to the adapter. */
  describe(): string;
  /** A fluent extra: returns the transport itself, now or later. */
  chain(): this;
  ready(): Promise<this>;
}

interface Extras {
  readonly transport: WithExtras;
  channel(): SignallingChannel;
  /** Switches direct links off (`directLinksDisabled`) and reports a path change. */
  disable(reason: string, peer: Address): void;
  readonly signals: string[];
  nextSignal(): Promise<string>;
}

function withExtras(): Extras {
  let channel: SignallingChannel | undefined;
  let disabled: string | undefined;
  const pathListeners = new Set<(change: { peer: Address; path: 'direct' | 'relay' }) => void>();
  const signals: string[] = [];
  const waiting: ((text: string) => void)[] = [];
  const transport = Object.defineProperty(makeTransport('websocket', scope.relay()), 'directLinksDisabled', { get: () => disabled, enumerable: true }) as WithExtras;
  transport.attachSignalling = (c) => {
    channel = c;
    c.onSignal((_from, payload) => {
      const text = new TextDecoder().decode(payload);
      signals.push(text);
      waiting.shift()?.(text);
    });
  };
  transport.path = () => 'relay';
  transport.onPathChange = (listener) => {
    pathListeners.add(listener);
    return () => pathListeners.delete(listener);
  };
  transport.preconnect = async () => true;
  transport.describe = function (this: WithExtras) {
    return `websocket, ${this.state}`;
  };
  transport.chain = function (this: WithExtras) {
    return this;
  };
  transport.ready = async function (this: WithExtras) {
    return this;
  };
  return {
    transport,
    channel: () => channel!,
    disable(reason, peer) {
      disabled = reason;
      for (const l of pathListeners) l({ peer, path: 'relay' });
    },
    signals,
    nextSignal: () => new Promise((resolve) => waiting.push(resolve)),
  };
}

async function started(userId: string, deviceId: string, transport: TransportAdapter): Promise<Client> {
  const c = await createClient({ userId, deviceId, storage: createMemoryStorage(), transport });
  open.push(c);
  await c.start();
  return c;
}

function refusal(act: () => unknown): unknown {
  try {
    act();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** The acting members, each with a call that would take over core's role. */
function attempts(view: TransportAdapter & WithExtras, bob: Address): Record<string, () => unknown> {
  return {
    onFrame: () => view.onFrame(async () => undefined),
    send: () => view.send([{ to: bob, frame: new Uint8Array(8), contact: true }]),
    sendShared: () => view.sendShared([{ to: bob }], new Uint8Array(8)),
    connect: () => view.connect({ certificate: new Uint8Array(0), sign: async () => new Uint8Array(64) }),
    close: () => view.close(),
    attachSignalling: () => view.attachSignalling({ maxPayload: 0, send: async () => undefined, deviceListVersion: async () => 0, onSignal: () => () => undefined }),
    closeLinksTo: () => view.closeLinksTo?.('bob', []),
    preconnect: () => view.preconnect(bob),
    fetchBundles: () => view.fetchBundles('bob'),
    publishPrekeys: () => view.publishPrekeys(new Uint8Array(0)),
    publishDeviceList: () => view.publishDeviceList(new Uint8Array(0)),
    provisionPut: () => view.provisionPut(new Uint8Array(16), new Uint8Array(1)),
    provisionTake: () => view.provisionTake(new Uint8Array(16), 0),
  };
}

test('client.transport refuses every member that sends, receives, connects, closes or attaches, and core keeps receiving', async () => {
  await scope.start();
  const a = withExtras();
  const b = withExtras();
  const alice = await started('alice', 'phone', a.transport);
  const bob = await started('bob', 'laptop', b.transport);
  const got: string[] = [];
  alice.on('message-received', (m) => got.push(new TextDecoder().decode(m.body)));

  // The view's type leaves them out.
  const typed = alice.transport as ReadonlyTransport<WithExtras>;
  // @ts-expect-error onFrame is not part of the view
  expect(() => typed.onFrame).toThrow();
  // @ts-expect-error send is not part of the view
  expect(() => typed.send).toThrow();
  // @ts-expect-error close is not part of the view
  expect(() => typed.close).toThrow();
  // @ts-expect-error attachSignalling is not part of the view
  expect(() => typed.attachSignalling).toThrow();
  // @ts-expect-error preconnect is not part of the view
  expect(() => typed.preconnect).toThrow();

  // At run time (an application without types, or a cast): each throws a UsageError naming it.
  const view = alice.transport as unknown as TransportAdapter & WithExtras;
  for (const [name, act] of Object.entries(attempts(view, bob.address))) {
    const e = refusal(act);
    expect(isDeadboltError(e, 'INVALID_ARGUMENT'), name).toBe(true);
    expect(e, name).toMatchObject({ kind: 'usage', details: { field: `transport.${name}` } });
    expect((e as Error).message, name).toContain(name);
    expect(name in view, name).toBe(false);
  }
  // Nor can the view be written to, which would change nothing in the adapter anyway.
  expect(() => Object.assign(view, { onFrame: () => () => undefined })).toThrow(/read-only/);
  expect(() => delete (view as { path?: unknown }).path).toThrow(/read-only/);
  expect(Object.keys(view)).not.toContain('onFrame');
  expect(Object.keys(view)).not.toContain('send');

  // Nor does anything on the view hand out the transport itself, whose `onFrame` would take
  // the frames: not what it inherits from Object.prototype, nor an extra returning `this`.
  const loose = view as unknown as Record<string, unknown>;
  for (const name of ['valueOf', '__defineGetter__', '__lookupGetter__', 'hasOwnProperty', 'constructor', '__proto__']) {
    expect(loose[name], name).toBeUndefined();
  }
  expect(Object.prototype.valueOf.call(view)).toBe(view);
  expect(() => (Object.prototype as unknown as { __defineGetter__(name: string, get: () => unknown): void }).__defineGetter__.call(view, 'me', () => undefined)).toThrow(/read-only/);
  expect(view.chain()).toBe(view);
  const steal = (raw: unknown) => (raw as TransportAdapter).onFrame(async () => undefined);
  expect(() => steal((loose.valueOf as () => unknown)())).toThrow(TypeError);
  expect(() => steal(view.chain())).toThrow(/transport\.onFrame/);
  const later = await view.ready();
  expect(later).toBe(view);
  expect(() => steal(later)).toThrow(/transport\.onFrame/);
  expect(await view).toBe(view);
  expect(String(view)).toBe('[object Object]');

  // Core still owns the frames: Bob's message after all that is decrypted and stored...
  await bob.send('alice', 'after the attempts');
  await expect.poll(() => got, { timeout: 30_000 }).toContain('after the attempts');
  expect((await alice.history('bob')).map((m) => new TextDecoder().decode(m.body))).toEqual(['after the attempts']);
  // ...and its signalling channel is still the one Alice's transport was given.
  const heard = a.nextSignal();
  await b.channel().send(alice.address, new TextEncoder().encode('offer'), (m) => b.transport.send([m]));
  expect(await heard).toBe('offer');
  // The client's own lifecycle is intact: still connected, and its close closes the transport.
  expect(a.transport.state).toBe('connected');
  await alice.close();
  expect(a.transport.state).toBe('closed');
});

test("client.transport reads the transport's state and observation members and the adapter's own extras, live", async () => {
  await scope.start();
  const a = withExtras();
  const alice = await createClient({ userId: 'alice', deviceId: 'phone', storage: createMemoryStorage(), transport: a.transport });
  open.push(alice);
  const view = alice.transport as ReadonlyTransport<WithExtras>;
  const bob: Address = { userId: 'bob', deviceId: 'laptop' } as Address;

  // The contract's read-only members.
  expect(view.specificationVersion).toBe(a.transport.specificationVersion);
  expect(view.maxFrameSize).toBe(a.transport.maxFrameSize);
  expect(view.state).toBe('idle');
  const states: TransportState[] = [];
  const stop = view.onStateChange((s) => states.push(s));
  expect(typeof view.onNotice(() => undefined)).toBe('function');
  await alice.start();
  expect(view.state).toBe('connected');
  expect(states).toContain('connected');

  // The adapter's extras: read live, functions bound to the adapter (so `this` works when
  // taken off the view), the same function at every read.
  expect(view.path(bob)).toBe('relay');
  const { describe } = view;
  expect(describe()).toBe('websocket, connected');
  expect(view.describe).toBe(view.describe);
  expect(view.directLinksDisabled).toBeUndefined();
  const changes: string[] = [];
  const off = view.onPathChange(({ peer, path }) => changes.push(`${peer.userId} ${path}`));
  a.disable('certificate not exposed', bob);
  expect(view.directLinksDisabled).toBe('certificate not exposed');
  expect(changes).toEqual(['bob relay']);
  off();
  expect('path' in view && 'state' in view && 'onStateChange' in view).toBe(true);

  stop();
  await alice.close();
  expect(view.state).toBe('closed');
  expect(states).not.toContain('closed');
});
