/**
 * The read-only view `client.transport` hands out (src/client/transport-view.ts; hostile
 * review 13, finding 2), on a stand-in adapter: which members it refuses, which it passes
 * through, and that it cannot be changed; then the ways out of it found by the review of
 * that view (members inherited from `Object.prototype`, `constructor`, methods returning
 * `this`), each of which used to hand out the raw adapter. The real client over a real
 * relay is checked in e2e/test/client-transport-view.test.ts.
 */
import { Console } from 'node:console';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import { runInNewContext } from 'node:vm';
import { describe, expect, test } from 'vitest';
import { isDeadboltError, TRANSPORT_SPECIFICATION_VERSION, type TransportAdapter, type TransportState } from '@deadbolt/spec';
import { readonlyTransport } from '../../src/client/transport-view.js';

const ACTING = [
  'connect',
  'close',
  'send',
  'sendShared',
  'onFrame',
  'fetchBundles',
  'publishPrekeys',
  'publishDeviceList',
  'provisionPut',
  'provisionTake',
  'attachSignalling',
  'closeLinksTo',
  'preconnect',
  'attachAnythingElse',
];

interface StandIn extends TransportAdapter {
  preconnect(): Promise<boolean>;
  attachAnythingElse(): void;
  peers(): number;
  readonly [Symbol.toStringTag]: string;
}

/** A stand-in adapter whose every member records that it ran. */
function standIn(): { adapter: StandIn; ran: string[] } {
  const ran: string[] = [];
  const record = (name: string) => () => void ran.push(name);
  let state: TransportState = 'idle';
  const adapter: StandIn = {
    specificationVersion: TRANSPORT_SPECIFICATION_VERSION,
    maxFrameSize: 1234,
    get state() {
      return state;
    },
    connect: async () => void (state = 'connected'),
    close: async () => void (state = 'closed'),
    send: async () => void ran.push('send'),
    sendShared: async () => void ran.push('sendShared'),
    onFrame: () => record('onFrame'),
    onStateChange: () => record('unobserved'),
    onNotice: () => record('unnoticed'),
    fetchBundles: async () => ({ bundles: [], deviceList: undefined }),
    publishPrekeys: async () => void ran.push('publishPrekeys'),
    publishDeviceList: async () => void ran.push('publishDeviceList'),
    provisionPut: async () => void ran.push('provisionPut'),
    provisionTake: async () => undefined,
    closeLinksTo: () => void ran.push('closeLinksTo'),
    preconnect: async () => true,
    attachAnythingElse: () => void ran.push('attachAnythingElse'),
    peers(this: { maxFrameSize: number }) {
      return this.maxFrameSize;
    },
    [Symbol.toStringTag]: 'StandIn',
  };
  return { adapter, ran };
}

