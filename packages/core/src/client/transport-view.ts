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
 *   `onPathChange`, `directLinksDisabled`), read live, functions bound to the adapter.
 *
 * The view cannot be written to. An application that needs a refused member of a
 * transport it created keeps its own reference to it (and takes on what core would
 * otherwise guarantee).
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
  | { [K in keyof ContractMembers]: ContractMembers[K] extends 'acts' ? K : never }[keyof ContractMembers]
  | (typeof ACTING_EXTRAS)[number]
  | `attach${string}`;

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

function acts(name: string | symbol): name is string {
  return typeof name === 'string' && (ACTING.has(name) || name.startsWith('attach'));
}

function refused(name: string, why: string): UsageError<'INVALID_ARGUMENT'> {
  return new UsageError('INVALID_ARGUMENT', {
    message: `client.transport.${name}: ${why}`,
    details: { field: `transport.${name}`, expected: 'a read-only member (state, maxFrameSize, onStateChange, onNotice, the adapter\'s own observation API)' },
  });
}

/**
 * The read-only view of `transport` (see the module comment).
 *
 * @example
 * ```ts
 * const view = readonlyTransport(transport);
 * view.onStateChange((state) => console.log(state)); // observes the transport itself
 * view.onFrame(handler); // throws UsageError INVALID_ARGUMENT: the client owns the frames
 * ```
 */
export function readonlyTransport<T extends TransportAdapter>(transport: T): ReadonlyTransport<T> {
  /** Bound functions by the adapter's function, so that a member reads the same each time. */
  const bound = new WeakMap<(...args: never[]) => unknown, unknown>();
  const readOnly = (_: object, name: string | symbol): never => {
    throw refused(String(name), 'the view is read-only (the client owns its transport)');
  };
  const read = (name: string | symbol): unknown => {
    if (acts(name)) throw refused(name, 'the client alone sends, receives, connects, closes and routes through its transport');
    const value: unknown = Reflect.get(transport, name, transport);
    if (typeof value !== 'function') return value;
    const fn = value as (...args: never[]) => unknown;
    let b = bound.get(fn);
    if (b === undefined) bound.set(fn, (b = fn.bind(transport)));
    return b;
  };
  // The target is an empty object of the view's own: the traps read the adapter, and
  // nothing reaches the target, so no proxy invariant ties the view to the adapter's shape.
  const view = new Proxy(Object.create(null) as object, {
    get: (_, name) => read(name),
    has: (_, name) => !acts(name) && name in transport,
    ownKeys: () => Reflect.ownKeys(transport).filter((name) => !acts(name)),
    getOwnPropertyDescriptor(_, name): PropertyDescriptor | undefined {
      const own = acts(name) ? undefined : Reflect.getOwnPropertyDescriptor(transport, name);
      return own && { value: read(name), writable: false, enumerable: own.enumerable ?? false, configurable: true };
    },
    set: readOnly,
    defineProperty: readOnly,
    deleteProperty: readOnly,
    setPrototypeOf: () => readOnly(transport, 'prototype'),
  });
  return view as ReadonlyTransport<T>;
}
