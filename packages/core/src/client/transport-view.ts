/**
 * `client.transport`: a read-only view of the transport a client runs on.
 *
 * The client needs the transport to itself. Core registers the transport's **single**
 * frame handler (transport contract invariant 2): a second `onFrame` replaces it, the
 * frames are then acknowledged to the relay once the other handler resolves, and core
 * never decrypts or stores them (lost for good, and the client stays deaf after that
 * handler is removed). Core attaches the signalling channel of a transport with direct
 * links (docs/protocol.md §11.1); another `attachSignalling` replaces it. A `send` with
 * `contact: true` from outside would open direct links the user never chose (WebRTC review
 * 2, finding 1); `fetchBundles` takes one-time prekeys; `connect` and `close` would go
 * round the client's own start and close. So the application gets a view (hostile review
 * 13, finding 2) in which every member is one of:
 *
 * - **read** (an allowlist): the contract's state and observation members,
 *   `specificationVersion`, `maxFrameSize`, `state`, `onStateChange`, `onNotice`, read
 *   live from the adapter;
 * - **refused** (a denylist): every contract member that sends, receives, connects, closes
 *   or changes routing (`connect`, `close`, `send`,
 *   `sendShared`, `onFrame`, `fetchBundles`, `publishPrekeys`, `publishDeviceList`,
 *   `provisionPut`, `provisionTake`, `attachSignalling`, `closeLinksTo`), the known acting
 *   extras (the WebRTC transport's `preconnect`), and any member whose name starts with
 *   `attach`: reading one throws a `UsageError` `INVALID_ARGUMENT` naming it, and the
 *   view's type ({@link ReadonlyTransport}) leaves them out;
 * - **passed through**: the adapter's other extras (the WebRTC transport's `path`,
 *   `onPathChange`, `directLinksDisabled`), read live, functions wrapped to run on the
 *   adapter;
 * - **hidden** (reads as `undefined`, absent from `in` and the keys): `constructor`, and
 *   every member the adapter only inherits from `Object.prototype` (`valueOf`,
 *   `hasOwnProperty`, `__proto__`, `__defineGetter__`, `__lookupGetter__`, …).
 *
 * Nothing on the view hands out the adapter itself (hostile review 13b): a member is looked
 * up on the adapter and its prototype chain *before* `Object.prototype` (of whatever realm
 * made the adapter) only, since
 * `Object.prototype.valueOf` run on the adapter returns it (whose `onFrame` then takes the
 * frames) and `__defineGetter__` writes to it. Hidden rather than refused, because
 * libraries probe any object for `constructor`, `valueOf` and the like (test matchers,
 * loggers, frameworks), and because the view already reports a `null` prototype: it behaves
 * as the null-prototype object it says it is. `constructor` is hidden even when the
 * adapter's class defines it: a class reaches nothing dangerous by itself, but one rule
 * reads more simply than two. The one exception is `toString`, which the view supplies when
 * the adapter's chain does not, so that `String(view)` and template literals give
 * `[object <the adapter's Symbol.toStringTag, or Object>]` instead of throwing as a
 * null-prototype object does; `console.log` and `util.inspect` show the view's own empty
 * target (Node's inspect does not run a proxy's traps). A function passed through returns
 * the view where it would return the adapter, or a promise of it (an extra with a fluent
 * API, `return this`); what else it returns or hands to callbacks is the adapter's
 * business (an extra returning an object that holds the adapter would leak it again).
 *
 * The view cannot be written to (nor frozen, nor given a prototype). An application that
 * needs a refused member of a transport it created keeps its own reference to it (and takes
 * on what core would otherwise guarantee).
 *
 * @module
 */
import { UsageError, type TransportAdapter } from '@deadbolt/spec';

/**
 * Every member of the transport contract (packages/spec/src/transport.ts), classified.
 * Typed so that a member added to the contract does not compile here until it is.
 */
const CONTRACT_MEMBERS = {
  specificationVersion: 'reads',
  maxFrameSize: 'reads',
  state: 'reads',
  onStateChange: 'reads',
  onNotice: 'reads',
  connect: 'acts',
  close: 'acts',
  send: 'acts',
  sendShared: 'acts',
  onFrame: 'acts',
  fetchBundles: 'acts',
  publishPrekeys: 'acts',
  publishDeviceList: 'acts',
  provisionPut: 'acts',
  provisionTake: 'acts',
  attachSignalling: 'acts',
  closeLinksTo: 'acts',
} as const satisfies Record<keyof Required<TransportAdapter>, 'reads' | 'acts'>;

type ContractMembers = typeof CONTRACT_MEMBERS;

/** Adapters' own members known to act: the WebRTC transport's `preconnect` opens a direct link. */
const ACTING_EXTRAS = ['preconnect'] as const;

/** Names of the members {@link ReadonlyTransport} leaves out (any starting with `attach` too). */
export type TransportActingMember =
  | 'connect'
  | 'close'
  | 'send'
  | 'sendShared'
  | 'onFrame'
  | 'fetchBundles'
  | 'publishPrekeys'
  | 'publishDeviceList'
  | 'provisionPut'
  | 'provisionTake'
  | 'attachSignalling'
  | 'closeLinksTo'
  | 'preconnect'
  | `attach${string}`;

// The list above, spelled out for the documentation, must be exactly the classification's
// acting members and extras: a compile error here when the two part.
type ClassifiedActing = { [K in keyof ContractMembers]: ContractMembers[K] extends 'acts' ? K : never }[keyof ContractMembers] | (typeof ACTING_EXTRAS)[number] | `attach${string}`;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
true satisfies Same<ClassifiedActing, TransportActingMember>;

