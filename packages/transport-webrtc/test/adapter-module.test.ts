/**
 * The configuration entry point (adapter-module.ts), hostile review 3: in the privacy mode
 * it never picks node-datachannel, which sends ICE checks from host addresses whatever the
 * policy (finding 1; see privacy-wire.test.ts), but werift, and fails clearly without it;
 * and it hands node-datachannel's native readers, the remote fingerprint and the selected
 * candidate pair, to the transport (finding 6). `createWebRtcTransport` is the real one,
 * observed through a spy that records its options.
 */
import { createRequire } from 'node:module';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { RTCPeerConnection as WeriftPeerConnection } from 'werift';
import { isDeadboltError } from '@deadbolt/spec';
import type { WebRtcTransportOptions } from '../src/index.js';
import { MemoryHub } from './helpers/memory-hub.js';

const created = vi.hoisted(() => [] as WebRtcTransportOptions[]);
vi.mock('../src/webrtc-transport.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../src/webrtc-transport.js')>();
  return {
    ...actual,
    createWebRtcTransport: (options: WebRtcTransportOptions) => {
      created.push(options);
      return actual.createWebRtcTransport(options);
    },
  };
});
const { createTransportAdapter, sendsFromHostDespiteRelayPolicy } = await import('../src/index.js');

const TURN = [{ urls: 'turn:turn.example:3478', username: 'u', credential: 'p' }];
const transports: { close(): Promise<void> }[] = [];
afterEach(async () => {
  created.length = 0;
  for (const t of transports.splice(0)) await t.close();
});

/** Imports what is asked for, and notes each name; `missing` names fail as if not installed. */
function loader(missing: readonly string[] = []): { load: (name: string) => Promise<unknown>; asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    load: async (name) => {
      asked.push(name);
      if (missing.includes(name)) throw new Error(`Cannot find package '${name}'`);
      return import(name);
    },
  };
}

async function attempt(options: Record<string, unknown>): Promise<unknown> {
  try {
    transports.push((await createTransportAdapter(options)) as never);
    return undefined;
  } catch (e) {
    return e;
  }
}

describe('adapter module: the implementation in the privacy mode (review 3, finding 1)', () => {
  test("privacy 'relay-only' without a platform RTCPeerConnection: werift, and node-datachannel is not even loaded", async () => {
    const l = loader();
    expect(await attempt({ fallback: new MemoryHub().transport(), privacy: 'relay-only', iceServers: TURN, loadModule: l.load })).toBeUndefined();
    expect(created).toHaveLength(1);
    expect(created[0]!.RTCPeerConnection).toBe(WeriftPeerConnection);
    expect(l.asked).not.toContain('node-datachannel');
    // Privacy off: node-datachannel stays the first choice.
    const off = loader();
    expect(await attempt({ fallback: new MemoryHub().transport(), loadModule: off.load })).toBeUndefined();
    expect(sendsFromHostDespiteRelayPolicy(created[1]!.RTCPeerConnection)).toBe(true);
  });

  test("privacy 'relay-only' without werift: INVALID_ARGUMENT saying why, not node-datachannel", async () => {
    const l = loader(['werift']);
    const error = await attempt({ fallback: new MemoryHub().transport(), privacy: 'relay-only', iceServers: TURN, loadModule: l.load });
    expect(isDeadboltError(error, 'INVALID_ARGUMENT') && error.details.field).toBe('implementation');
    expect((error as Error).message).toMatch(/werift/);
    expect((error as Error).message).toMatch(/host addresses/);
    expect(created).toEqual([]);
  });

  test("privacy 'relay-only' with implementation 'node-datachannel' asked for: refused, naming privacy", async () => {
    const error = await attempt({ fallback: new MemoryHub().transport(), implementation: 'node-datachannel', privacy: 'relay-only', iceServers: TURN, loadModule: loader().load });
    expect(isDeadboltError(error, 'INVALID_ARGUMENT') && error.details.field).toBe('privacy');
  });
});

describe('adapter module: node-datachannel’s class reached another way, in the privacy mode (review 4, finding 1)', () => {
  const cjsPolyfill = createRequire(import.meta.url)('node-datachannel/polyfill') as { RTCPeerConnection: unknown };
  const withGlobal = async (Ctor: unknown, fn: () => Promise<void>): Promise<void> => {
    const g = globalThis as { RTCPeerConnection?: unknown };
    const before = g.RTCPeerConnection;
    g.RTCPeerConnection = Ctor;
    try {
      await fn();
    } finally {
      g.RTCPeerConnection = before;
    }
  };
  const refusedHere = (error: unknown): void => {
    expect(isDeadboltError(error, 'INVALID_ARGUMENT') && error.details.field).toBe('privacy');
    expect(created, 'refused by the adapter module itself, before the transport is created').toHaveLength(0);
  };

  test('options.RTCPeerConnection: the polyfill class (the CommonJS copy, unmarked) is refused', async () => {
    refusedHere(await attempt({ fallback: new MemoryHub().transport(), RTCPeerConnection: cjsPolyfill.RTCPeerConnection, privacy: 'relay-only', iceServers: TURN, loadModule: loader().load }));
  });

  test("the global set to the polyfill class: refused with implementation 'browser' and by default", async () => {
    const polyfill = (await import('node-datachannel/polyfill')) as { RTCPeerConnection: unknown };
    await withGlobal(polyfill.RTCPeerConnection, async () => {
      refusedHere(await attempt({ fallback: new MemoryHub().transport(), implementation: 'browser', privacy: 'relay-only', iceServers: TURN, loadModule: loader().load }));
      refusedHere(await attempt({ fallback: new MemoryHub().transport(), privacy: 'relay-only', iceServers: TURN, loadModule: loader().load }));
    });
  });

  test('privacy off: the same global is taken', async () => {
    const polyfill = (await import('node-datachannel/polyfill')) as { RTCPeerConnection: unknown };
    await withGlobal(polyfill.RTCPeerConnection, async () => {
      expect(await attempt({ fallback: new MemoryHub().transport(), implementation: 'browser', loadModule: loader().load })).toBeUndefined();
      expect(created[0]!.RTCPeerConnection).toBe(polyfill.RTCPeerConnection);
    });
  });
});

describe('adapter module: node-datachannel’s readers reach the transport (review 3, finding 6)', () => {
  test('remoteFingerprint and selectedCandidatePair are forwarded; an application’s own take precedence', async () => {
    expect(await attempt({ fallback: new MemoryHub().transport(), implementation: 'node-datachannel', loadModule: loader().load })).toBeUndefined();
    expect(typeof created[0]!.remoteFingerprint).toBe('function');
    expect(typeof created[0]!.selectedCandidatePair).toBe('function');
    const own = (): undefined => undefined;
    expect(await attempt({ fallback: new MemoryHub().transport(), implementation: 'node-datachannel', selectedCandidatePair: own, loadModule: loader().load })).toBeUndefined();
    expect(created[1]!.selectedCandidatePair).toBe(own);
  });
});
