/**
 * The relay store conformance suite: every numbered invariant of the relay store contract
 * (`RelayStore` in `@deadbolt/relay`, `src/store.ts`), as one vitest `describe` block that
 * every relay store runs once.
 *
 * The test-kit depends on neither `@deadbolt/core` nor `@deadbolt/relay` (the relay runs
 * this suite, so importing it would be a cycle): {@link RelayStoreContract} restates the
 * contract's shape structurally, and a store that implements `RelayStore` is accepted by
 * the type checker. Everything is opaque bytes: no certificate, key or frame is decoded.
 *
 * @module
 */
import { describe, expect, it } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import { expectBytesEqual, patternBytes } from './bytes.js';

/** A device address as a relay store sees it. */
export interface RelayStoreContractAddress {
  readonly userId: string;
  readonly deviceId: string;
}

/** One one-time prekey: id and opaque bytes. */
export interface RelayStoreContractPrekey {
  readonly id: number;
  readonly key: Uint8Array;
}

/** A queued message. */
export interface RelayStoreContractMessage {
  readonly id: string;
  readonly from: RelayStoreContractAddress;
  readonly receivedAt: number;
  readonly frame: Uint8Array;
}

/** A user and its device list version (0: none). */
export interface RelayStoreContractListVersion {
  readonly userId: string;
  readonly listVersion: number;
}

/** The outcome of an enqueue. */
export type RelayStoreContractEnqueueResult =
  | { readonly ok: true; readonly ids: readonly string[] }
  | { readonly ok: false; readonly reason: 'unknown-device' | 'mailbox-full'; readonly to: RelayStoreContractAddress }
  | { readonly ok: false; readonly reason: 'list-mismatch'; readonly users: readonly RelayStoreContractListVersion[] };

/** Mailbox bounds of an enqueue. */
export interface RelayStoreContractQuota {
  readonly maxMessages: number;
  readonly maxBytes: number;
  readonly maxPerSender: number;
}

/**
 * The relay store contract (`deadbolt.relay-store.v2`), restated structurally. See
 * `RelayStore` in `@deadbolt/relay` for the documentation of each method.
 */
export interface RelayStoreContract {
  readonly specificationVersion: 'deadbolt.relay-store.v2';
  getAccountKey(userId: string): Promise<Uint8Array | undefined>;
  setAccountKey(userId: string, accountKey: Uint8Array, expected: Uint8Array | undefined): Promise<boolean>;
  getDeviceList(userId: string): Promise<{ readonly version: number; readonly list: Uint8Array } | undefined>;
  putDeviceList(
    userId: string,
    accountKey: Uint8Array,
    version: number,
    list: Uint8Array,
    keep: readonly { readonly deviceId: string; readonly certificate: Uint8Array }[],
  ): Promise<
    | { readonly ok: true; readonly changed: boolean; readonly removed: readonly string[] }
    | { readonly ok: false; readonly reason: 'account-mismatch' | 'stale' | 'conflict' }
  >;
  registerDevice(
    address: RelayStoreContractAddress,
    accountKey: Uint8Array,
    certificate: Uint8Array,
    maxDevices: number,
    listVersion: number,
  ): Promise<'registered' | 'unchanged' | 'replaced' | 'account-mismatch' | 'list-mismatch' | 'too-many-devices'>;
  getDevice(address: RelayStoreContractAddress): Promise<Uint8Array | undefined>;
  listDevices(userId: string): Promise<{ readonly deviceId: string; readonly certificate: Uint8Array }[]>;
  putPrekeys(
    address: RelayStoreContractAddress,
    put: {
      readonly signedPrekey: Uint8Array;
      readonly lastResortPrekey: Uint8Array;
      readonly oneTimePrekeys: readonly RelayStoreContractPrekey[];
      readonly pqPrekeys: readonly RelayStoreContractPrekey[];
    },
    quota: { readonly maxOneTime: number; readonly maxPq: number; readonly rememberConsumed: number },
  ): Promise<
    | { readonly ok: true; readonly counts: { readonly oneTime: number; readonly pq: number } }
    | { readonly ok: false; readonly reason: 'unknown-device' | 'quota' }
  >;
  takeBundle(address: RelayStoreContractAddress): Promise<
    | {
        readonly signedPrekey: Uint8Array;
        readonly lastResortPrekey: Uint8Array;
        readonly oneTimePrekey?: RelayStoreContractPrekey;
        readonly pqPrekey?: RelayStoreContractPrekey;
        readonly remaining: { readonly oneTime: number; readonly pq: number };
      }
    | undefined
  >;
  prekeyCounts(address: RelayStoreContractAddress): Promise<{ readonly oneTime: number; readonly pq: number }>;
  enqueue(
    batch: {
      readonly from: RelayStoreContractAddress;
      readonly receivedAt: number;
      readonly messages: readonly { readonly to: RelayStoreContractAddress; readonly frame: Uint8Array }[];
      readonly expectedLists?: readonly RelayStoreContractListVersion[];
    },
    quota: RelayStoreContractQuota,
  ): Promise<RelayStoreContractEnqueueResult>;
  enqueueShared(
    batch: {
      readonly from: RelayStoreContractAddress;
      readonly receivedAt: number;
      readonly to: readonly RelayStoreContractAddress[];
      readonly frame: Uint8Array;
      readonly expectedLists?: readonly RelayStoreContractListVersion[];
    },
    quota: RelayStoreContractQuota,
  ): Promise<RelayStoreContractEnqueueResult>;
  fetch(
    mailbox: RelayStoreContractAddress,
    options: { readonly limit: number; readonly maxBytes?: number; readonly exclude?: ReadonlySet<string> },
  ): Promise<RelayStoreContractMessage[]>;
  ack(mailbox: RelayStoreContractAddress, ids: readonly string[]): Promise<number>;
  stats(mailbox: RelayStoreContractAddress): Promise<{ readonly messages: number; readonly bytes: number }>;
  close(): Promise<void>;
}

/**
 * How the suite opens the store under test.
 *
 * Each case calls `create()` for a fresh, *empty* store; after the case the suite closes
 * every store it obtained (`close()` is idempotent), then calls `teardown()`.
 *
 * @example
 * ```ts
 * let dir = '';
 * const paths = new WeakMap<RelayStoreContract, string>();
 * const factory: RelayStoreConformanceFactory = {
 *   async create() {
 *     dir ||= await mkdtemp(join(tmpdir(), 'relay-store-'));
 *     const path = join(dir, `${randomUUID()}.db`);
 *     const store = createSqliteRelayStore({ path });
 *     paths.set(store, path);
 *     return store;
 *   },
 *   async reopen(previous) {
 *     await previous.close();
 *     const store = createSqliteRelayStore({ path: paths.get(previous)! });
 *     paths.set(store, paths.get(previous)!);
 *     return store;
 *   },
 * };
 * ```
 */
