/**
 * The cases of the storage conformance suite, one per checked behaviour, each tagged with
 * the invariant of `@deadbolt/spec`'s `storage.ts` it checks. Kept as data (not inline
 * `it` calls) so that the test-kit's own tests can run each case against deliberately
 * broken adapters and prove the case catches the bug it is written for.
 *
 * Internal: adapters use `describeStorageConformance` instead.
 *
 * @module
 */
import { expect } from 'vitest';
import {
  compareStorageKeys,
  isDeadboltError,
  STORAGE_LIMITS,
  STORAGE_SPECIFICATION_VERSION,
  type ErrorCode,
  type RangeOptions,
  type StorageAdapter,
  type StorageEntry,
  type StorageKey,
  type StorageOp,
} from '@deadbolt/spec';
import { expectBytesEqual, patternBytes } from './bytes.js';

/** @internal What a case gets to open adapters with. Every adapter opened is closed after the case. */
export interface StorageCaseContext {
  /** A fresh, empty adapter (`factory.create()`). */
  open(): Promise<StorageAdapter>;
  /** Closes `previous` and reopens the same backend (`factory.reopen()`). */
  reopen(previous: StorageAdapter): Promise<StorageAdapter>;
  /** A second adapter over the same backend as `first`, which stays open (`factory.openShared()`). */
  openShared(first: StorageAdapter): Promise<StorageAdapter>;
  /** The largest value the adapter stores (`factory.maxValueBytes`, default `STORAGE_LIMITS.maxValueBytes`). */
  readonly maxValueBytes: number;
}