/**
 * What `client.transport` offers of a transport `T`: its state and observation members and
 * its own extras, without anything that sends, receives, connects, closes or changes
 * routing (see the module comment).
 *
 * @example
 * ```ts
 * import type { ReadonlyTransport } from '@deadbolt/core';
 * import type { WebRtcTransport } from '@deadbolt/transport-webrtc';
 *
 * const webrtc = client.transport as ReadonlyTransport<WebRtcTransport>;
 * webrtc.onPathChange(({ peer, path }) => console.log(peer.userId, path));
 * console.log(webrtc.state, webrtc.path(bob));
 * ```
 */
export type ReadonlyTransport<T extends TransportAdapter = TransportAdapter> = Readonly<Omit<T, TransportActingMember>>;

/** The members core keeps to itself: the contract's acting members and the known acting extras. */
const ACTING: ReadonlySet<string> = new Set([
  ...Object.keys(CONTRACT_MEMBERS).filter((name) => CONTRACT_MEMBERS[name as keyof ContractMembers] === 'acts'),
  ...ACTING_EXTRAS,
]);

function acts(name: string | symbol): boolean {
  return typeof name === 'string' && (ACTING.has(name) || name.startsWith('attach'));
}

function refused(name: string, why: string): UsageError<'INVALID_ARGUMENT'> {
  return new UsageError('INVALID_ARGUMENT', {
    message: `client.transport.${name}: ${why}`,
    details: { field: `transport.${name}`, expected: 'a read-only member (state, maxFrameSize, onStateChange, onNotice, the adapter\'s own observation API)' },
  });
}

/** Hidden whatever owns it (see the module comment). */
function hidden(name: string | symbol): boolean {
  return name === 'constructor';
}

/**
 * Whether `name` is a member of the view: not hidden, and found on the adapter or on its
 * prototype chain before `Object.prototype` (whose members, run on the adapter, hand it out
 * or change it: see the module comment).
 */
function member(transport: object, name: string | symbol): boolean {
  if (hidden(name)) return false;
  // The chain's last object (the one whose own prototype is null) is an `Object.prototype`,
  // of this realm or of another (an adapter made in an iframe or a `vm` context): never
  // looked at, unless it is the adapter itself.
  for (let o: object | null = transport; o !== null; ) {
    const next = Reflect.getPrototypeOf(o);
    if (next === null && o !== transport) break;
    if (Object.hasOwn(o, name)) return true;
    o = next;
  }
  return false;
}

/**
 * The read-only view of `transport` (see the module comment).
 *
 * @example
 * ```ts
 * const view = readonlyTransport(transport);
 * view.onStateChange((state) => console.log(state)); // observes the transport itself
 * view.onFrame(handler); // throws UsageError INVALID_ARGUMENT: the client owns the frames
 * view.valueOf; // undefined: nothing on the view returns the adapter itself
 * ```
 */
export function readonlyTransport<T extends TransportAdapter>(transport: T): ReadonlyTransport<T> {
  /** Wrapped functions by the adapter's function, so that a member reads the same each time. */
  const wrapped = new WeakMap<(...args: never[]) => unknown, (...args: unknown[]) => unknown>();
  /** The adapter never leaves through the view: where it would, the view comes back. */
  const shield = (value: unknown): unknown => (value === transport ? view : value);
  const wrap = (fn: (...args: never[]) => unknown): ((...args: unknown[]) => unknown) => {
    let w = wrapped.get(fn);
    if (w === undefined) {
      w = (...args) => {
        const result = shield(Reflect.apply(fn, transport, args));
        return result instanceof Promise ? result.then(shield) : result;
      };
      wrapped.set(fn, w);
    }
    return w;
  };
  /** Supplied when the adapter's chain has no `toString` of its own (see the module comment). */
  const toString = (): string => Object.prototype.toString.call(view);
  const readOnly = (_: object, name: string | symbol): never => {
    throw refused(String(name), 'the view is read-only (the client owns its transport)');
  };
  const read = (name: string | symbol): unknown => {
    if (acts(name)) throw refused(String(name), 'the client alone sends, receives, connects, closes and routes through its transport');
    if (!member(transport, name)) return name === 'toString' ? toString : undefined;
    const value: unknown = Reflect.get(transport, name, transport);
    return typeof value === 'function' ? wrap(value as (...args: never[]) => unknown) : shield(value);
  };
  // The target is an empty object of the view's own: the traps read the adapter, and
  // nothing reaches the target, so no proxy invariant ties the view to the adapter's shape.
  const view: object = new Proxy(Object.create(null) as object, {
    get: (_, name) => read(name),
    has: (_, name) => !acts(name) && (member(transport, name) || name === 'toString'),
    ownKeys: () => Reflect.ownKeys(transport).filter((name) => !acts(name) && !hidden(name)),
    getOwnPropertyDescriptor(_, name): PropertyDescriptor | undefined {
      const own = acts(name) || hidden(name) ? undefined : Reflect.getOwnPropertyDescriptor(transport, name);
      return own && { value: read(name), writable: false, enumerable: own.enumerable ?? false, configurable: true };
    },
    set: readOnly,
    defineProperty: readOnly,
    deleteProperty: readOnly,
    setPrototypeOf: () => readOnly(transport, 'prototype'),
    // Left to the target, `Object.freeze(view)` would make it non-extensible, and the
    // proxy invariants would then fail every later listing of the adapter's keys.
    preventExtensions: () => readOnly(transport, 'extensible'),
  });
  return view as ReadonlyTransport<T>;
}