export interface RelayStoreConformanceFactory {
  /** A new store over a new, empty backend. */
  create(): Promise<RelayStoreContract>;
  /**
   * For persistent stores: closes `previous` (if not closed yet) and opens a new store over
   * the *same* backend. Without it the durability cases are reported as skipped.
   */
  reopen?(previous: RelayStoreContract): Promise<RelayStoreContract>;
  /** Releases whatever `create()` allocated, after each case. */
  teardown?(): Promise<void>;
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

interface Ctx {
  open(): Promise<RelayStoreContract>;
  reopen(previous: RelayStoreContract): Promise<RelayStoreContract>;
}

const QUOTA = Object.freeze({ maxMessages: 10_000, maxBytes: 64 * 1024 * 1024, maxPerSender: 1000 });
const PREKEY_QUOTA = Object.freeze({ maxOneTime: 2000, maxPq: 400, rememberConsumed: 10_000 });
const MAX_DEVICES = 100;

const addr = (userId: string, deviceId: string): RelayStoreContractAddress => ({ userId, deviceId });
const accountKeyOf = (userId: string, variant = 0): Uint8Array => patternBytes(32, hashSeed(`account:${userId}:${variant}`));
const certOf = (a: RelayStoreContractAddress, variant = 0): Uint8Array => patternBytes(180, hashSeed(`cert:${a.userId}/${a.deviceId}:${variant}`));

function hashSeed(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h | 0;
}

/** Pins the user's account (if needed) and registers the device (against the user's current list version). */
async function device(store: RelayStoreContract, a: RelayStoreContractAddress): Promise<RelayStoreContractAddress> {
  const key = accountKeyOf(a.userId);
  const pinned = await store.getAccountKey(a.userId);
  if (pinned === undefined) expect(await store.setAccountKey(a.userId, key, undefined)).toBe(true);
  const listVersion = (await store.getDeviceList(a.userId))?.version ?? 0;
  expect(['registered', 'unchanged']).toContain(await store.registerDevice(a, key, certOf(a), MAX_DEVICES, listVersion));
  return a;
}

/** Opaque device-list bytes (the store never decodes them). */
const listOf = (userId: string, version: number, variant = 0): Uint8Array => patternBytes(300 + version, hashSeed(`list:${userId}:${version}:${variant}`));
/** What the relay passes as `keep`: devices with the certificate it read for them. */
const kept = (...devices: RelayStoreContractAddress[]) => devices.map((d) => ({ deviceId: d.deviceId, certificate: certOf(d) }));

function prekeys(seed: number, oneTimeIds: readonly number[], pqIds: readonly number[] = []) {
  return {
    signedPrekey: patternBytes(100, seed),
    lastResortPrekey: patternBytes(1252, seed + 1),
    oneTimePrekeys: oneTimeIds.map((id) => ({ id, key: patternBytes(36, seed * 1000 + id) })),
    pqPrekeys: pqIds.map((id) => ({ id, key: patternBytes(1252, -(seed * 1000 + id)) })),
  };
}

function frame(n: number, size = 64): Uint8Array {
  return patternBytes(size, 0x5eed + n);
}

function okIds(result: RelayStoreContractEnqueueResult): readonly string[] {
  if (!result.ok) {
    const who = result.reason === 'list-mismatch' ? result.users.map((u) => u.userId).join(', ') : `${result.to.userId}/${result.to.deviceId}`;
    throw new Error(`enqueue refused: ${result.reason} for ${who}`);
  }
  return result.ids;
}

/**
 * Nothing is stored for the device `a` (never registered, or deleted with everything it
 * had): no certificate, no bundle (taking one would hand out nothing), no prekeys, an
 * empty mailbox.
 */
async function expectNothingStoredFor(store: RelayStoreContract, a: RelayStoreContractAddress): Promise<void> {
  const who = `${a.userId}/${a.deviceId}`;
  expect(await store.getDevice(a), `certificate of ${who}`).toBeUndefined();
  expect(await store.takeBundle(a), `bundle of ${who}`).toBeUndefined();
  expect(await store.prekeyCounts(a), `prekey counts of ${who}`).toEqual({ oneTime: 0, pq: 0 });
  expect(await store.fetch(a, { limit: 100 }), `mailbox of ${who}`).toEqual([]);
  expect(await store.stats(a), `mailbox stats of ${who}`).toEqual({ messages: 0, bytes: 0 });
}

async function expectClosedRejection(what: string, call: () => Promise<unknown>): Promise<void> {
  let result: Promise<unknown>;
  try {
    result = call();
  } catch (e) {
    throw new Error(`${what}: threw synchronously after close instead of rejecting`, { cause: e });
  }
  let error: unknown;
  try {
    await result;
  } catch (e) {
    error = e;
  }
  if (!isDeadboltError(error, 'CLOSED')) throw new Error(`${what}: expected a CLOSED rejection after close`, { cause: error });
}

interface Case {
  readonly name: string;
  readonly needsReopen?: boolean;
  run(ctx: Ctx): Promise<void>;
}

/** A device named `user/device`, as the cases list the devices they start with. */
type DeviceName = `${string}/${string}`;

/** One address per name of `N`, in the same order. */
type AddressesOf<N extends readonly DeviceName[]> = { -readonly [K in keyof N]: RelayStoreContractAddress };

/**
 * The body of most cases: a fresh store (from `open()`) with the devices `names` registered
 * on it, in order (see {@link device}); `body` gets the store and their addresses.
 *
 * @example
 * ```ts
 * run: withStore(['alice/phone', 'bob/laptop'], async (store, a, b) => {
 *   okIds(await store.enqueue({ from: a, receivedAt: 1, messages: [{ to: b, frame: frame(1) }] }, QUOTA));
 * }),
 * ```
 */
function withStore<const N extends readonly DeviceName[]>(
  names: N,
  body: (store: RelayStoreContract, ...devices: AddressesOf<N>) => Promise<void>,
): Case['run'] {
  return async ({ open }) => {
    const store = await open();
    const devices: RelayStoreContractAddress[] = [];
    for (const name of names) {
      const slash = name.indexOf('/');
      devices.push(await device(store, addr(name.slice(0, slash), name.slice(slash + 1))));
    }
    await body(store, ...(devices as AddressesOf<N>));
  };
}

const GROUPS: readonly { readonly title: string; readonly cases: readonly Case[] }[] = [
  {
    title: '0. the store interface',
    cases: [
      {
        name: 'declares deadbolt.relay-store.v1 and every method',
        run: withStore([], async (store) => {
          expect(store.specificationVersion).toBe('deadbolt.relay-store.v2');
          for (const m of [
            'getAccountKey',
            'setAccountKey',
            'getDeviceList',
            'putDeviceList',
            'registerDevice',
            'getDevice',
            'listDevices',
            'putPrekeys',
            'takeBundle',
            'prekeyCounts',
            'enqueue',
            'enqueueShared',
            'fetch',
            'ack',
            'stats',
            'close',
          ] as const) {
            expect(typeof store[m], m).toBe('function');
          }
        }),
      },
      {
        name: 'a fresh store is empty',
        run: withStore([], async (store) => {
          const a = addr('alice', 'phone');
          expect(await store.getAccountKey('alice')).toBeUndefined();
          expect(await store.getDeviceList('alice')).toBeUndefined();
          expect(await store.listDevices('alice')).toEqual([]);
          await expectNothingStoredFor(store, a);
          expect(await store.ack(a, ['x'])).toBe(0);
        }),
      },
    ],
  },
  {
    title: '1. atomic operations',
    cases: [
      {
        name: 'concurrent enqueues into a nearly full mailbox never exceed the quota',
        run: withStore(['bob/laptop'], async (store, bob) => {
          const senders = await Promise.all(Array.from({ length: 30 }, (_, i) => device(store, addr(`s${i}`, 'd'))));
          const quota = { ...QUOTA, maxMessages: 10 };
          const results = await Promise.all(senders.map((from, i) => store.enqueue({ from, receivedAt: i, messages: [{ to: bob, frame: frame(i) }] }, quota)));
          expect(results.filter((r) => r.ok)).toHaveLength(10);
          expect(results.filter((r) => !r.ok && r.reason === 'mailbox-full')).toHaveLength(20);
          expect((await store.stats(bob)).messages).toBe(10);
          expect(await store.fetch(bob, { limit: 100 })).toHaveLength(10);
        }),
      },
      {
        name: 'concurrent first pins of different keys: exactly one wins',
        run: withStore([], async (store) => {
          const keys = Array.from({ length: 10 }, (_, i) => accountKeyOf('carol', i));
          const won = await Promise.all(keys.map((k) => store.setAccountKey('carol', k, undefined)));
          expect(won.filter(Boolean)).toHaveLength(1);
          const winner = keys[won.indexOf(true)] as Uint8Array;
          expectBytesEqual(await store.getAccountKey('carol'), winner, 'pinned key');
        }),
      },
    ],
  },
  {
    title: '2. accounts',
    cases: [
      {
        name: 'setAccountKey is a compare-and-set',
        run: withStore([], async (store) => {
          const k1 = accountKeyOf('alice', 1);
          const k2 = accountKeyOf('alice', 2);
          expect(await store.setAccountKey('alice', k1, k2)).toBe(false);
          expect(await store.getAccountKey('alice')).toBeUndefined();
          expect(await store.setAccountKey('alice', k1, undefined)).toBe(true);
          expect(await store.setAccountKey('alice', k2, undefined)).toBe(false);
          expect(await store.setAccountKey('alice', k2, k2)).toBe(false);
          expectBytesEqual(await store.getAccountKey('alice'), k1, 'still the first key');
          expect(await store.setAccountKey('alice', k1, k1)).toBe(true);
          expect(await store.setAccountKey('alice', k2, k1)).toBe(true);
          expectBytesEqual(await store.getAccountKey('alice'), k2, 'replaced key');
          expect(await store.getAccountKey('alic')).toBeUndefined();
        }),
      },
      {
        name: "replacing a user's key deletes that user's devices, prekeys and mailboxes, and nobody else's",
        run: withStore(['alice/phone', 'bob/laptop'], async (store, a, b) => {
          expect((await store.putPrekeys(a, prekeys(1, [1, 2], [3]), PREKEY_QUOTA)).ok).toBe(true);
          expect((await store.putPrekeys(b, prekeys(2, [1, 2], [3]), PREKEY_QUOTA)).ok).toBe(true);
          okIds(await store.enqueue({ from: b, receivedAt: 1, messages: [{ to: a, frame: frame(1) }] }, QUOTA));
          okIds(await store.enqueue({ from: a, receivedAt: 1, messages: [{ to: b, frame: frame(2) }] }, QUOTA));

          // Re-pinning the same key changes nothing.
          expect(await store.setAccountKey('alice', accountKeyOf('alice'), accountKeyOf('alice'))).toBe(true);
          expect(await store.listDevices('alice')).toHaveLength(1);

          const k2 = accountKeyOf('alice', 9);
          expect(await store.setAccountKey('alice', k2, accountKeyOf('alice'))).toBe(true);
          expect(await store.listDevices('alice')).toEqual([]);
          await expectNothingStoredFor(store, a);
          // Bob keeps everything, including the message Alice sent him.
          expect(await store.listDevices('bob')).toHaveLength(1);
          expect(await store.prekeyCounts(b)).toEqual({ oneTime: 2, pq: 1 });
          expect(await store.fetch(b, { limit: 10 })).toHaveLength(1);
          // A device under the new key can register and start with an empty mailbox.
          expect(await store.registerDevice(a, k2, certOf(a, 2), MAX_DEVICES, 0)).toBe('registered');
          expect(await store.fetch(a, { limit: 10 })).toEqual([]);
        }),
      },
      {
        name: "replacing a user's key deletes that user's device list; a list is stored only under the pinned key",
        run: withStore(['alice/phone'], async (store, a) => {
          expect(await store.putDeviceList('alice', accountKeyOf('alice', 9), 1, listOf('alice', 1), kept(a))).toEqual({ ok: false, reason: 'account-mismatch' });
          expect(await store.putDeviceList('nobody', accountKeyOf('nobody'), 1, listOf('nobody', 1), [])).toEqual({ ok: false, reason: 'account-mismatch' });
          expect(await store.getDeviceList('alice')).toBeUndefined();
          expect(await store.putDeviceList('alice', accountKeyOf('alice'), 3, listOf('alice', 3), kept(a))).toEqual({ ok: true, changed: true, removed: [] });
          expect(await store.setAccountKey('alice', accountKeyOf('alice', 2), accountKeyOf('alice'))).toBe(true);
          expect(await store.getDeviceList('alice')).toBeUndefined();
          // The new account starts without a list: version 1 is accepted again.
          expect((await store.putDeviceList('alice', accountKeyOf('alice', 2), 1, listOf('alice', 1, 2), [])).ok).toBe(true);
        }),
      },
    ],
  },
  {
    title: '3. devices',
    cases: [
      {
        name: 'a device registers only under the pinned account key',
        run: withStore([], async (store) => {
          const a = addr('alice', 'phone');
          expect(await store.registerDevice(a, accountKeyOf('alice'), certOf(a), MAX_DEVICES, 0)).toBe('account-mismatch');
          expect(await store.setAccountKey('alice', accountKeyOf('alice'), undefined)).toBe(true);
          expect(await store.registerDevice(a, accountKeyOf('alice', 1), certOf(a), MAX_DEVICES, 0)).toBe('account-mismatch');
          expect(await store.getDevice(a)).toBeUndefined();
          expect(await store.registerDevice(a, accountKeyOf('alice'), certOf(a), MAX_DEVICES, 0)).toBe('registered');
          expectBytesEqual(await store.getDevice(a), certOf(a), 'certificate');
          expect(await store.registerDevice(a, accountKeyOf('alice'), certOf(a), MAX_DEVICES, 0)).toBe('unchanged');
        }),
      },
      {
        name: "a new certificate replaces the device and deletes its prekeys, not its mailbox",
        run: withStore(['alice/phone', 'bob/laptop'], async (store, a, b) => {
          expect((await store.putPrekeys(a, prekeys(1, [1, 2, 3], [4, 5]), PREKEY_QUOTA)).ok).toBe(true);
          const taken = await store.takeBundle(a);
          expect(taken?.oneTimePrekey?.id).toBe(1);
          okIds(await store.enqueue({ from: b, receivedAt: 1, messages: [{ to: a, frame: frame(1) }] }, QUOTA));
          expect(await store.registerDevice(a, accountKeyOf('alice'), certOf(a, 1), MAX_DEVICES, 0)).toBe('replaced');
          expectBytesEqual(await store.getDevice(a), certOf(a, 1), 'new certificate');
          expect(await store.takeBundle(a)).toBeUndefined();
          expect(await store.prekeyCounts(a)).toEqual({ oneTime: 0, pq: 0 });
          expect(await store.fetch(a, { limit: 10 })).toHaveLength(1);
          // The new device key numbers its prekeys afresh: id 1 is accepted again.
          const put = await store.putPrekeys(a, prekeys(7, [1, 2], [4]), PREKEY_QUOTA);
          expect(put).toEqual({ ok: true, counts: { oneTime: 2, pq: 1 } });
        }),
      },
      {
        name: 'devices list in code-unit order of their ids, per user',
        run: withStore([], async (store) => {
          for (const d of ['tablet', 'B', 'a', 'laptop', 'a.1', '9']) await device(store, addr('alice', d));
          await device(store, addr('alice2', 'z'));
          await device(store, addr('alic', 'y'));
          const list = await store.listDevices('alice');
          expect(list.map((d) => d.deviceId)).toEqual(['9', 'B', 'a', 'a.1', 'laptop', 'tablet']);
          for (const d of list) expectBytesEqual(d.certificate, certOf(addr('alice', d.deviceId)), `certificate of ${d.deviceId}`);
          expect(await store.listDevices('unknown')).toEqual([]);
        }),
      },
      {
        name: 'a device registers only against the current list version (0: none); re-registering checks it too',
        run: withStore(['alice/phone'], async (store, phone) => {
          const key = accountKeyOf('alice');
          const laptop = addr('alice', 'laptop');
          expect(await store.registerDevice(laptop, key, certOf(laptop), MAX_DEVICES, 1)).toBe('list-mismatch');
          expect((await store.putDeviceList('alice', key, 2, listOf('alice', 2), kept(phone))).ok).toBe(true);
          expect(await store.registerDevice(laptop, key, certOf(laptop), MAX_DEVICES, 0)).toBe('list-mismatch');
          expect(await store.registerDevice(laptop, key, certOf(laptop), MAX_DEVICES, 1)).toBe('list-mismatch');
          expect(await store.getDevice(laptop)).toBeUndefined();
          expect(await store.registerDevice(phone, key, certOf(phone, 1), MAX_DEVICES, 1)).toBe('list-mismatch');
          expectBytesEqual(await store.getDevice(phone), certOf(phone), 'the phone keeps its certificate');
          expect(await store.registerDevice(laptop, key, certOf(laptop), MAX_DEVICES, 2)).toBe('registered');
          expect(await store.registerDevice(phone, key, certOf(phone), MAX_DEVICES, 2)).toBe('unchanged');
        }),
      },
      {
        name: 'registration stops at maxDevices; existing devices may still re-register',
        run: withStore([], async (store) => {
          const key = accountKeyOf('alice');
          await store.setAccountKey('alice', key, undefined);
          for (let i = 0; i < 3; i++) expect(await store.registerDevice(addr('alice', `d${i}`), key, certOf(addr('alice', `d${i}`)), 3, 0)).toBe('registered');
          expect(await store.registerDevice(addr('alice', 'd3'), key, certOf(addr('alice', 'd3')), 3, 0)).toBe('too-many-devices');
          expect(await store.getDevice(addr('alice', 'd3'))).toBeUndefined();
          expect(await store.registerDevice(addr('alice', 'd1'), key, certOf(addr('alice', 'd1')), 3, 0)).toBe('unchanged');
          expect(await store.registerDevice(addr('alice', 'd1'), key, certOf(addr('alice', 'd1'), 1), 3, 0)).toBe('replaced');
        }),
      },
    ],
  },
  {
    title: '4. prekeys',
    cases: [
      {
        name: 'putting the same upload twice changes nothing (idempotent by id)',
        run: withStore(['alice/phone'], async (store, a) => {
          expect(await store.putPrekeys(a, prekeys(1, [1, 2, 3], [10, 11]), PREKEY_QUOTA)).toEqual({ ok: true, counts: { oneTime: 3, pq: 2 } });
          expect(await store.putPrekeys(a, prekeys(1, [1, 2, 3], [10, 11]), PREKEY_QUOTA)).toEqual({ ok: true, counts: { oneTime: 3, pq: 2 } });
          expect(await store.prekeyCounts(a)).toEqual({ oneTime: 3, pq: 2 });
          // Overlapping upload: only the new ids are added; an existing id keeps its first bytes.
          expect(await store.putPrekeys(a, prekeys(2, [3, 4], [11, 12]), PREKEY_QUOTA)).toEqual({ ok: true, counts: { oneTime: 4, pq: 3 } });
          const ids: number[] = [];
          for (let i = 0; i < 4; i++) {
            const t = await store.takeBundle(a);
            ids.push(t?.oneTimePrekey?.id ?? -1);
            if (t?.oneTimePrekey?.id === 3) expectBytesEqual(t.oneTimePrekey.key, prekeys(1, [3]).oneTimePrekeys[0]!.key, 'first bytes of id 3');
          }
          expect(ids).toEqual([1, 2, 3, 4]);
        }),
      },
      {
        name: 'a handed-out one-time key is never stored again by a repeated upload',
        run: withStore(['alice/phone'], async (store, a) => {
          const upload = prekeys(1, [1, 2, 3], [10, 11]);
          await store.putPrekeys(a, upload, PREKEY_QUOTA);
          const first = await store.takeBundle(a);
          expect([first?.oneTimePrekey?.id, first?.pqPrekey?.id]).toEqual([1, 10]);
          expect(await store.putPrekeys(a, upload, PREKEY_QUOTA)).toEqual({ ok: true, counts: { oneTime: 2, pq: 1 } });
          const rest = [await store.takeBundle(a), await store.takeBundle(a), await store.takeBundle(a)];
          expect(rest.map((t) => t?.oneTimePrekey?.id)).toEqual([2, 3, undefined]);
          expect(rest.map((t) => t?.pqPrekey?.id)).toEqual([11, undefined, undefined]);
        }),
      },
      {
        name: 'the signed and last-resort keys are replaced by each upload',
        run: withStore(['alice/phone'], async (store, a) => {
          await store.putPrekeys(a, prekeys(1, []), PREKEY_QUOTA);
          await store.putPrekeys(a, prekeys(2, []), PREKEY_QUOTA);
          const t = await store.takeBundle(a);
          expectBytesEqual(t?.signedPrekey, prekeys(2, []).signedPrekey, 'signed prekey');
          expectBytesEqual(t?.lastResortPrekey, prekeys(2, []).lastResortPrekey, 'last-resort prekey');
          expect(t?.oneTimePrekey).toBeUndefined();
          expect(t?.pqPrekey).toBeUndefined();
        }),
      },
      {
        name: 'an upload over the quota stores nothing; an unknown device stores nothing',
        run: withStore(['alice/phone'], async (store, a) => {
          const quota = { maxOneTime: 5, maxPq: 2, rememberConsumed: 100 };
          expect((await store.putPrekeys(a, prekeys(1, [1, 2, 3], [10]), quota)).ok).toBe(true);
          expect(await store.putPrekeys(a, prekeys(2, [4, 5, 6], []), quota)).toEqual({ ok: false, reason: 'quota' });
          expect(await store.putPrekeys(a, prekeys(2, [], [11, 12]), quota)).toEqual({ ok: false, reason: 'quota' });
          expect(await store.prekeyCounts(a)).toEqual({ oneTime: 3, pq: 1 });
          const t = await store.takeBundle(a);
          expectBytesEqual(t?.signedPrekey, prekeys(1, []).signedPrekey, 'signed prekey unchanged by the refused upload');
          // Re-sending ids already stored (2, 3) or handed out (1, PQ 10) does not count
          // against the quota.
          expect((await store.putPrekeys(a, prekeys(1, [1, 2, 3, 4, 5, 6], [10, 11, 12]), quota)).ok).toBe(true);
          expect(await store.prekeyCounts(a)).toEqual({ oneTime: 5, pq: 2 });
          const ghost = addr('alice', 'ghost');
          expect(await store.putPrekeys(ghost, prekeys(1, [1]), PREKEY_QUOTA)).toEqual({ ok: false, reason: 'unknown-device' });
          expect(await store.prekeyCounts(ghost)).toEqual({ oneTime: 0, pq: 0 });
        }),
      },
      {
        name: 'one-time X25519 and PQ ids are separate namespaces; devices are separate',
        run: withStore(['alice/phone', 'alice/laptop'], async (store, a, b) => {
          expect(await store.putPrekeys(a, prekeys(1, [5], [5]), PREKEY_QUOTA)).toEqual({ ok: true, counts: { oneTime: 1, pq: 1 } });
          expect(await store.putPrekeys(b, prekeys(2, [5], [5]), PREKEY_QUOTA)).toEqual({ ok: true, counts: { oneTime: 1, pq: 1 } });
          const t = await store.takeBundle(a);
          expect([t?.oneTimePrekey?.id, t?.pqPrekey?.id]).toEqual([5, 5]);
          expect(await store.prekeyCounts(b)).toEqual({ oneTime: 1, pq: 1 });
        }),
      },
    ],
  },
  {
    title: '5. bundles',
    cases: [
      {
        name: 'takeBundle removes the lowest one-time and PQ keys together and reports what is left',
        run: withStore(['alice/phone'], async (store, a) => {
          const upload = prekeys(3, [30, 7, 12], [100, 99]);
          await store.putPrekeys(a, upload, PREKEY_QUOTA);
          const t1 = await store.takeBundle(a);
          expect(t1?.oneTimePrekey?.id).toBe(7);
          expect(t1?.pqPrekey?.id).toBe(99);
          expectBytesEqual(t1?.oneTimePrekey?.key, upload.oneTimePrekeys[1]!.key, 'one-time key bytes');
          expectBytesEqual(t1?.pqPrekey?.key, upload.pqPrekeys[1]!.key, 'pq key bytes');
          expect(t1?.remaining).toEqual({ oneTime: 2, pq: 1 });
          const t2 = await store.takeBundle(a);
          expect([t2?.oneTimePrekey?.id, t2?.pqPrekey?.id]).toEqual([12, 100]);
          expect(t2?.remaining).toEqual({ oneTime: 1, pq: 0 });
          // PQ ran out: absent (the relay serves the last-resort key); X25519 still served.
          const t3 = await store.takeBundle(a);
          expect([t3?.oneTimePrekey?.id, t3?.pqPrekey]).toEqual([30, undefined]);
          expectBytesEqual(t3?.lastResortPrekey, upload.lastResortPrekey, 'last-resort key');
          const t4 = await store.takeBundle(a);
          expect(t4?.oneTimePrekey).toBeUndefined();
          expect(t4?.pqPrekey).toBeUndefined();
          expect(t4?.remaining).toEqual({ oneTime: 0, pq: 0 });
          expect(await store.prekeyCounts(a)).toEqual({ oneTime: 0, pq: 0 });
        }),
      },
      {
        name: 'PQ keys are still served when X25519 one-time keys have run out',
        run: withStore(['alice/phone'], async (store, a) => {
          await store.putPrekeys(a, prekeys(1, [1], [10, 11]), PREKEY_QUOTA);
          await store.takeBundle(a);
          const t = await store.takeBundle(a);
          expect(t?.oneTimePrekey).toBeUndefined();
          expect(t?.pqPrekey?.id).toBe(11);
        }),
      },
      {
        name: 'concurrent takes never hand out one one-time key twice',
        run: withStore(['alice/phone'], async (store, a) => {
          const ot = Array.from({ length: 60 }, (_, i) => i + 1);
          const pq = Array.from({ length: 25 }, (_, i) => i + 1000);
          await store.putPrekeys(a, prekeys(4, ot, pq), PREKEY_QUOTA);
          const takes = await Promise.all(Array.from({ length: 80 }, () => store.takeBundle(a)));
          const otIds = takes.map((t) => t?.oneTimePrekey?.id).filter((id): id is number => id !== undefined);
          const pqIds = takes.map((t) => t?.pqPrekey?.id).filter((id): id is number => id !== undefined);
          expect(new Set(otIds).size).toBe(otIds.length);
          expect(new Set(pqIds).size).toBe(pqIds.length);
          expect(otIds.sort((x, y) => x - y)).toEqual(ot);
          expect(pqIds.sort((x, y) => x - y)).toEqual(pq);
          expect(await store.prekeyCounts(a)).toEqual({ oneTime: 0, pq: 0 });
        }),
      },
      {
        name: 'a device without a signed prekey yields no bundle and loses nothing',
        run: withStore(['alice/phone'], async (store, a) => {
          expect(await store.takeBundle(a)).toBeUndefined();
          expect(await store.takeBundle(addr('nobody', 'x'))).toBeUndefined();
          expect(await store.prekeyCounts(a)).toEqual({ oneTime: 0, pq: 0 });
        }),
      },
    ],
  },
  {
    title: '6. mailboxes: enqueue',
    cases: [
      {
        name: 'a batch over the quota for one recipient stores nothing for any recipient',
        run: withStore(['alice/phone', 'bob/laptop', 'bob/phone', 'carol/desk'], async (store, from, b1, b2, c) => {
          const quota = { ...QUOTA, maxMessages: 3 };
          okIds(await store.enqueue({ from, receivedAt: 1, messages: [{ to: b2, frame: frame(1) }, { to: b2, frame: frame(2) }, { to: b2, frame: frame(3) }] }, quota));
          const refused = await store.enqueue(
            { from, receivedAt: 2, messages: [{ to: b1, frame: frame(4) }, { to: c, frame: frame(5) }, { to: b2, frame: frame(6) }] },
            quota,
          );
          expect(refused).toEqual({ ok: false, reason: 'mailbox-full', to: b2 });
          expect(await store.stats(b1)).toEqual({ messages: 0, bytes: 0 });
          expect(await store.stats(c)).toEqual({ messages: 0, bytes: 0 });
          expect((await store.stats(b2)).messages).toBe(3);
        }),
      },
      {
        name: 'an unknown recipient device refuses the whole batch',
        run: withStore(['alice/phone', 'bob/laptop'], async (store, from, b) => {
          const ghost = addr('bob', 'ghost');
          expect(await store.enqueue({ from, receivedAt: 1, messages: [{ to: b, frame: frame(1) }, { to: ghost, frame: frame(2) }] }, QUOTA)).toEqual({
            ok: false,
            reason: 'unknown-device',
            to: ghost,
          });
          expect(await store.stats(b)).toEqual({ messages: 0, bytes: 0 });
          expect(await store.fetch(ghost, { limit: 10 })).toEqual([]);
        }),
      },
      {
        name: 'messages of one batch to the same mailbox count together; byte quota',
        run: withStore(['alice/phone', 'bob/laptop'], async (store, from, b) => {
          const quota = { maxMessages: 100, maxBytes: 1000, maxPerSender: 100 };
          expect((await store.enqueue({ from, receivedAt: 1, messages: [{ to: b, frame: frame(1, 600) }, { to: b, frame: frame(2, 600) }] }, quota)).ok).toBe(false);
          expect(await store.stats(b)).toEqual({ messages: 0, bytes: 0 });
          okIds(await store.enqueue({ from, receivedAt: 1, messages: [{ to: b, frame: frame(1, 600) }, { to: b, frame: frame(2, 400) }] }, quota));
          expect(await store.stats(b)).toEqual({ messages: 2, bytes: 1000 });
          expect(await store.enqueue({ from, receivedAt: 2, messages: [{ to: b, frame: frame(3, 1) }] }, quota)).toEqual({ ok: false, reason: 'mailbox-full', to: b });
          expect((await store.enqueue({ from, receivedAt: 1, messages: [{ to: b, frame: new Uint8Array(0) }] }, quota)).ok).toBe(true);
        }),
      },
      {
        name: 'the per-sender quota counts the sender user (all its devices) in one mailbox',
        run: withStore(['alice/phone', 'alice/laptop', 'carol/desk', 'bob/laptop', 'bob/tablet'], async (store, a1, a2, c, b, b2) => {
          const quota = { ...QUOTA, maxPerSender: 2 };
          okIds(await store.enqueue({ from: a1, receivedAt: 1, messages: [{ to: b, frame: frame(1) }] }, quota));
          okIds(await store.enqueue({ from: a2, receivedAt: 1, messages: [{ to: b, frame: frame(2) }] }, quota));
          expect(await store.enqueue({ from: a1, receivedAt: 1, messages: [{ to: b, frame: frame(3) }] }, quota)).toEqual({ ok: false, reason: 'mailbox-full', to: b });
          okIds(await store.enqueue({ from: c, receivedAt: 1, messages: [{ to: b, frame: frame(4) }] }, quota));
          okIds(await store.enqueue({ from: a1, receivedAt: 1, messages: [{ to: b2, frame: frame(5) }] }, quota));
          // Acknowledging one of Alice's messages frees one place for her.
          const aliceMessage = (await store.fetch(b, { limit: 10 })).find((m) => m.from.userId === 'alice');
          expect(await store.ack(b, [aliceMessage!.id])).toBe(1);
          okIds(await store.enqueue({ from: a2, receivedAt: 1, messages: [{ to: b, frame: frame(6) }] }, quota));
        }),
      },
      {
        name: 'expected list versions: any mismatch stores nothing and names every mismatching user with its current version (0: none)',
        run: withStore(['alice/phone', 'bob/laptop', 'carol/desk'], async (store, from, b, c) => {
          expect((await store.putDeviceList('bob', accountKeyOf('bob'), 4, listOf('bob', 4), kept(b))).ok).toBe(true);
          const messages = [
            { to: b, frame: frame(1) },
            { to: c, frame: frame(2) },
          ];
          const wrong = await store.enqueue({ from, receivedAt: 1, messages, expectedLists: [{ userId: 'bob', listVersion: 3 }, { userId: 'carol', listVersion: 1 }] }, QUOTA);
          expect(wrong).toEqual({
            ok: false,
            reason: 'list-mismatch',
            users: [
              { userId: 'bob', listVersion: 4 },
              { userId: 'carol', listVersion: 0 },
            ],
          });
          // Checked before anything else: an unknown device in the same batch is not what is reported.
          const ghost = addr('bob', 'ghost');
          expect(await store.enqueue({ from, receivedAt: 1, messages: [{ to: ghost, frame: frame(3) }], expectedLists: [{ userId: 'bob', listVersion: 0 }] }, QUOTA)).toEqual({
            ok: false,
            reason: 'list-mismatch',
            users: [{ userId: 'bob', listVersion: 4 }],
          });
          expect(await store.stats(b)).toEqual({ messages: 0, bytes: 0 });
          expect(await store.stats(c)).toEqual({ messages: 0, bytes: 0 });
          okIds(await store.enqueue({ from, receivedAt: 1, messages, expectedLists: [{ userId: 'bob', listVersion: 4 }, { userId: 'carol', listVersion: 0 }] }, QUOTA));
          // Without expectations nothing is checked (stores of v1 callers behave as before).
          okIds(await store.enqueue({ from, receivedAt: 1, messages }, QUOTA));
          expect((await store.stats(b)).messages).toBe(2);
          expect((await store.stats(c)).messages).toBe(2);
        }),
      },
      {
        name: 'enqueueShared: one frame in every mailbox, ids in recipient order, each mailbox charged the full size',
        run: withStore(['alice/phone', 'bob/laptop', 'bob/phone', 'carol/desk'], async (store, from, b1, b2, c) => {
          const shared = frame(7, 500);
          const ids = okIds(await store.enqueueShared({ from, receivedAt: 42, to: [c, b1, b2], frame: shared }, QUOTA));
          expect(ids).toHaveLength(3);
          for (const [box, id] of [[c, ids[0]], [b1, ids[1]], [b2, ids[2]]] as const) {
            const got = await store.fetch(box, { limit: 10 });
            expect(got.map((m) => m.id)).toEqual([id]);
            expectBytesEqual(got[0]!.frame, shared, `frame in ${box.userId}/${box.deviceId}`);
            expect(got[0]!.from).toEqual(from);
            expect(got[0]!.receivedAt).toBe(42);
            expect(await store.stats(box)).toEqual({ messages: 1, bytes: 500 });
          }
          // Acknowledging one mailbox's copy leaves the others.
          expect(await store.ack(b1, [ids[1]!])).toBe(1);
          expect(await store.stats(b1)).toEqual({ messages: 0, bytes: 0 });
          expectBytesEqual((await store.fetch(b2, { limit: 1 }))[0]?.frame, shared, 'the copy in bob/phone after bob/laptop acknowledged');
        }),
      },
      {
        name: 'enqueueShared is all or none: a full mailbox, an unknown device or a list mismatch stores nothing anywhere',
        run: withStore(['alice/phone', 'bob/laptop', 'carol/desk', 'dave/pc'], async (store, from, b, c, d) => {
          const quota = { maxMessages: 100, maxBytes: 1000, maxPerSender: 2 };
          okIds(await store.enqueue({ from, receivedAt: 1, messages: [{ to: c, frame: frame(1, 600) }] }, quota));
          expect(await store.enqueueShared({ from, receivedAt: 2, to: [b, c, d], frame: frame(2, 500) }, quota)).toEqual({ ok: false, reason: 'mailbox-full', to: c });
          const ghost = addr('dave', 'ghost');
          expect(await store.enqueueShared({ from, receivedAt: 2, to: [b, ghost], frame: frame(2, 10) }, quota)).toEqual({ ok: false, reason: 'unknown-device', to: ghost });
          expect(
            await store.enqueueShared({ from, receivedAt: 2, to: [b, d], frame: frame(2, 10), expectedLists: [{ userId: 'bob', listVersion: 0 }, { userId: 'dave', listVersion: 2 }] }, quota),
          ).toEqual({ ok: false, reason: 'list-mismatch', users: [{ userId: 'dave', listVersion: 0 }] });
          for (const box of [b, d]) expect(await store.stats(box)).toEqual({ messages: 0, bytes: 0 });
          expect(await store.stats(c)).toEqual({ messages: 1, bytes: 600 });
          // The per-sender quota counts per mailbox too.
          okIds(await store.enqueueShared({ from, receivedAt: 3, to: [b, d], frame: frame(3, 10) }, quota));
          okIds(await store.enqueueShared({ from, receivedAt: 3, to: [b, d], frame: frame(4, 10) }, quota));
          expect(await store.enqueueShared({ from, receivedAt: 3, to: [d, b], frame: frame(5, 10) }, quota)).toEqual({ ok: false, reason: 'mailbox-full', to: d });
          expect((await store.stats(b)).messages).toBe(2);
        }),
      },
      {
        name: 'ids are unique opaque strings of 1 to 64 characters; sender and time are recorded',
        run: withStore(['alice/phone', 'bob/laptop'], async (store, from, b) => {
          const ids = new Set<string>();
          for (let i = 0; i < 20; i++) {
            const got = okIds(await store.enqueue({ from, receivedAt: 1_700_000_000_000 + i, messages: [{ to: b, frame: frame(i) }, { to: b, frame: frame(i + 100) }] }, QUOTA));
            expect(got).toHaveLength(2);
            for (const id of got) {
              expect(typeof id).toBe('string');
              expect(id.length).toBeGreaterThanOrEqual(1);
              expect(id.length).toBeLessThanOrEqual(64);
              ids.add(id);
            }
          }
          expect(ids.size).toBe(40);
          const [m] = await store.fetch(b, { limit: 1 });
          expect(m?.from).toEqual({ userId: 'alice', deviceId: 'phone' });
          expect(m?.receivedAt).toBe(1_700_000_000_000);
        }),
      },
    ],
  },
  {
    title: '7. mailboxes: fetch',
    cases: [
      {
        name: 'fetch returns arrival order across and within batches, and removes nothing',
        run: withStore(['alice/phone', 'carol/desk', 'bob/laptop'], async (store, a, c, b) => {
          const expected: string[] = [];
          for (let i = 0; i < 30; i++) {
            const from = i % 3 === 0 ? c : a;
            const ids = okIds(await store.enqueue({ from, receivedAt: 1000 - i, messages: [{ to: b, frame: frame(2 * i) }, { to: b, frame: frame(2 * i + 1) }] }, QUOTA));
            expected.push(...ids);
          }
          const all = await store.fetch(b, { limit: 100 });
          expect(all.map((m) => m.id)).toEqual(expected);
          all.forEach((m, i) => expectBytesEqual(m.frame, frame(i), `frame ${i}`));
          expect((await store.fetch(b, { limit: 100 })).map((m) => m.id)).toEqual(expected);
          // Order survives acknowledging from the middle.
          await store.ack(b, expected.filter((_, i) => i % 4 === 1));
          expect((await store.fetch(b, { limit: 100 })).map((m) => m.id)).toEqual(expected.filter((_, i) => i % 4 !== 1));
        }),
      },
      {
        name: 'limit, exclude and maxBytes (at least one message is returned)',
        run: withStore(['alice/phone', 'bob/laptop'], async (store, a, b) => {
          const ids = okIds(await store.enqueue({ from: a, receivedAt: 1, messages: Array.from({ length: 10 }, (_, i) => ({ to: b, frame: frame(i, 100) })) }, QUOTA));
          expect((await store.fetch(b, { limit: 3 })).map((m) => m.id)).toEqual(ids.slice(0, 3));
          expect((await store.fetch(b, { limit: 3, exclude: new Set([ids[0]!, ids[2]!]) })).map((m) => m.id)).toEqual([ids[1], ids[3], ids[4]]);
          expect((await store.fetch(b, { limit: 10, maxBytes: 350 })).map((m) => m.id)).toEqual(ids.slice(0, 3));
          expect((await store.fetch(b, { limit: 10, maxBytes: 10 })).map((m) => m.id)).toEqual(ids.slice(0, 1));
          expect(await store.fetch(b, { limit: 10, exclude: new Set(ids) })).toEqual([]);
          expect(await store.fetch(a, { limit: 10 })).toEqual([]);
        }),
      },
      {
        name: "a mailbox holds only its own messages (same user, other device; similar ids)",
        run: withStore(['alice/phone', 'bob/laptop', 'bob/laptop2', 'bob2/laptop'], async (store, a, b1, b2, b3) => {
          okIds(await store.enqueue({ from: a, receivedAt: 1, messages: [{ to: b1, frame: frame(1) }, { to: b2, frame: frame(2) }, { to: b3, frame: frame(3) }] }, QUOTA));
          for (const [box, n] of [[b1, 1], [b2, 2], [b3, 3]] as const) {
            const got = await store.fetch(box, { limit: 10 });
            expect(got).toHaveLength(1);
            expectBytesEqual(got[0]!.frame, frame(n), `frame in ${box.userId}/${box.deviceId}`);
          }
        }),
      },
    ],
  },
  {
    title: '8. mailboxes: ack',
    cases: [
      {
        name: "acknowledging another mailbox's id has no effect",
        run: withStore(['alice/phone', 'bob/laptop', 'eve/laptop'], async (store, a, b, eve) => {
          const [bobId] = okIds(await store.enqueue({ from: a, receivedAt: 1, messages: [{ to: b, frame: frame(1) }] }, QUOTA));
          expect(await store.ack(eve, [bobId!])).toBe(0);
          expect(await store.ack(addr('bob', 'other'), [bobId!])).toBe(0);
          expect(await store.ack(a, [bobId!])).toBe(0);
          expect((await store.fetch(b, { limit: 10 })).map((m) => m.id)).toEqual([bobId]);
          expect((await store.stats(b)).messages).toBe(1);
        }),
      },
      {
        name: 'ack deletes exactly the named messages; unknown and repeated ids are ignored; quota is freed',
        run: withStore(['alice/phone', 'bob/laptop'], async (store, a, b) => {
          const quota = { ...QUOTA, maxMessages: 3 };
          const ids = okIds(await store.enqueue({ from: a, receivedAt: 1, messages: [1, 2, 3].map((i) => ({ to: b, frame: frame(i, 10 * i) })) }, quota));
          expect((await store.enqueue({ from: a, receivedAt: 2, messages: [{ to: b, frame: frame(4) }] }, quota)).ok).toBe(false);
          expect(await store.ack(b, [ids[1]!, ids[1]!, 'no-such-id', ''])).toBe(1);
          expect(await store.ack(b, [ids[1]!])).toBe(0);
          expect(await store.stats(b)).toEqual({ messages: 2, bytes: 40 });
          expect((await store.fetch(b, { limit: 10 })).map((m) => m.id)).toEqual([ids[0], ids[2]]);
          expect((await store.enqueue({ from: a, receivedAt: 2, messages: [{ to: b, frame: frame(4) }] }, quota)).ok).toBe(true);
          expect(await store.ack(b, [])).toBe(0);
        }),
      },
    ],
  },
  {
    title: '9. copies',
    cases: [
      {
        name: 'inputs are copied (only the viewed bytes) and outputs are independent',
        run: withStore([], async (store) => {
          const backing = patternBytes(300, 42);
          const key = backing.subarray(10, 42);
          const keyCopy = key.slice();
          expect(await store.setAccountKey('alice', key, undefined)).toBe(true);
          const cert = backing.subarray(50, 230);
          const certCopy = cert.slice();
          expect(await store.registerDevice(addr('alice', 'phone'), keyCopy, cert, MAX_DEVICES, 0)).toBe('registered');
          const b = await device(store, addr('bob', 'laptop'));
          const frameView = backing.subarray(100, 164);
          const frameCopy = frameView.slice();
          okIds(await store.enqueue({ from: addr('alice', 'phone'), receivedAt: 1, messages: [{ to: b, frame: frameView }] }, QUOTA));
          const put = prekeys(5, [1], [2]);
          const otKey = put.oneTimePrekeys[0]!.key.slice();
          await store.putPrekeys(addr('alice', 'phone'), put, PREKEY_QUOTA);
          backing.fill(0xee);
          put.oneTimePrekeys[0]!.key.fill(0xee);

          const storedKey = await store.getAccountKey('alice');
          expectBytesEqual(storedKey, keyCopy, 'account key');
          expect(storedKey!.byteLength).toBe(32);
          const storedCert = await store.getDevice(addr('alice', 'phone'));
          expectBytesEqual(storedCert, certCopy, 'certificate');
          const [m] = await store.fetch(b, { limit: 1 });
          expectBytesEqual(m?.frame, frameCopy, 'frame');
          expect(m!.frame.buffer.byteLength).toBe(64);
          m!.frame.fill(1);
          storedKey!.fill(1);
          storedCert!.fill(1);
          expectBytesEqual((await store.fetch(b, { limit: 1 }))[0]?.frame, frameCopy, 'frame after mutating an output');
          expectBytesEqual(await store.getAccountKey('alice'), keyCopy, 'account key after mutating an output');
          expectBytesEqual(await store.getDevice(addr('alice', 'phone')), certCopy, 'certificate after mutating an output');
          const t = await store.takeBundle(addr('alice', 'phone'));
          expectBytesEqual(t?.oneTimePrekey?.key, otKey, 'one-time key');
        }),
      },
      {
        name: 'device lists and shared frames are copied in and out',
        run: withStore(['alice/phone', 'bob/laptop'], async (store, a, b) => {
          const backing = patternBytes(1000, 77);
          const list = backing.subarray(100, 400);
          const listCopy = list.slice();
          const keepCert = certOf(a).slice();
          expect((await store.putDeviceList('alice', accountKeyOf('alice'), 1, list, [{ deviceId: 'phone', certificate: keepCert }])).ok).toBe(true);
          keepCert.fill(0);
          const shared = backing.subarray(500, 564);
          const sharedCopy = shared.slice();
          okIds(await store.enqueueShared({ from: a, receivedAt: 1, to: [b], frame: shared }, QUOTA));
          backing.fill(0xee);
          const stored = await store.getDeviceList('alice');
          expect(stored?.version).toBe(1);
          expectBytesEqual(stored?.list, listCopy, 'device list');
          expect(stored!.list.buffer.byteLength).toBe(300);
          stored!.list.fill(1);
          expectBytesEqual((await store.getDeviceList('alice'))?.list, listCopy, 'device list after mutating an output');
          const [m] = await store.fetch(b, { limit: 1 });
          expectBytesEqual(m?.frame, sharedCopy, 'shared frame');
          expect(m!.frame.buffer.byteLength).toBe(64);
          expect(await store.getDevice(a)).toBeDefined(); // kept: the keep entry matched when it was compared
        }),
      },
    ],
  },
  {
    title: '10. close',
    cases: [
      {
        name: 'close is idempotent and every method then rejects with CLOSED',
        run: withStore(['alice/phone'], async (store, a) => {
          await store.close();
          await store.close();
          const k = accountKeyOf('alice');
          await expectClosedRejection('getAccountKey', () => store.getAccountKey('alice'));
          await expectClosedRejection('setAccountKey', () => store.setAccountKey('x', k, undefined));
          await expectClosedRejection('registerDevice', () => store.registerDevice(a, k, certOf(a), MAX_DEVICES, 0));
          await expectClosedRejection('getDeviceList', () => store.getDeviceList('alice'));
          await expectClosedRejection('putDeviceList', () => store.putDeviceList('alice', k, 1, listOf('alice', 1), kept(a)));
          await expectClosedRejection('enqueueShared', () => store.enqueueShared({ from: a, receivedAt: 1, to: [a], frame: frame(1) }, QUOTA));
          await expectClosedRejection('getDevice', () => store.getDevice(a));
          await expectClosedRejection('listDevices', () => store.listDevices('alice'));
          await expectClosedRejection('putPrekeys', () => store.putPrekeys(a, prekeys(1, [1]), PREKEY_QUOTA));
          await expectClosedRejection('takeBundle', () => store.takeBundle(a));
          await expectClosedRejection('prekeyCounts', () => store.prekeyCounts(a));
          await expectClosedRejection('enqueue', () => store.enqueue({ from: a, receivedAt: 1, messages: [{ to: a, frame: frame(1) }] }, QUOTA));
          await expectClosedRejection('fetch', () => store.fetch(a, { limit: 1 }));
          await expectClosedRejection('ack', () => store.ack(a, ['x']));
          await expectClosedRejection('stats', () => store.stats(a));
        }),
      },
    ],
  },
  {
    title: '11. device lists',
    cases: [
      {
        name: 'the newest list is kept; a lower version is refused; the same version changes nothing with the same bytes and is refused with others',
        run: withStore(['alice/phone'], async (store, a) => {
          const key = accountKeyOf('alice');
          expect(await store.putDeviceList('alice', key, 2, listOf('alice', 2), kept(a))).toEqual({ ok: true, changed: true, removed: [] });
          expect(await store.putDeviceList('alice', key, 1, listOf('alice', 1), kept(a))).toEqual({ ok: false, reason: 'stale' });
          expect(await store.putDeviceList('alice', key, 2, listOf('alice', 2), kept(a))).toEqual({ ok: true, changed: false, removed: [] });
          expect(await store.putDeviceList('alice', key, 2, listOf('alice', 2, 1), kept(a))).toEqual({ ok: false, reason: 'conflict' });
          const current = await store.getDeviceList('alice');
          expect(current?.version).toBe(2);
          expectBytesEqual(current?.list, listOf('alice', 2), 'the version-2 list');
          expect(await store.putDeviceList('alice', key, 7, listOf('alice', 7), kept(a))).toEqual({ ok: true, changed: true, removed: [] });
          expect((await store.getDeviceList('alice'))?.version).toBe(7);
          expect(await store.putDeviceList('alice', key, 2, listOf('alice', 2), kept(a))).toEqual({ ok: false, reason: 'stale' });
          expect(await store.getDeviceList('alic')).toBeUndefined();
        }),
      },
      {
        name: "a new list deletes every device it does not keep, with its registration, mailbox, prekeys and handed-out ids; nobody else's",
        run: withStore(['alice/phone', 'alice/laptop', 'alice/tablet', 'bob/pc'], async (store, phone, laptop, tablet, b) => {
          for (const d of [phone, laptop, tablet]) expect((await store.putPrekeys(d, prekeys(3, [1, 2], [10]), PREKEY_QUOTA)).ok).toBe(true);
          expect((await store.takeBundle(laptop))?.oneTimePrekey?.id).toBe(1);
          okIds(await store.enqueue({ from: b, receivedAt: 1, messages: [phone, laptop, tablet].map((to, i) => ({ to, frame: frame(i, 100) })) }, QUOTA));
          okIds(await store.enqueue({ from: laptop, receivedAt: 1, messages: [{ to: b, frame: frame(9) }] }, QUOTA));
          // The tablet is listed by id, but the relay read another certificate than the one stored: not kept.
          const result = await store.putDeviceList('alice', accountKeyOf('alice'), 5, listOf('alice', 5), [
            { deviceId: 'phone', certificate: certOf(phone) },
            { deviceId: 'tablet', certificate: certOf(tablet, 1) },
          ]);
          expect(result).toEqual({ ok: true, changed: true, removed: ['laptop', 'tablet'] });
          for (const gone of [laptop, tablet]) await expectNothingStoredFor(store, gone);
          expect((await store.listDevices('alice')).map((d) => d.deviceId)).toEqual(['phone']);
          expect(await store.prekeyCounts(phone)).toEqual({ oneTime: 2, pq: 1 });
          expect((await store.fetch(phone, { limit: 10 })).map((m) => m.frame.byteLength)).toEqual([100]);
          // What the removed laptop sent stays with its recipient.
          expect(await store.fetch(b, { limit: 10 })).toHaveLength(1);
          // A removed device that comes back (a new list lists it) starts afresh: its
          // handed-out ids were forgotten with it, and its quota was freed.
          expect(await store.registerDevice(laptop, accountKeyOf('alice'), certOf(laptop), MAX_DEVICES, 4)).toBe('list-mismatch');
          expect((await store.putDeviceList('alice', accountKeyOf('alice'), 6, listOf('alice', 6), kept(phone))).ok).toBe(true);
          expect(await store.registerDevice(laptop, accountKeyOf('alice'), certOf(laptop), MAX_DEVICES, 6)).toBe('registered');
          expect(await store.putPrekeys(laptop, prekeys(4, [1, 2], [10]), PREKEY_QUOTA)).toEqual({ ok: true, counts: { oneTime: 2, pq: 1 } });
          expect((await store.takeBundle(laptop))?.oneTimePrekey?.id).toBe(1);
        }),
      },
      {
        name: 'a stale or conflicting list deletes nothing',
        run: withStore(['alice/phone', 'alice/laptop'], async (store, phone, laptop) => {
          expect((await store.putDeviceList('alice', accountKeyOf('alice'), 3, listOf('alice', 3), kept(phone, laptop))).ok).toBe(true);
          expect((await store.putDeviceList('alice', accountKeyOf('alice'), 2, listOf('alice', 2), kept(phone))).ok).toBe(false);
          expect((await store.putDeviceList('alice', accountKeyOf('alice'), 3, listOf('alice', 3, 1), kept(phone))).ok).toBe(false);
          expect(await store.putDeviceList('alice', accountKeyOf('alice'), 3, listOf('alice', 3), kept(phone))).toEqual({ ok: true, changed: false, removed: [] });
          expect((await store.listDevices('alice')).map((d) => d.deviceId)).toEqual(['laptop', 'phone']);
        }),
      },
      {
        name: 'a registration racing a new list never leaves a device the list does not keep',
        run: withStore(['alice/phone'], async (store, phone) => {
          const key = accountKeyOf('alice');
          expect((await store.putDeviceList('alice', key, 1, listOf('alice', 1), kept(phone))).ok).toBe(true);
          for (let round = 0; round < 10; round++) {
            const newcomer = addr('alice', `new-${round}`);
            // The relay checked the newcomer against version round + 1; the list moves to round + 2 without it.
            const [registered, put] = await Promise.all([
              store.registerDevice(newcomer, key, certOf(newcomer), MAX_DEVICES, round + 1),
              store.putDeviceList('alice', key, round + 2, listOf('alice', round + 2), kept(phone)),
            ]);
            expect(put.ok).toBe(true);
            // Either the registration came first (and the list removed it) or it saw the new version.
            if (registered === 'registered') expect(put.ok && put.removed).toEqual([newcomer.deviceId]);
            else expect(registered).toBe('list-mismatch');
            expect(await store.getDevice(newcomer)).toBeUndefined();
          }
          expect((await store.listDevices('alice')).map((d) => d.deviceId)).toEqual(['phone']);
        }),
      },
      {
        name: 'a send racing a new list either lands before it (and the removed mailbox goes with the device) or is refused',
        run: withStore(['alice/phone', 'alice/laptop', 'bob/pc'], async (store, phone, laptop, b) => {
          const key = accountKeyOf('alice');
          expect((await store.putDeviceList('alice', key, 1, listOf('alice', 1), kept(phone, laptop))).ok).toBe(true);
          const [sent, put] = await Promise.all([
            store.enqueueShared({ from: b, receivedAt: 1, to: [phone, laptop], frame: frame(1), expectedLists: [{ userId: 'alice', listVersion: 1 }] }, QUOTA),
            store.putDeviceList('alice', key, 2, listOf('alice', 2), kept(phone)),
          ]);
          expect(put).toEqual({ ok: true, changed: true, removed: ['laptop'] });
          if (sent.ok) expect((await store.stats(phone)).messages).toBe(1);
          else expect(sent).toEqual({ ok: false, reason: 'list-mismatch', users: [{ userId: 'alice', listVersion: 2 }] });
          expect(await store.stats(laptop)).toEqual({ messages: 0, bytes: 0 });
        }),
      },
    ],
  },
  {
    title: '1. durability (reopen)',
    cases: [
      {
        name: 'accounts, device lists, devices, prekeys, consumed ids, messages (shared ones too), order and quotas survive reopening',
        needsReopen: true,
        async run({ open, reopen }) {
          let store = await open();
          const a = await device(store, addr('alice', 'phone'));
          const b = await device(store, addr('bob', 'laptop'));
          const c = await device(store, addr('carol', 'desk'));
          expect((await store.putDeviceList('alice', accountKeyOf('alice'), 4, listOf('alice', 4), kept(a))).ok).toBe(true);
          const [, sharedId] = okIds(await store.enqueueShared({ from: c, receivedAt: 9, to: [b, a], frame: frame(5, 70) }, QUOTA));
          await store.putPrekeys(b, prekeys(1, [1, 2, 3], [10, 11]), PREKEY_QUOTA);
          expect((await store.takeBundle(b))?.oneTimePrekey?.id).toBe(1);
          const quota = { ...QUOTA, maxPerSender: 5 };
          const ids: string[] = [];
          for (let i = 0; i < 5; i++) ids.push(...okIds(await store.enqueue({ from: a, receivedAt: 100 + i, messages: [{ to: b, frame: frame(i, 50 + i) }] }, quota)));
          await store.ack(b, [ids[2]!]);

          store = await reopen(store);
          expectBytesEqual(await store.getAccountKey('alice'), accountKeyOf('alice'), 'account key after reopen');
          const list = await store.getDeviceList('alice');
          expect(list?.version).toBe(4);
          expectBytesEqual(list?.list, listOf('alice', 4), 'device list after reopen');
          expect(await store.putDeviceList('alice', accountKeyOf('alice'), 3, listOf('alice', 3), kept(a))).toEqual({ ok: false, reason: 'stale' });
          expect(await store.registerDevice(addr('alice', 'new'), accountKeyOf('alice'), certOf(addr('alice', 'new')), MAX_DEVICES, 0)).toBe('list-mismatch');
          expect((await store.fetch(a, { limit: 10 })).map((m) => m.id)).toEqual([sharedId]);
          expectBytesEqual((await store.fetch(a, { limit: 10 }))[0]?.frame, frame(5, 70), 'shared frame after reopen');
          // Bob's shared copy is acknowledged; the rest of the case counts his other mail.
          const bobShared = (await store.fetch(b, { limit: 10 })).find((m) => m.receivedAt === 9);
          expect(await store.ack(b, [bobShared!.id])).toBe(1);
          expectBytesEqual(await store.getDevice(b), certOf(b), 'certificate after reopen');
          expect(await store.prekeyCounts(b)).toEqual({ oneTime: 2, pq: 1 });
          // The handed-out id 1 is still remembered.
          expect(await store.putPrekeys(b, prekeys(1, [1, 2, 3], [10, 11]), PREKEY_QUOTA)).toEqual({ ok: true, counts: { oneTime: 2, pq: 1 } });
          const got = await store.fetch(b, { limit: 10 });
          expect(got.map((m) => m.id)).toEqual([ids[0], ids[1], ids[3], ids[4]]);
          expect(got.map((m) => m.receivedAt)).toEqual([100, 101, 103, 104]);
          got.forEach((m, i) => expectBytesEqual(m.frame, frame([0, 1, 3, 4][i]!, 50 + [0, 1, 3, 4][i]!), `frame ${i} after reopen`));
          expect(await store.stats(b)).toEqual({ messages: 4, bytes: 50 + 51 + 53 + 54 });
          // Quotas still count what was there before the reopen.
          okIds(await store.enqueue({ from: a, receivedAt: 200, messages: [{ to: b, frame: frame(9) }] }, quota));
          expect((await store.enqueue({ from: a, receivedAt: 201, messages: [{ to: b, frame: frame(10) }] }, quota)).ok).toBe(false);
          const later = okIds(await store.enqueue({ from: b, receivedAt: 300, messages: [{ to: a, frame: frame(11) }] }, quota));
          expect(later).toHaveLength(1);
          expect((await store.fetch(b, { limit: 10 })).at(-1)?.receivedAt).toBe(200);
        },
      },
    ],
  },
];

async function runCase(testCase: Case, factory: RelayStoreConformanceFactory): Promise<void> {
  const opened: RelayStoreContract[] = [];
  const ctx: Ctx = {
    async open() {
      const s = await factory.create();
      opened.push(s);
      return s;
    },
    async reopen(previous) {
      if (factory.reopen === undefined) throw new Error('this factory cannot reopen: the case should have been skipped');
      const s = await factory.reopen(previous);
      opened.push(s);
      return s;
    },
  };
  let failure: { error: unknown } | undefined;
  try {
    await testCase.run(ctx);
  } catch (error) {
    failure = { error };
  }
  const cleanup: unknown[] = [];
  for (const s of opened) {
    try {
      await s.close();
    } catch (e) {
      cleanup.push(e);
    }
  }
  try {
    await factory.teardown?.();
  } catch (e) {
    cleanup.push(e);
  }
  if (failure) throw failure.error;
  if (cleanup.length > 0) throw new AggregateError(cleanup, 'closing the stores or teardown failed');
}

/**
 * Registers the relay store conformance suite for one store: a vitest `describe` block
 * with one test per checked behaviour, grouped by the numbered invariants of the relay
 * store contract. Beyond the obvious it checks: concurrent `takeBundle` never handing out
 * a one-time key twice; an all-or-nothing multi-recipient `enqueue` when one recipient is
 * over its quota (or unknown); per-sender quotas counted per sender *user*; acks of
 * another mailbox's ids having no effect; idempotent prekey uploads that never resurrect
 * a handed-out key; arrival order after acks from the middle; copies of `subarray`
 * inputs; `CLOSED` rejections; device lists (the newest kept, lower versions and other
 * bytes at the same version refused, a new list deleting every device it does not keep
 * with its mailbox and prekeys in the same step, registrations and sends racing a new
 * list); list-version checks on enqueue that store nothing on a mismatch; shared enqueues
 * charged per mailbox; and persistence across `reopen` (skipped, visibly, when the
 * factory has none). The cases wait on promises only, never on timers.
 *
 * @param name - the store's name, shown in the test report
 * @param factory - how to create (and optionally reopen and tear down) the store
 *
 * @example
 * ```ts
 * // packages/relay/test/store-conformance.test.ts
 * import { describeRelayStoreConformance } from '@deadbolt/test-kit';
 * import { createMemoryRelayStore } from '../src/index.js';
 *
 * describeRelayStoreConformance('memory', { create: async () => createMemoryRelayStore() });
 * ```
 */
export function describeRelayStoreConformance(name: string, factory: RelayStoreConformanceFactory): void {
  describe(`relay store conformance (deadbolt.relay-store.v2): ${name}`, () => {
    for (const group of GROUPS) {
      describe(group.title, () => {
        for (const testCase of group.cases) {
          const canRun = !testCase.needsReopen || factory.reopen !== undefined;
          const title = canRun ? testCase.name : `${testCase.name} (skipped: the factory has no reopen)`;
          it.skipIf(!canRun)(title, { timeout: 30_000 }, () => runCase(testCase, factory));
        }
      });
    }
  });
}