/** @internal One conformance case. */
export interface StorageConformanceCase {
  /** The invariant number in `storage.ts` (0: the interface itself). */
  readonly invariant: number;
  readonly name: string;
  /** Runs only when the factory can reopen (persistent adapters). */
  readonly needsReopen?: boolean;
  /** Runs only when the adapter has `exclusive` (invariant 11). */
  readonly needsExclusive?: boolean;
  /** Runs only when the factory can open a second adapter over one backend. */
  readonly needsShared?: boolean;
  run(ctx: StorageCaseContext): Promise<void>;
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const fmt = (key: unknown): string => JSON.stringify(key) ?? String(key);

function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

function put(key: StorageKey, value: Uint8Array): Extract<StorageOp, { type: 'put' }> {
  return { type: 'put', key, value };
}

function del(key: StorageKey): StorageOp {
  return { type: 'delete', key };
}

function describeError(e: unknown): string {
  if (isDeadboltError(e)) return `${e.name} ${e.code} (kind ${e.kind})`;
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return typeof e;
}

/**
 * Asserts that `call()` returns a promise (it must not throw synchronously) that rejects
 * with a `UsageError` carrying `code`.
 */
async function expectUsageRejection(what: string, call: () => unknown, code: ErrorCode): Promise<void> {
  let result: unknown;
  try {
    result = call();
  } catch (e) {
    throw new Error(`${what}: threw synchronously (${describeError(e)}) instead of returning a rejected promise`);
  }
  if (typeof (result as { then?: unknown } | null | undefined)?.then !== 'function') {
    throw new Error(`${what}: expected a promise rejecting with ${code}, got ${typeof result}`);
  }
  let settled: 'resolved' | 'rejected';
  let error: unknown;
  try {
    await result;
    settled = 'resolved';
  } catch (e) {
    settled = 'rejected';
    error = e;
  }
  if (settled === 'resolved') throw new Error(`${what}: expected a rejection with ${code}, but it resolved`);
  if (!isDeadboltError(error, code) || error.kind !== 'usage') {
    throw new Error(`${what}: expected a UsageError ${code}, got ${describeError(error)}`);
  }
}

/** A returned value must be a plain (not `Buffer`), compact `Uint8Array`. */
function expectFreshBytes(value: Uint8Array | undefined, expected: Uint8Array, label: string): asserts value is Uint8Array {
  expectBytesEqual(value, expected, label);
  if (Object.getPrototypeOf(value) !== Uint8Array.prototype) {
    throw new Error(`${label}: expected a plain Uint8Array, got a ${value.constructor.name}`);
  }
  if (value.byteOffset !== 0 || value.buffer.byteLength !== value.byteLength) {
    throw new Error(
      `${label}: expected a compact array, got a view of ${value.byteLength} bytes at offset ` +
        `${value.byteOffset} of a ${value.buffer.byteLength}-byte buffer`,
    );
  }
}

function keysOf(entries: readonly StorageEntry[]): string[][] {
  return entries.map((e) => [...e.key]);
}

/** Asserts that `range(prefix)` returns exactly `expected`, in that order, with the values `valueOf` gives. */
async function expectRange(
  storage: StorageAdapter,
  prefix: StorageKey,
  expected: readonly StorageKey[],
  valueOf: (key: StorageKey) => Uint8Array,
  limit?: number,
): Promise<void> {
  const label = `range(${fmt(prefix)}${limit === undefined ? '' : `, { limit: ${limit} }`})`;
  const entries = limit === undefined ? await storage.range(prefix) : await storage.range(prefix, { limit });
  expect(Array.isArray(entries), `${label} resolves an array`).toBe(true);
  expect(keysOf(entries), `${label} keys`).toEqual(expected.map((k) => [...k]));
  entries.forEach((entry, i) => expectFreshBytes(entry.value, valueOf(entry.key), `${label}[${i}].value`));
}

/** A deterministic shuffle (no randomness: failures must reproduce). */
function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  let x = 0x2545f491;
  for (let i = out.length - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/**
 * Keys that naive encodings (joining with a separator, URL or base64 encoding without a
 * length, a plain object as the map, Unicode normalisation, UTF-8 text columns that replace
 * lone surrogates) map to the same stored key. All must stay distinct.
 */
const COLLIDING_KEYS: readonly StorageKey[] = [
  ['a', 'b'],
  ['a/b'],
  ['a', '/b'],
  ['a/', 'b'],
  ['a:b'],
  ['a.b'],
  ['a,b'],
  ['a|b'],
  ['a b'],
  ['a\u0000b'],
  ['a\u001fb'],
  ['a\u001eb'],
  ['a%2Fb'],
  ['a","b'],
  ['ab'],
  ['a', '', 'b'],
  ['a'],
  ['a', ''],
  ['', 'a'],
  [''],
  ['', ''],
  ['', '', ''],
  ['/'],
  ['//'],
  ['\u0000'],
  ['\u0000\u0000'],
  ['\uffff'],
  ['\ufffd'],
  ['\ud83d\ude00'], // 😀 as a surrogate pair
  ['\ud83d', '\ude00'], // its two halves as two segments
  ['\ud83d'], // lone high surrogate
  ['\ude00'], // lone low surrogate
  ['\ud800'],
  ['\udc00'],
  ['\u00e9'], // é precomposed
  ['e\u0301'], // é decomposed
  ['A'],
  ['1'],
  ['01'],
  [' a'],
  ['a '],
  ['__proto__'],
  ['constructor'],
  ['toString'],
  ['hasOwnProperty'],
  ['null'],
  ['undefined'],
  ['[object Object]'],
];

/**
 * Keys under `['o']` in the contract's order: segment by segment, by UTF-16 code units,
 * a prefix before its extensions. Code-point order (what UTF-8 byte comparison and SQLite's
 * BINARY collation give) disagrees on the surrogate and private-use entries near the end.
 */
const ORDERED_KEYS: readonly StorageKey[] = [
  ['o'],
  ['o', ''],
  ['o', '', ''],
  ['o', '', 'x'],
  ['o', '\u0000'],
  ['o', '\u0000', 'x'],
  ['o', '\u0001'],
  ['o', ' '],
  ['o', '/'],
  ['o', '0'],
  ['o', '10'],
  ['o', '9'],
  ['o', ':'],
  ['o', 'A'],
  ['o', 'Z'],
  ['o', 'a'],
  ['o', 'a', ''],
  ['o', 'a', 'b'],
  ['o', 'a\u0000'],
  ['o', 'a\u0000b'],
  ['o', 'a/b'],
  ['o', 'ab'],
  ['o', 'b'],
  ['o', '\u00e9'],
  ['o', '\u07ff'],
  ['o', '\u0800'],
  ['o', '\ud800'], // lone high surrogate
  ['o', '\ud83d\ude00'], // 😀 (U+1F600) sorts by its first code unit, 0xD83D ...
  ['o', '\udc00'], // ... before a lone low surrogate ...
  ['o', '\ue000'], // ... and before U+E000, though its code point is larger
  ['o', '\uffff'],
  ['o', '\uffff', ''],
];

/** Keys around the prefix `['a']` that a string-prefix scan would wrongly include. */
const PREFIX_KEYS: readonly StorageKey[] = [
  ['a'],
  ['a', ''],
  ['a', 'b'],
  ['a', 'b', 'c'],
  ['a', 'x'],
  ['a\u0000'],
  ['a\u0000b'],
  ['a\u0000', 'b'],
  ['a/b'],
  ['a:b'],
  ['a.b'],
  ['a,b'],
  ['a!'],
  ['a#'],
  ['a b'],
  ['ab'],
  ['ab', 'c'],
  ['a\uffff'],
  ['`'],
  ['b'],
  ['A'],
  ['', 'a'],
];

const valueForIndex = (keys: readonly StorageKey[]) => {
  const index = new Map(keys.map((k, i) => [fmt(k), i]));
  return (key: StorageKey): Uint8Array => {
    const i = index.get(fmt(key));
    if (i === undefined) throw new Error(`unexpected key ${fmt(key)}`);
    return bytes(i, i ^ 0xff, 0x5a);
  };
};

const MIB = 1024 * 1024;

/** Invalid keys: each must be rejected with INVALID_ARGUMENT wherever a key is taken. */
const INVALID_KEYS: ReadonlyArray<readonly [string, unknown]> = [
  ['an empty key', []],
  ['a string', 'a'],
  ['a number segment', [1]],
  ['a null segment', [null]],
  ['an undefined segment', [undefined]],
  ['a nested array segment', [['a']]],
  ['a sparse array', new Array(2)],
  ['null', null],
  ['undefined', undefined],
  ['an array-like object', { 0: 'a', length: 1 }],
];

/** Operations that make a whole batch invalid. */
const INVALID_OPS: ReadonlyArray<readonly [string, unknown]> = [
  ['a put with an empty key', { type: 'put', key: [], value: bytes(1) }],
  ['a put with a string key', { type: 'put', key: 'bad', value: bytes(1) }],
  ['a put with a number segment', { type: 'put', key: ['bad', 1], value: bytes(1) }],
  ['a delete with an empty key', { type: 'delete', key: [] }],
  ['a delete with no key', { type: 'delete' }],
  ['a put with a number[] value', { type: 'put', key: ['bad', 'v'], value: [1, 2] }],
  ['a put with an ArrayBuffer value', { type: 'put', key: ['bad', 'v'], value: new ArrayBuffer(2) }],
  ['a put with a Uint16Array value', { type: 'put', key: ['bad', 'v'], value: new Uint16Array(2) }],
  ['a put with a DataView value', { type: 'put', key: ['bad', 'v'], value: new DataView(new ArrayBuffer(2)) }],
  ['a put with a string value', { type: 'put', key: ['bad', 'v'], value: 'x' }],
  ['a put with no value', { type: 'put', key: ['bad', 'v'] }],
  ['an unknown type', { type: 'upsert', key: ['bad', 'v'], value: bytes(1) }],
  ['no type', { key: ['bad', 'v'], value: bytes(1) }],
  ['a null operation', null],
  ['a string operation', 'put'],
];

// ---------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------

/** @internal Every case, in suite order. */
export const storageConformanceCases: readonly StorageConformanceCase[] = [
  // --- 0. the interface ----------------------------------------------------------------
  {
    invariant: 0,
    name: 'specificationVersion is STORAGE_SPECIFICATION_VERSION',
    async run({ open }) {
      const storage = await open();
      expect(storage.specificationVersion).toBe(STORAGE_SPECIFICATION_VERSION);
    },
  },
  {
    invariant: 0,
    name: 'put then get round-trips every byte value; an absent key resolves undefined',
    async run({ open }) {
      const storage = await open();
      const all = Uint8Array.from({ length: 256 }, (_, i) => i);
      expect(await storage.get(['rt'])).toBeUndefined();
      await storage.batch([put(['rt'], all)]);
      expectFreshBytes(await storage.get(['rt']), all, "get(['rt'])");
      expect(await storage.get(['rt', 'missing'])).toBeUndefined();
    },
  },

  // --- 1. keys -------------------------------------------------------------------------
  {
    invariant: 1,
    name: 'keys with separators, NUL, U+FFFF, emoji, lone surrogates, empty segments and Object.prototype names never collide',
    async run({ open }) {
      const storage = await open();
      const valueOf = valueForIndex(COLLIDING_KEYS);
      await storage.batch(COLLIDING_KEYS.map((k) => put(k, valueOf(k))));
      for (const key of COLLIDING_KEYS) expectFreshBytes(await storage.get(key), valueOf(key), `get(${fmt(key)})`);
      // The same keys under a namespace, enumerated with one range.
      const namespaced = COLLIDING_KEYS.map((k) => ['ns', ...k]);
      const nsValue = (k: StorageKey) => valueOf(k.slice(1));
      await storage.batch(namespaced.map((k) => put(k, nsValue(k))));
      await expectRange(storage, ['ns'], [...namespaced].sort(compareStorageKeys), nsValue);
    },
  },
  {
    invariant: 1,
    name: `keys of ${STORAGE_LIMITS.maxKeySegments} segments of ${STORAGE_LIMITS.maxSegmentLength} code units are accepted`,
    async run({ open }) {
      const storage = await open();
      const fillers = ['x', '\u0000', '/', '\ud83d\ude00', '\ud800', '\uffff', ':', 'é'];
      const key = Array.from({ length: STORAGE_LIMITS.maxKeySegments }, (_, i) =>
        `${i}`.padEnd(STORAGE_LIMITS.maxSegmentLength, fillers[i % fillers.length]),
      );
      for (const segment of key) expect(segment.length).toBe(STORAGE_LIMITS.maxSegmentLength);
      const value = bytes(7, 7, 7);
      await storage.batch([put(key, value)]);
      expectFreshBytes(await storage.get(key), value, 'get(max key)');
      await expectRange(storage, key, [key], () => value);
      await expectRange(storage, key.slice(0, 1), [key], () => value);
      await storage.batch([del(key)]);
      expect(await storage.get(key)).toBeUndefined();
    },
  },
  {
    invariant: 1,
    name: 'invalid keys reject with INVALID_ARGUMENT from get, range and batch',
    async run({ open }) {
      const storage = await open();
      for (const [label, key] of INVALID_KEYS) {
        await expectUsageRejection(`get(${label})`, () => storage.get(key as StorageKey), 'INVALID_ARGUMENT');
        await expectUsageRejection(`range(${label})`, () => storage.range(key as StorageKey), 'INVALID_ARGUMENT');
        await expectUsageRejection(
          `batch([put(${label})])`,
          () => storage.batch([{ type: 'put', key: key as StorageKey, value: bytes(1) }]),
          'INVALID_ARGUMENT',
        );
        await expectUsageRejection(
          `batch([delete(${label})])`,
          () => storage.batch([{ type: 'delete', key: key as StorageKey }]),
          'INVALID_ARGUMENT',
        );
      }
    },
  },
  {
    invariant: 1,
    name: 'get matches the whole key only: a prefix or an extension of a stored key is absent',
    async run({ open }) {
      const storage = await open();
      await storage.batch([put(['g', 'x'], bytes(1))]);
      expect(await storage.get(['g'])).toBeUndefined();
      expect(await storage.get(['g', 'x', ''])).toBeUndefined();
      expect(await storage.get(['g', 'x', 'y'])).toBeUndefined();
      expect(await storage.get(['g/x'])).toBeUndefined();
      expect(await storage.get(['gx'])).toBeUndefined();
      expectFreshBytes(await storage.get(['g', 'x']), bytes(1), "get(['g','x'])");
    },
  },

  // --- 2. prefix ranges ----------------------------------------------------------------
  {
    invariant: 2,
    name: "range matches whole segments: ['a'] never returns ['ab'], ['a\\u0000'] or ['a/b']",
    async run({ open }) {
      const storage = await open();
      const valueOf = valueForIndex(PREFIX_KEYS);
      await storage.batch(shuffled(PREFIX_KEYS).map((k) => put(k, valueOf(k))));
      const cases: ReadonlyArray<readonly [StorageKey, readonly StorageKey[]]> = [
        [['a'], [['a'], ['a', ''], ['a', 'b'], ['a', 'b', 'c'], ['a', 'x']]],
        [['a', 'b'], [['a', 'b'], ['a', 'b', 'c']]],
        [['a', ''], [['a', '']]],
        [['a', 'b', 'c'], [['a', 'b', 'c']]],
        [['a', 'b', 'c', 'd'], []],
        [['a', 'c'], []],
        [['ab'], [['ab'], ['ab', 'c']]],
        [['a\u0000'], [['a\u0000'], ['a\u0000', 'b']]],
        [['a\u0000b'], [['a\u0000b']]],
        [['a/b'], [['a/b']]],
        [[''], [['', 'a']]],
        [['b'], [['b']]],
        [['c'], []],
      ];
      for (const [prefix, expected] of cases) await expectRange(storage, prefix, expected, valueOf);
    },
  },
  {
    invariant: 2,
    name: "range(['a','b']) does not return ['a\\u0000b'] or ['a/b'], and vice versa",
    async run({ open }) {
      const storage = await open();
      await storage.batch([put(['a\u0000b'], bytes(1)), put(['a/b'], bytes(2)), put(['a:b'], bytes(3))]);
      await expectRange(storage, ['a', 'b'], [], () => bytes());
      await expectRange(storage, ['a'], [], () => bytes());
      await storage.batch([put(['a', 'b'], bytes(4))]);
      await expectRange(storage, ['a', 'b'], [['a', 'b']], () => bytes(4));
      await expectRange(storage, ['a\u0000b'], [['a\u0000b']], () => bytes(1));
      await expectRange(storage, ['a/b'], [['a/b']], () => bytes(2));
    },
  },
  {
    invariant: 2,
    name: 'range([]) rejects with INVALID_ARGUMENT',
    async run({ open }) {
      const storage = await open();
      await storage.batch([put(['x'], bytes(1))]);
      await expectUsageRejection('range([])', () => storage.range([]), 'INVALID_ARGUMENT');
      await expectUsageRejection('range([], { limit: 1 })', () => storage.range([], { limit: 1 }), 'INVALID_ARGUMENT');
    },
  },

  // --- 3. ordering ---------------------------------------------------------------------
  {
    invariant: 3,
    name: 'range returns keys in UTF-16 code unit order, segment by segment, a prefix before its extensions',
    async run({ open }) {
      // The fixture itself must agree with the contract's comparator.
      expect([...ORDERED_KEYS].sort(compareStorageKeys)).toEqual(ORDERED_KEYS);
      const storage = await open();
      const valueOf = valueForIndex(ORDERED_KEYS);
      // Written in a scrambled order, over several batches.
      const scrambled = shuffled(ORDERED_KEYS);
      for (let i = 0; i < scrambled.length; i += 7) {
        await storage.batch(scrambled.slice(i, i + 7).map((k) => put(k, valueOf(k))));
      }
      await expectRange(storage, ['o'], ORDERED_KEYS, valueOf);
      await expectRange(storage, ['o', ''], [['o', ''], ['o', '', ''], ['o', '', 'x']], valueOf);
      await expectRange(storage, ['o', '\uffff'], [['o', '\uffff'], ['o', '\uffff', '']], valueOf);
    },
  },
  {
    invariant: 3,
    name: 'range with limit returns the first matching entries in key order (limit 0 returns none)',
    async run({ open }) {
      const storage = await open();
      const valueOf = valueForIndex(PREFIX_KEYS);
      await storage.batch(shuffled(PREFIX_KEYS).map((k) => put(k, valueOf(k))));
      const underA: StorageKey[] = [['a'], ['a', ''], ['a', 'b'], ['a', 'b', 'c'], ['a', 'x']];
      for (const limit of [0, 1, 2, 3, 5, 6, 1000]) {
        await expectRange(storage, ['a'], underA.slice(0, limit), valueOf, limit);
      }
      await expectRange(storage, ['a', 'b'], [['a', 'b']], valueOf, 1);
      await expectRange(storage, ['c'], [], valueOf, 3);
      const ordered = valueForIndex(ORDERED_KEYS);
      await storage.batch(ORDERED_KEYS.map((k) => put(k, ordered(k))));
      await expectRange(storage, ['o'], ORDERED_KEYS.slice(0, 10), ordered, 10);
    },
  },

  // --- 4. copies -----------------------------------------------------------------------
  {
    invariant: 4,
    name: 'a subarray stores only its window; returned values are compact',
    async run({ open }) {
      const storage = await open();
      const whole = patternBytes(64, 3);
      const window = whole.subarray(16, 24);
      const offsetView = new Uint8Array(whole.buffer, 40, 5);
      const emptyWindow = whole.subarray(10, 10);
      await storage.batch([put(['sub', 'window'], window), put(['sub', 'offset'], offsetView), put(['sub', 'empty'], emptyWindow)]);
      expectFreshBytes(await storage.get(['sub', 'window']), whole.slice(16, 24), 'subarray(16, 24)');
      expectFreshBytes(await storage.get(['sub', 'offset']), whole.slice(40, 45), 'new Uint8Array(buffer, 40, 5)');
      expectFreshBytes(await storage.get(['sub', 'empty']), new Uint8Array(0), 'subarray(10, 10)');
      const expected = new Map([
        ['empty', new Uint8Array(0)],
        ['offset', whole.slice(40, 45)],
        ['window', whole.slice(16, 24)],
      ]);
      await expectRange(
        storage,
        ['sub'],
        [['sub', 'empty'], ['sub', 'offset'], ['sub', 'window']],
        (k) => expected.get(k[1] as string) as Uint8Array,
      );
    },
  },
  {
    invariant: 4,
    name: 'mutating the input after the batch never changes what is stored',
    async run({ open }) {
      const storage = await open();
      const value = bytes(1, 2, 3);
      const shared = bytes(4, 5);
      await storage.batch([put(['in', 'v'], value), put(['in', 's1'], shared), put(['in', 's2'], shared)]);
      value.fill(0);
      shared.fill(0);
      expectFreshBytes(await storage.get(['in', 'v']), bytes(1, 2, 3), "get(['in','v'])");
      expectFreshBytes(await storage.get(['in', 's1']), bytes(4, 5), "get(['in','s1'])");
      expectFreshBytes(await storage.get(['in', 's2']), bytes(4, 5), "get(['in','s2'])");
    },
  },
  {
    invariant: 4,
    name: 'returned values are fresh: independent of the input, of each other and of later reads',
    async run({ open }) {
      const storage = await open();
      const input = bytes(1, 2, 3);
      const shared = bytes(8, 9);
      await storage.batch([put(['out', 'v'], input), put(['out', 's1'], shared), put(['out', 's2'], shared)]);
      const first = await storage.get(['out', 'v']);
      const second = await storage.get(['out', 'v']);
      expectFreshBytes(first, input, 'first get');
      expectFreshBytes(second, input, 'second get');
      expect(first === input || first.buffer === input.buffer, 'get returns the input array').toBe(false);
      expect(first === second || first.buffer === second.buffer, 'two gets share memory').toBe(false);
      first.fill(0xee);
      expectFreshBytes(await storage.get(['out', 'v']), bytes(1, 2, 3), 'get after mutating a returned value');
      const [entry] = await storage.range(['out', 'v']);
      expectFreshBytes(entry?.value, bytes(1, 2, 3), 'range value');
      entry.value.fill(0xdd);
      const again = await storage.range(['out']);
      expectFreshBytes(again[2]?.value, bytes(1, 2, 3), 'range after mutating a returned range value');
      expectFreshBytes(await storage.get(['out', 'v']), bytes(1, 2, 3), 'get after mutating a returned range value');
      // Two keys written from one array: a returned value of one is not the other's.
      const s1 = await storage.get(['out', 's1']);
      expectFreshBytes(s1, shared, "get(['out','s1'])");
      s1.fill(0);
      expectFreshBytes(await storage.get(['out', 's2']), bytes(8, 9), "get(['out','s2']) after mutating s1's copy");
    },
  },
  {
    invariant: 4,
    name: 'stored keys are independent of the key arrays passed in and of returned keys',
    async run({ open }) {
      const storage = await open();
      const key = ['ki', 'one'];
      await storage.batch([put(key, bytes(1))]);
      key[1] = 'two';
      key.push('three');
      expectFreshBytes(await storage.get(['ki', 'one']), bytes(1), "get(['ki','one']) after mutating the key array");
      expect(await storage.get(['ki', 'two'])).toBeUndefined();
      const prefix = ['ki'];
      const entries = await storage.range(prefix);
      prefix[0] = 'zz';
      expect(keysOf(entries)).toEqual([['ki', 'one']]);
      try {
        (entries[0]?.key as string[])[1] = 'hacked';
      } catch {
        // A frozen returned key is fine too.
      }
      expect(keysOf(await storage.range(['ki']))).toEqual([['ki', 'one']]);
    },
  },
  {
    invariant: 4,
    name: 'batch neither mutates nor detaches its inputs',
    async run({ open }) {
      const storage = await open();
      const value = patternBytes(32, 5);
      const original = value.slice();
      const key = ['nm', 'k'];
      const op0 = put(key, value);
      const op1 = del(['nm', 'gone']);
      const ops = [op0, op1];
      await storage.batch(ops);
      expect(value.buffer.byteLength, 'the input buffer was detached (transferred)').toBe(32);
      expectBytesEqual(value, original, 'input value after batch');
      expect(key).toEqual(['nm', 'k']);
      expect(ops).toHaveLength(2);
      expect(ops[0]).toBe(op0);
      expect(ops[1]).toBe(op1);
      expect(op0).toEqual({ type: 'put', key: ['nm', 'k'], value });
      expect(op0.value).toBe(value);
      expect(op1).toEqual({ type: 'delete', key: ['nm', 'gone'] });
    },
  },

  // --- 5. atomic batches ---------------------------------------------------------------
  {
    invariant: 5,
    name: 'a batch with one invalid operation (first, middle or last) applies nothing and rejects with INVALID_ARGUMENT',
    async run({ open }) {
      const storage = await open();
      await storage.batch([put(['bad', 'keep'], bytes(1)), put(['bad', 'gone'], bytes(2))]);
      const good = (): StorageOp[] => [
        put(['bad', 'new'], bytes(9)),
        put(['bad', 'keep'], bytes(8)),
        del(['bad', 'gone']),
      ];
      const untouched = async (what: string) => {
        const entries = await storage.range(['bad']);
        expect(keysOf(entries), `${what}: keys after the rejected batch`).toEqual([
          ['bad', 'gone'],
          ['bad', 'keep'],
        ]);
        expectBytesEqual(entries[0]?.value, bytes(2), `${what}: ['bad','gone']`);
        expectBytesEqual(entries[1]?.value, bytes(1), `${what}: ['bad','keep']`);
      };
      for (const [label, bad] of INVALID_OPS) {
        for (const position of [0, 2, 3]) {
          const ops: unknown[] = good();
          ops.splice(position, 0, bad);
          const what = `batch with ${label} at index ${position}`;
          await expectUsageRejection(what, () => storage.batch(ops as StorageOp[]), 'INVALID_ARGUMENT');
          await untouched(what);
        }
      }
      // A hole in a sparse array is not an operation either.
      const sparse: unknown[] = good();
      sparse.length = 5; // indices 3 and 4 are holes
      await expectUsageRejection('batch with holes', () => storage.batch(sparse as StorageOp[]), 'INVALID_ARGUMENT');
      await untouched('batch with holes');
      for (const [label, notOps] of [
        ['undefined', undefined],
        ['null', null],
        ['an operation instead of an array', good()[0]],
        ['an array-like object', { 0: good()[0], length: 1 }],
      ] as const) {
        await expectUsageRejection(`batch(${label})`, () => storage.batch(notOps as unknown as StorageOp[]), 'INVALID_ARGUMENT');
        await untouched(`batch(${label})`);
      }
    },
  },
  {
    invariant: 5,
    name: 'operations apply in order: put then delete leaves the key absent, delete then put leaves it present',
    async run({ open }) {
      const storage = await open();
      await storage.batch([put(['ord', 'existing'], bytes(1))]);
      await storage.batch([
        put(['ord', 'pd'], bytes(1)),
        del(['ord', 'pd']),
        del(['ord', 'existing']),
        put(['ord', 'existing'], bytes(2)),
        put(['ord', 'pp'], bytes(3)),
        put(['ord', 'pp'], bytes(4, 4)),
        put(['ord', 'pdp'], bytes(5)),
        del(['ord', 'pdp']),
        put(['ord', 'pdp'], bytes(6)),
        put(['ord', 'a', 'b'], bytes(7)),
        del(['ord', 'a/b']), // a different key: must not remove ['ord','a','b']
      ]);
      expect(await storage.get(['ord', 'pd'])).toBeUndefined();
      expectFreshBytes(await storage.get(['ord', 'existing']), bytes(2), 'delete then put');
      expectFreshBytes(await storage.get(['ord', 'pp']), bytes(4, 4), 'put then put');
      expectFreshBytes(await storage.get(['ord', 'pdp']), bytes(6), 'put, delete, put');
      expectFreshBytes(await storage.get(['ord', 'a', 'b']), bytes(7), "['ord','a','b'] after deleting ['ord','a/b']");
      expect(keysOf(await storage.range(['ord']))).toEqual([
        ['ord', 'a', 'b'],
        ['ord', 'existing'],
        ['ord', 'pdp'],
        ['ord', 'pp'],
      ]);
    },
  },
  {
    invariant: 5,
    name: 'an empty batch resolves and changes nothing',
    async run({ open }) {
      const storage = await open();
      await storage.batch([put(['e'], bytes(1))]);
      await storage.batch([]);
      expect(keysOf(await storage.range(['e']))).toEqual([['e']]);
    },
  },
  {
    invariant: 5,
    name: `a batch of ${STORAGE_LIMITS.maxBatchOps} operations is accepted`,
    async run({ open }) {
      const storage = await open();
      const n = STORAGE_LIMITS.maxBatchOps;
      const keyOf = (i: number) => ['many', String(i).padStart(5, '0')];
      await storage.batch(Array.from({ length: n }, (_, i) => put(keyOf(i), bytes(i & 0xff, i >>> 8))));
      const entries = await storage.range(['many']);
      expect(entries).toHaveLength(n);
      entries.forEach((entry, i) => {
        if (entry.key[1] !== keyOf(i)[1]) throw new Error(`entry ${i}: expected ${fmt(keyOf(i))}, got ${fmt(entry.key)}`);
        expectBytesEqual(entry.value, bytes(i & 0xff, i >>> 8), `entry ${i}`);
      });
      await storage.batch(Array.from({ length: n }, (_, i) => del(keyOf(i))));
      expect(await storage.range(['many'])).toEqual([]);
    },
  },

  // --- 6. deletion ---------------------------------------------------------------------
  {
    invariant: 6,
    name: 'delete removes the entry from get and range; deleting an absent key resolves',
    async run({ open }) {
      const storage = await open();
      await storage.batch([put(['d', '1'], bytes(1)), put(['d', '2'], bytes(2)), put(['d', '1', 'x'], bytes(3))]);
      await storage.batch([del(['d', '1'])]);
      expect(await storage.get(['d', '1'])).toBeUndefined();
      expect(keysOf(await storage.range(['d']))).toEqual([['d', '1', 'x'], ['d', '2']]);
      await storage.batch([del(['d', 'never']), del(['d', '1']), del(['nothing', 'here'])]);
      await storage.batch([del(['d', '1', 'x']), del(['d', '2'])]);
      expect(await storage.range(['d'])).toEqual([]);
    },
  },

  // --- 7. values -----------------------------------------------------------------------
  {
    invariant: 7,
    name: 'an empty value is a value, distinct from absent',
    async run({ open }) {
      const storage = await open();
      await storage.batch([put(['empty'], new Uint8Array(0))]);
      expectFreshBytes(await storage.get(['empty']), new Uint8Array(0), "get(['empty'])");
      await expectRange(storage, ['empty'], [['empty']], () => new Uint8Array(0));
      await storage.batch([del(['empty'])]);
      expect(await storage.get(['empty'])).toBeUndefined();
    },
  },
  {
    invariant: 7,
    name: '1 MiB values are stored exactly, and a shorter overwrite leaves no trailing bytes',
    async run({ open }) {
      const storage = await open();
      const big = patternBytes(MIB, 11);
      const other = patternBytes(MIB, 12);
      await storage.batch([put(['big', '1'], big), put(['big', '2'], other)]);
      expectFreshBytes(await storage.get(['big', '1']), big, "get(['big','1'])");
      expectFreshBytes(await storage.get(['big', '2']), other, "get(['big','2'])");
      const entries = await storage.range(['big']);
      expectFreshBytes(entries[0]?.value, big, "range(['big'])[0]");
      expectFreshBytes(entries[1]?.value, other, "range(['big'])[1]");
      await storage.batch([put(['big', '1'], bytes(1, 2, 3))]);
      expectFreshBytes(await storage.get(['big', '1']), bytes(1, 2, 3), 'after a shorter overwrite');
    },
  },
  {
    invariant: 7,
    name: `values of the adapter's largest size (STORAGE_LIMITS.maxValueBytes, ${STORAGE_LIMITS.maxValueBytes} bytes, unless it declares less) are stored exactly, and one byte more is refused`,
    async run({ open, maxValueBytes }) {
      const storage = await open();
      await expectUsageRejection('a value one byte over the limit', () => storage.batch([put(['over'], new Uint8Array(maxValueBytes + 1))]), 'INVALID_ARGUMENT');
      expect(await storage.get(['over'])).toBeUndefined();
      const max = patternBytes(maxValueBytes, 13);
      await storage.batch([put(['max'], max)]);
      expectFreshBytes(await storage.get(['max']), max, "get(['max'])");
    },
  },

  // --- 8. durability -------------------------------------------------------------------
  {
    invariant: 8,
    needsReopen: true,
    name: 'data written by resolved batches survives close and reopen (odd keys, empty and 1 MiB values, deletions, order)',
    async run({ open, reopen }) {
      const first = await open();
      const valueOf = valueForIndex(COLLIDING_KEYS);
      const keys = COLLIDING_KEYS.map((k) => ['p', ...k]);
      const pValue = (k: StorageKey) => valueOf(k.slice(1));
      const big = patternBytes(MIB, 21);
      await first.batch(keys.map((k) => put(k, pValue(k))));
      await first.batch([put(['q', 'empty'], new Uint8Array(0)), put(['q', 'big'], big), put(['q', 'deleted'], bytes(1))]);
      await first.batch([del(['q', 'deleted'])]);

      const second = await reopen(first);
      await expectUsageRejection('get on the instance closed by reopen', () => first.get(['q', 'big']), 'CLOSED');
      await expectRange(second, ['p'], [...keys].sort(compareStorageKeys), pValue);
      expectFreshBytes(await second.get(['q', 'empty']), new Uint8Array(0), 'empty value after reopen');
      expectFreshBytes(await second.get(['q', 'big']), big, '1 MiB value after reopen');
      expect(await second.get(['q', 'deleted'])).toBeUndefined();

      // Write through the reopened instance, close it explicitly, then reopen again.
      await second.batch([del(['q', 'big']), put(['q', 'later'], bytes(2))]);
      await second.close();
      const third = await reopen(second);
      expect(keysOf(await third.range(['q']))).toEqual([['q', 'empty'], ['q', 'later']]);
      expectFreshBytes(await third.get(['q', 'later']), bytes(2), 'value written after the first reopen');
    },
  },

  // --- 9. close ------------------------------------------------------------------------
  {
    invariant: 9,
    name: 'close is idempotent, also when called concurrently',
    async run({ open }) {
      const storage = await open();
      await storage.batch([put(['c'], bytes(1))]);
      await Promise.all([storage.close(), storage.close()]);
      await storage.close();
    },
  },
  {
    invariant: 9,
    name: 'every method after close rejects with a UsageError CLOSED',
    async run({ open }) {
      const storage = await open();
      await storage.batch([put(['c'], bytes(1))]);
      await storage.close();
      await expectUsageRejection('get after close', () => storage.get(['c']), 'CLOSED');
      await expectUsageRejection('get of an absent key after close', () => storage.get(['absent']), 'CLOSED');
      await expectUsageRejection('range after close', () => storage.range(['c']), 'CLOSED');
      await expectUsageRejection('range with limit after close', () => storage.range(['c'], { limit: 1 }), 'CLOSED');
      await expectUsageRejection('batch after close', () => storage.batch([put(['c'], bytes(2))]), 'CLOSED');
      await expectUsageRejection('empty batch after close', () => storage.batch([]), 'CLOSED');
      await expectUsageRejection('delete after close', () => storage.batch([del(['c'])]), 'CLOSED');
      await storage.close();
      expect(storage.specificationVersion).toBe(STORAGE_SPECIFICATION_VERSION);
    },
  },

  // --- 10. concurrency -----------------------------------------------------------------
  {
    invariant: 10,
    name: 'concurrent readers never observe half of a concurrent batch',
    async run({ open }) {
      const storage = await open();
      const n = 64;
      const generations = 12;
      const side = (g: number) => (g % 2 === 0 ? 'even' : 'odd');
      const id = (i: number) => String(i).padStart(3, '0');
      // Batch g moves every entry from side(g - 1) to side(g) and stamps it with g, so a
      // state mixing two batches shows up as a wrong count, side or stamp.
      const opsFor = (g: number): StorageOp[] =>
        Array.from({ length: n }, (_, i) => [del(['iso', side(g - 1), id(i)]), put(['iso', side(g), id(i)], bytes(g, i))]).flat();
      const check = (entries: StorageEntry[], what: string): number => {
        expect(entries, `${what}: entry count`).toHaveLength(n);
        const g = entries[0]?.value[0] as number;
        entries.forEach((entry, i) => {
          const ok = entry.key[1] === side(g) && entry.key[2] === id(i) && entry.value[0] === g && entry.value[1] === i;
          if (!ok) throw new Error(`${what}: entry ${i} is ${fmt(entry.key)} stamped ${entry.value[0]}, expected generation ${g}`);
        });
        return g;
      };
      await storage.batch(opsFor(0));
      let writing = true;
      const writes = Promise.all(Array.from({ length: generations }, (_, g) => storage.batch(opsFor(g + 1)))).finally(() => {
        writing = false;
      });
      let reads = 0;
      const reader = async (r: number) => {
        // Reads until every batch has settled (bounded, in case a batch never settles).
        for (let k = 0; k < 10_000; k++) {
          check(await storage.range(['iso']), `reader ${r}, read ${k}`);
          reads++;
          if (!writing) return;
        }
      };
      await Promise.all([writes, reader(0), reader(1), reader(2)]);
      expect(reads).toBeGreaterThanOrEqual(3);
      check(await storage.range(['iso']), 'final state');
    },
  },
  {
    invariant: 10,
    name: 'concurrent batches from many callers all land',
    async run({ open }) {
      const storage = await open();
      const n = 50;
      const key = (i: number) => ['many-callers', String(i).padStart(2, '0')];
      await Promise.all([
        ...Array.from({ length: n }, (_, i) => storage.batch([put(key(i), bytes(i))])),
        ...Array.from({ length: n }, (_, i) => storage.get(key(i))),
      ]);
      const entries = await storage.range(['many-callers']);
      expect(keysOf(entries)).toEqual(Array.from({ length: n }, (_, i) => key(i)));
      entries.forEach((entry, i) => expectBytesEqual(entry.value, bytes(i), `entry ${i}`));
    },
  },
  // --- 11. exclusive lock --------------------------------------------------------------
  {
    invariant: 11,
    needsExclusive: true,
    name: 'exclusive returns what fn resolves, rejects with what fn throws, and releases the lock either way',
    async run({ open }) {
      const storage = await open();
      const exclusive = lockOf(storage);
      expect(await exclusive(async () => 42)).toBe(42);
      const failure = new Error('fn failed');
      await expect(exclusive(async () => Promise.reject(failure))).rejects.toBe(failure);
      // Storage calls work inside the lock, and the lock is free again after a rejection.
      const inside = await exclusive(async () => {
        await storage.batch([put(['lock', 'inside'], bytes(7))]);
        return storage.get(['lock', 'inside']);
      });
      expectBytesEqual(inside!, bytes(7), 'value written and read inside exclusive');
    },
  },
  {
    invariant: 11,
    needsExclusive: true,
    name: 'concurrent exclusive calls on one adapter never overlap, and every read-modify-write lands',
    async run({ open }) {
      const storage = await open();
      await expectSerialisedCounter([storage, storage], 'one adapter');
    },
  },
  {
    invariant: 11,
    needsExclusive: true,
    needsShared: true,
    name: 'exclusive calls through two adapters over the same backend never overlap, and every read-modify-write lands',
    async run({ open, openShared }) {
      const first = await open();
      const second = await openShared(first);
      await expectSerialisedCounter([first, second], 'two adapters on one backend');
    },
  },
  {
    invariant: 11,
    needsExclusive: true,
    name: 'exclusive after close rejects with a UsageError CLOSED, and does not run fn',
    async run({ open }) {
      const storage = await open();
      const exclusive = lockOf(storage);
      await storage.close();
      let ran = false;
      await expectUsageRejection(
        'exclusive after close',
        () =>
          exclusive(async () => {
            ran = true;
          }),
        'CLOSED',
      );
      expect(ran, 'fn ran after close').toBe(false);
    },
  },

  // --- 12. range windows ----------------------------------------------------------------
  {
    invariant: 12,
    name: 'range windows: reverse with limit reads the last entries; after and before are exclusive; an empty window returns none',
    async run({ open }) {
      const storage = await open();
      const keys: StorageKey[] = ['1', '2', '3', '4', '5', '6', '7', '8', '9'].map((n) => ['m', 'bob', n]);
      const valueOf = valueForIndex(keys);
      await storage.batch([...shuffled(keys).map((k) => put(k, valueOf(k))), put(['m', 'carol', '1'], bytes(1)), put(['m'], bytes(2))]);
      const window = async (options: RangeOptions): Promise<string[]> => {
        const entries = await storage.range(['m', 'bob'], options);
        entries.forEach((e, i) => expectFreshBytes(e.value, valueOf(e.key), `range window ${JSON.stringify(options)}[${i}].value`));
        return entries.map((e) => e.key[2] as string);
      };
      expect(await window({ reverse: true, limit: 3 }), 'the three last, newest first').toEqual(['9', '8', '7']);
      expect(await window({ reverse: true }), 'every entry, descending').toEqual(['9', '8', '7', '6', '5', '4', '3', '2', '1']);
      expect(await window({ reverse: false, limit: 2 }), 'reverse: false is the default order').toEqual(['1', '2']);
      expect(await window({ before: ['m', 'bob', '7'], reverse: true, limit: 2 }), 'the page before 7').toEqual(['6', '5']);
      expect(await window({ after: ['m', 'bob', '2'], before: ['m', 'bob', '5'] }), 'strictly between').toEqual(['3', '4']);
      expect(await window({ after: ['m', 'bob', '2'], limit: 2 }), 'the page after 2').toEqual(['3', '4']);
      expect(await window({ after: ['m', 'bob', '5'], before: ['m', 'bob', '5'] }), 'an empty window').toEqual([]);
      expect(await window({ after: ['m', 'bob', '7'], before: ['m', 'bob', '3'] }), 'after past before').toEqual([]);
      expect(await window({ after: ['m', 'bob', '9'] }), 'nothing after the last').toEqual([]);
      expect(await window({ reverse: true, limit: 0 }), 'limit 0').toEqual([]);
      // Bounds outside the prefix, or that only extend a stored key, are bounds like any other.
      expect(await window({ after: ['m', 'bob'], before: ['m', 'carol'], limit: 1 })).toEqual(['1']);
      expect(await window({ after: ['a'], before: ['z'], reverse: true, limit: 1 })).toEqual(['9']);
      expect(await window({ after: ['m', 'bob', '4', 'x'], limit: 1 }), 'after an extension of 4').toEqual(['5']);
      expect(await window({ before: ['m', 'bob', '4', 'x'], reverse: true, limit: 1 }), 'before an extension of 4').toEqual(['4']);
      expect(await window({ before: ['m', 'bob'] }), 'before the prefix itself').toEqual([]);
      expect(await window({ after: ['n'] }), 'after everything under the prefix').toEqual([]);
    },
  },
  {
    invariant: 12,
    name: 'range windows agree with the contract comparator for every bound, direction and limit (separators, NUL, surrogates, prefixes)',
    async run({ open }) {
      const storage = await open();
      const valueOf = valueForIndex(ORDERED_KEYS);
      await storage.batch(shuffled(ORDERED_KEYS).map((k) => put(k, valueOf(k))));
      // Stored keys, keys between stored ones, extensions and keys outside the prefix.
      const bounds: StorageKey[] = [
        ['o'],
        ['o', ''],
        ['o', '', 'x', 'y'],
        ['o', '\u0000'],
        ['o', '10'],
        ['o', '5'],
        ['o', 'a', 'b'],
        ['o', 'a\u0000'],
        ['o', '\ud800'],
        ['o', '\ud83d\ude00'],
        ['o', '\udc00'],
        ['o', '\uffff', '\uffff'],
        ['n', '\uffff'],
        ['p'],
      ];
      const expected = (options: { after?: StorageKey; before?: StorageKey; reverse?: boolean; limit?: number }): string[][] => {
        const inside = ORDERED_KEYS.filter(
          (k) => (options.after === undefined || compareStorageKeys(k, options.after) > 0) && (options.before === undefined || compareStorageKeys(k, options.before) < 0),
        );
        if (options.reverse) inside.reverse();
        return inside.slice(0, options.limit ?? Infinity).map((k) => [...k]);
      };
      const check = async (options: { after?: StorageKey; before?: StorageKey; reverse?: boolean; limit?: number }): Promise<void> => {
        const label = `range(['o'], ${fmt(options)})`;
        const entries = await storage.range(['o'], options);
        expect(keysOf(entries), label).toEqual(expected(options));
        entries.forEach((entry, i) => expectFreshBytes(entry.value, valueOf(entry.key), `${label}[${i}].value`));
      };
      for (const bound of bounds) {
        for (const reverse of [false, true]) {
          for (const limit of [undefined, 3]) {
            await check({ after: bound, reverse, ...(limit === undefined ? {} : { limit }) });
            await check({ before: bound, reverse, ...(limit === undefined ? {} : { limit }) });
          }
        }
      }
      for (let i = 0; i < bounds.length; i++) {
        for (let j = 0; j < bounds.length; j += 3) {
          await check({ after: bounds[i] as StorageKey, before: bounds[j] as StorageKey, reverse: (i + j) % 2 === 0, limit: 4 });
        }
      }
    },
  },
  {
    invariant: 12,
    name: 'invalid range options reject with INVALID_ARGUMENT (reverse not a boolean, a bound that is not a valid key)',
    async run({ open }) {
      const storage = await open();
      await storage.batch([put(['w', '1'], bytes(1))]);
      const bad: ReadonlyArray<readonly [string, unknown]> = [
        ['reverse: "yes"', { reverse: 'yes' }],
        ['reverse: 1', { reverse: 1 }],
        ['after: []', { after: [] }],
        ['after: "w"', { after: 'w' }],
        ['after: [1]', { after: [1] }],
        ['before: nine segments', { before: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'] }],
        ['before: null', { before: null }],
      ];
      for (const [label, options] of bad) {
        await expectUsageRejection(`range(['w'], { ${label} })`, () => storage.range(['w'], options as RangeOptions), 'INVALID_ARGUMENT');
      }
    },
  },
];

function lockOf(storage: StorageAdapter): <T>(fn: () => Promise<T>) => Promise<T> {
  const exclusive = storage.exclusive;
  if (exclusive === undefined) {
    throw new Error('the adapter has no exclusive(): implement invariant 11, or declare `exclusive: false` in the factory');
  }
  return <T>(fn: () => Promise<T>): Promise<T> => exclusive.call(storage, fn) as Promise<T>;
}

/**
 * Runs read-modify-write increments of one counter under `exclusive` through each adapter
 * in turn, all at once, with an await between the read and the write (where a missing
 * lock lets another caller in). Every increment must land and no two may overlap.
 */
async function expectSerialisedCounter(adapters: readonly StorageAdapter[], what: string): Promise<void> {
  const perAdapter = 10;
  const key = ['lock', 'counter'];
  let inside = 0;
  let maxInside = 0;
  const increment = (storage: StorageAdapter) =>
    lockOf(storage)(async () => {
      inside++;
      maxInside = Math.max(maxInside, inside);
      try {
        const current = (await storage.get(key))?.[0] ?? 0;
        await storage.get(['lock', 'spacer']); // one more round trip between read and write
        await storage.batch([put(key, bytes(current + 1))]);
      } finally {
        inside--;
      }
    });
  const calls: Promise<void>[] = [];
  for (let i = 0; i < perAdapter; i++) for (const storage of adapters) calls.push(increment(storage));
  await Promise.all(calls);
  expect(maxInside, `${what}: most exclusive sections running at once`).toBe(1);
  const final = await (adapters[0] as StorageAdapter).get(key);
  expect(final?.[0], `${what}: counter after ${calls.length} locked increments`).toBe(calls.length);
}