describe('readonlyTransport', () => {
  test('refuses every acting member with a UsageError naming it, present on the adapter or not', () => {
    const { adapter, ran } = standIn();
    const view = readonlyTransport(adapter) as unknown as Record<string, unknown>;
    for (const name of ACTING) {
      let error: unknown;
      try {
        void view[name];
      } catch (e) {
        error = e;
      }
      expect(isDeadboltError(error, 'INVALID_ARGUMENT'), name).toBe(true);
      expect(error, name).toMatchObject({ kind: 'usage', details: { field: `transport.${name}` } });
      expect(name in view, name).toBe(false);
    }
    // `attachSignalling` is optional in the contract: this adapter has none, it is refused all the same.
    expect('attachSignalling' in adapter).toBe(false);
    expect(Object.keys(view).filter((k) => ACTING.includes(k))).toEqual([]);
    expect(ran).toEqual([]);
    expect(adapter.state).toBe('idle');
  });

  test('passes the read-only members and other extras through, live and bound to the adapter', async () => {
    const { adapter, ran } = standIn();
    const view = readonlyTransport(adapter);
    expect(view.specificationVersion).toBe(TRANSPORT_SPECIFICATION_VERSION);
    expect(view.maxFrameSize).toBe(1234);
    expect(view.state).toBe('idle');
    await adapter.connect({ certificate: new Uint8Array(0), sign: async () => new Uint8Array(0) });
    expect(view.state).toBe('connected');
    view.onStateChange(() => undefined)();
    view.onNotice(() => undefined)();
    expect(ran).toEqual(['unobserved', 'unnoticed']);
    const { peers } = view;
    expect(peers()).toBe(1234);
    expect(view.peers).toBe(view.peers);
    expect(Object.prototype.toString.call(view)).toBe('[object StandIn]');
    expect(Object.keys(view)).toContain('peers');
    expect(Object.getPrototypeOf(view)).toBeNull();
  });

  test('cannot be written to, so no member can be swapped in or out', () => {
    const { adapter } = standIn();
    const view = readonlyTransport(adapter) as unknown as Record<string, unknown>;
    const refused = (act: () => unknown): void => {
      expect(act).toThrow(/read-only/);
    };
    refused(() => (view.maxFrameSize = 1));
    refused(() => (view.onFrame = () => () => undefined));
    refused(() => delete view.peers);
    refused(() => Object.defineProperty(view, 'state', { value: 'closed' }));
    refused(() => Object.setPrototypeOf(view, {}));
    refused(() => Object.preventExtensions(view));
    refused(() => Object.freeze(view));
    expect(adapter.maxFrameSize).toBe(1234);
    expect(typeof adapter.onFrame).toBe('function');
    expect(typeof adapter.peers).toBe('function');
  });

  test("hides what the adapter inherits from Object.prototype: valueOf no longer hands out the adapter", () => {
    const { adapter } = standIn();
    const view = readonlyTransport(adapter) as unknown as Record<string, unknown>;
    // `view.valueOf()` was `Object.prototype.valueOf` bound to the adapter: it returned the
    // raw transport, whose `onFrame` then replaced core's handler.
    expect(view.valueOf).toBeUndefined();
    expect('valueOf' in view).toBe(false);
    expect(Object.prototype.valueOf.call(view)).toBe(view);
    for (const name of [
      'hasOwnProperty',
      'isPrototypeOf',
      'propertyIsEnumerable',
      'toLocaleString',
      '__defineGetter__',
      '__defineSetter__',
      '__lookupGetter__',
      '__lookupSetter__',
      '__proto__',
      'constructor',
    ]) {
      expect(view[name], name).toBeUndefined();
      expect(name in view, name).toBe(false);
    }
    expect(Object.keys(view).filter((k) => k in Object.prototype)).toEqual([]);
  });

  test('an adapter made in another realm (a vm context, an iframe): that realm\'s Object.prototype members are hidden too', () => {
    const adapter = runInNewContext('({ specificationVersion: "x", state: "idle", onFrame() {}, path() { return "relay"; } })') as TransportAdapter;
    expect(Object.getPrototypeOf(Object.getPrototypeOf(adapter))).toBeNull(); // the chain ends at the other realm's Object.prototype
    const view = readonlyTransport(adapter) as unknown as Record<string, unknown>;
    for (const name of ['valueOf', '__defineGetter__', '__lookupGetter__', 'hasOwnProperty', 'constructor']) {
      expect(view[name], name).toBeUndefined();
      expect(name in view, name).toBe(false);
    }
    expect((view.path as () => string)()).toBe('relay');
    expect(view.state).toBe('idle');
  });

  test('__defineGetter__ through the view neither runs on nor writes to the adapter', () => {
    const { adapter } = standIn();
    const view = readonlyTransport(adapter) as unknown as { __defineGetter__?: (name: string, get: () => unknown) => void };
    expect(() => view.__defineGetter__!('me', function (this: unknown) {
      return this;
    })).toThrow(TypeError);
    expect(() => (Object.prototype as unknown as { __defineGetter__(name: string, get: () => unknown): void }).__defineGetter__.call(view, 'me', () => adapter)).toThrow(/read-only/);
    expect('me' in adapter).toBe(false);
    expect('me' in view).toBe(false);
  });

  test('hides constructor and __proto__, even when a class defines them', () => {
    class Adapter {
      readonly maxFrameSize = 1;
    }
    const view = readonlyTransport(new Adapter() as unknown as TransportAdapter) as unknown as Record<string, unknown>;
    expect(view.constructor).toBeUndefined();
    expect(view.__proto__).toBeUndefined();
    expect(Object.getPrototypeOf(view)).toBeNull();
    expect(view.maxFrameSize).toBe(1);
    // A class may declare `constructor` as an own member too: hidden all the same.
    const own = readonlyTransport(Object.assign(standIn().adapter, { constructor: Adapter })) as unknown as Record<string, unknown>;
    expect(own.constructor).toBeUndefined();
    expect('constructor' in own).toBe(false);
    expect(Object.keys(own)).not.toContain('constructor');
    expect(Object.getOwnPropertyDescriptor(own, 'constructor')).toBeUndefined();
  });

  test("a class-based adapter's methods that return `this` (or a promise of it) return the view", async () => {
    const frames: string[] = [];
    /** A third-party adapter with a fluent API on its prototype. */
    class FluentTransport {
      readonly specificationVersion = TRANSPORT_SPECIFICATION_VERSION;
      readonly maxFrameSize = 99;
      #state: TransportState = 'idle';
      get state(): TransportState {
        return this.#state;
      }
      get self(): this {
        return this;
      }
      onFrame(): () => void {
        frames.push('onFrame');
        return () => undefined;
      }
      on(_event: string, _listener: () => void): this {
        return this;
      }
      async ready(): Promise<this> {
        return this;
      }
      label(): string {
        return `fluent ${this.#state} ${this.maxFrameSize}`;
      }
      toString(): string {
        return 'FluentTransport';
      }
    }
    const adapter = new FluentTransport();
    const view = readonlyTransport(adapter as unknown as TransportAdapter) as unknown as FluentTransport;
    expect(view.on('path', () => undefined)).toBe(view);
    expect(view.on('path', () => undefined).on('notice', () => undefined)).toBe(view);
    expect(view.on('x', () => undefined)).not.toBe(adapter);
    const ready = view.ready();
    expect(ready).toBeInstanceOf(Promise);
    expect(await ready).toBe(view);
    expect(view.self).toBe(view);
    // Class members still work through the view, `this` (private fields included) being the adapter.
    expect(view.label()).toBe('fluent idle 99');
    expect(view.state).toBe('idle');
    expect(view.on).toBe(view.on);
    expect(String(view)).toBe('FluentTransport');
    expect(() => view.onFrame()).toThrow(/client alone/);
    expect(frames).toEqual([]);
  });

  test('a function passed through keeps its results and rejections, only the adapter itself being swapped', async () => {
    const other = { not: 'the adapter' };
    const adapter = Object.assign(standIn().adapter, {
      pick: (which: number) => [adapter, other, 7][which],
      later: async (which: number) => [adapter, other, 7][which],
      fail: async () => {
        throw new RangeError('nope');
      },
    });
    const view = readonlyTransport(adapter);
    expect(view.pick(0)).toBe(view);
    expect(view.pick(1)).toBe(other);
    expect(view.pick(2)).toBe(7);
    expect(await view.later(0)).toBe(view);
    expect(await view.later(1)).toBe(other);
    await expect(view.fail()).rejects.toThrow(RangeError);
  });

  test('can be awaited, converted to a string and logged without exposing the adapter', async () => {
    const { adapter } = standIn();
    const view = readonlyTransport(adapter);
    expect(await view).toBe(view);
    expect(await Promise.resolve(view)).toBe(view);
    expect(String(view)).toBe('[object StandIn]');
    expect(`${view}`).toBe('[object StandIn]');
    expect('' + view).toBe('[object StandIn]');
    expect(view.toString()).toBe('[object StandIn]');
    expect(view.toString).toBe(view.toString);
    expect(String(readonlyTransport({ ...adapter, [Symbol.toStringTag]: undefined }))).toBe('[object Object]');
    // `console.log` as Node runs it, writing into a buffer.
    const printed: string[] = [];
    const out = new Writable({
      write(chunk: Buffer, _encoding, done) {
        printed.push(chunk.toString());
        done();
      },
    });
    const console = new Console(out);
    console.log(view);
    console.log('%o %O %s %j', view, view, view, view);
    expect(printed.join('').length).toBeGreaterThan(0);
    expect(() => inspect(view, { showHidden: true, showProxy: true, getters: true, depth: 5 })).not.toThrow();
    expect(inspect(view)).not.toContain('1234');
    expect(JSON.stringify(view)).toContain('"maxFrameSize":1234');
  });
});
