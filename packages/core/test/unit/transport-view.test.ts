/**
 * The read-only view `client.transport` hands out (src/client/transport-view.ts; hostile
 * review 13, finding 2), on a stand-in adapter: which members it refuses, which it passes
 * through, and that it cannot be changed. The real client over a real relay is checked in
 * e2e/test/client-transport-view.test.ts.
 */
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
    expect(adapter.maxFrameSize).toBe(1234);
    expect(typeof adapter.onFrame).toBe('function');
    expect(typeof adapter.peers).toBe('function');
  });
});
