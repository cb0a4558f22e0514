/**
 * The relay's own persistence contract (version `deadbolt.relay-store.v1`).
 *
 * A relay store keeps four things: pinned account keys, device certificates, prekeys and
 * mailboxes. It sees only user and device ids, small integers (prekey ids, counts, times)
 * and **opaque bytes**: it never decodes a certificate, a key or a message frame, and it
 * makes no assumption about the backend (SQLite and memory ship here; a PostgreSQL store
 * would implement the same interface with one transaction per method).
 *
 * The conformance suite `describeRelayStoreConformance` in `@deadbolt/test-kit` checks
 * every numbered invariant below; every store runs it.
 *
 * Invariants:
 * 1. **Atomic operations.** Every method is one all-or-nothing step: concurrent calls
 *    (from this process or, for shared backends, from others) behave as if run one after
 *    another, and a crash leaves either the whole effect or none of it. A method that
 *    resolves has durably committed its effect (a relay answers OK only after that,
 *    SECURITY.md F44).
 * 2. **Accounts.** At most one account key is pinned per user id. {@link RelayStore.setAccountKey}
 *    is a compare-and-set: it pins the key only if the currently pinned key equals
 *    `expected` (`undefined` = none). Replacing a pinned key deletes, in the same step,
 *    every device, prekey and mailbox of that user: they belonged to the old account.
 * 3. **Devices.** A device is registered only together with the account key it was
 *    verified under: {@link RelayStore.registerDevice} refuses (`account-mismatch`) when
 *    that key is no longer the pinned one, and (`too-many-devices`) past `maxDevices`.
 *    Registering a different certificate for an existing device replaces it and deletes
 *    the device's prekeys in the same step (they were signed by the old device key).
 *    Devices list in ascending code-unit order of their ids.
 * 4. **Prekeys.** {@link RelayStore.putPrekeys} replaces the signed prekey and last-resort
 *    key and adds one-time keys idempotently by id: an id already stored keeps its first
 *    bytes, and an id among the last `quota.rememberConsumed` handed out for that device
 *    and kind is never stored again. An upload that would leave more than the quota of
 *    one-time keys stores nothing (`quota`). One-time X25519 and PQ ids are separate
 *    namespaces.
 * 5. **Bundles.** {@link RelayStore.takeBundle} removes the lowest-id one-time X25519 key
 *    and the lowest-id one-time PQ key *in the same atomic step* and returns them: no
 *    one-time key is ever returned twice, even to concurrent calls. When a kind has run
 *    out it is absent from the result (the relay then serves the last-resort PQ key).
 * 6. **Mailboxes.** {@link RelayStore.enqueue} stores a batch of messages, for any number
 *    of mailboxes, all or none: if any recipient device is unknown, or any mailbox would
 *    exceed `maxMessages` or `maxBytes` (frame bytes), or the sender *user* would have
 *    more than `maxPerSender` messages queued in one mailbox, nothing is stored. Several
 *    messages of one batch to the same mailbox count together. Ids are assigned by the
 *    store: opaque strings of 1 to 64 characters, unique within the mailbox, and not
 *    derived from any global counter (they reveal nothing about other mailboxes).
 * 7. **Fetch** returns a mailbox's messages in arrival (enqueue) order, at most `limit`,
 *    skipping ids in `exclude`, and stops before the message that would take the frame
 *    bytes over `maxBytes` (always returning at least one message if any is waiting).
 *    Fetching never removes anything.
 * 8. **Ack** deletes only messages of the named mailbox: an id of another mailbox, an
 *    unknown id or a repeated id has no effect. It returns how many it deleted. Deleted
 *    messages free their quota at once.
 * 9. **Copies.** Bytes are copied in and out: mutating an input after the call, or an
 *    output, never changes what is stored. Only the bytes a view covers are stored.
 * 10. **Close** is idempotent; afterwards every method rejects with `UsageError` `CLOSED`.
 *
 * @module
 */

/** The relay store contract version a store implements. */
export const RELAY_STORE_SPECIFICATION_VERSION = 'deadbolt.relay-store.v1';

/** A device address as the store sees it: two opaque ids. */
export interface StoreAddress {
  readonly userId: string;
  readonly deviceId: string;
}

/** A registered device. */
export interface StoredDevice {
  readonly deviceId: string;
  /** The encoded device certificate, exactly as registered. */
  readonly certificate: Uint8Array;
}

/** The outcome of {@link RelayStore.registerDevice}. */
export type RegisterDeviceResult = 'registered' | 'unchanged' | 'replaced' | 'account-mismatch' | 'too-many-devices';

/** One one-time prekey: its id and opaque bytes. */
export interface StoredPrekey {
  readonly id: number;
  readonly key: Uint8Array;
}

/** What {@link RelayStore.putPrekeys} stores for one device. */
export interface PrekeyPut {
  /** Replaces the device's signed prekey (opaque). */
  readonly signedPrekey: Uint8Array;
  /** Replaces the device's last-resort PQ prekey (opaque). */
  readonly lastResortPrekey: Uint8Array;
  /** One-time X25519 prekeys to add (ids unique within the list). */
  readonly oneTimePrekeys: readonly StoredPrekey[];
  /** One-time PQ prekeys to add (ids unique within the list). */
  readonly pqPrekeys: readonly StoredPrekey[];
}

/** Bounds on the prekeys kept per device. */
export interface PrekeyQuota {
  /** Most one-time X25519 keys stored at once. */
  readonly maxOneTime: number;
  /** Most one-time PQ keys stored at once. */
  readonly maxPq: number;
  /** How many handed-out ids per device and kind are remembered, so they are never stored again. */
  readonly rememberConsumed: number;
}

/** How many one-time keys a device has left. */
export interface PrekeyCounts {
  readonly oneTime: number;
  readonly pq: number;
}

/** The outcome of {@link RelayStore.putPrekeys}. */
export type PutPrekeysResult =
  | { readonly ok: true; readonly counts: PrekeyCounts }
  | { readonly ok: false; readonly reason: 'unknown-device' | 'quota' };

/** The parts of one bundle, taken by {@link RelayStore.takeBundle}. */
export interface TakenBundle {
  readonly signedPrekey: Uint8Array;
  readonly lastResortPrekey: Uint8Array;
  /** The removed one-time X25519 key; absent when none was left. */
  readonly oneTimePrekey?: StoredPrekey;
  /** The removed one-time PQ key; absent when none was left. */
  readonly pqPrekey?: StoredPrekey;
  /** What is left after this take. */
  readonly remaining: PrekeyCounts;
}

/** A batch of messages from one sender. */
export interface EnqueueBatch {
  /** The authenticated sender, recorded with every message. */
  readonly from: StoreAddress;
  /** When the relay accepted the batch (ms since the epoch). */
  readonly receivedAt: number;
  readonly messages: readonly { readonly to: StoreAddress; readonly frame: Uint8Array }[];
}

/** Bounds on one mailbox. */
export interface MailboxQuota {
  /** Most messages queued in one mailbox. */
  readonly maxMessages: number;
  /** Most frame bytes queued in one mailbox. */
  readonly maxBytes: number;
  /** Most messages one sender user may keep queued in one mailbox. */
  readonly maxPerSender: number;
}

/** The outcome of {@link RelayStore.enqueue}. On failure, `to` names the first refusing mailbox. */
export type EnqueueResult =
  | { readonly ok: true; readonly ids: readonly string[] }
  | { readonly ok: false; readonly reason: 'unknown-device' | 'mailbox-full'; readonly to: StoreAddress };

/** A queued message. */
export interface StoredMessage {
  readonly id: string;
  readonly from: StoreAddress;
  readonly receivedAt: number;
  readonly frame: Uint8Array;
}

/** Options of {@link RelayStore.fetch}. */
export interface FetchOptions {
  /** Most messages returned (at least 1). */
  readonly limit: number;
  /** Stop before the message that would take the frame bytes over this (at least one is returned). */
  readonly maxBytes?: number;
  /** Ids to skip (for example those already in flight on a connection). */
  readonly exclude?: ReadonlySet<string>;
}

/** A mailbox's size. */
export interface MailboxStats {
  readonly messages: number;
  readonly bytes: number;
}

/**
 * The relay's persistence. Every method is async and atomic; see the module
 * documentation for the invariants the conformance suite checks.
 *
 * @example
 * ```ts
 * const store = createSqliteRelayStore({ path: './relay.db' });
 * await store.setAccountKey('alice', accountKey, undefined);
 * const result = await store.enqueue(
 *   { from: alice, receivedAt: Date.now(), messages: [{ to: bob, frame }] },
 *   { maxMessages: 10_000, maxBytes: 64 * 1024 * 1024, maxPerSender: 1000 },
 * );
 * ```
 */
export interface RelayStore {
  /** Which contract this store implements. */
  readonly specificationVersion: typeof RELAY_STORE_SPECIFICATION_VERSION;

  // --- accounts (invariant 2) ------------------------------------------------------------
  /** The account key pinned for `userId`, or `undefined`. */
  getAccountKey(userId: string): Promise<Uint8Array | undefined>;
  /**
   * Pins `accountKey` for `userId` if the pinned key equals `expected` (`undefined`: none
   * pinned). Returns whether it did. A replacement deletes the user's devices, prekeys
   * and mailboxes in the same step. Setting the key already pinned is a no-op returning
   * true when `expected` matches.
   */
  setAccountKey(userId: string, accountKey: Uint8Array, expected: Uint8Array | undefined): Promise<boolean>;

  // --- devices (invariant 3) -------------------------------------------------------------
  /** Registers (or re-registers) a device verified under `accountKey`. */
  registerDevice(address: StoreAddress, accountKey: Uint8Array, certificate: Uint8Array, maxDevices: number): Promise<RegisterDeviceResult>;
  /** A device's certificate, or `undefined`. */
  getDevice(address: StoreAddress): Promise<Uint8Array | undefined>;
  /** The user's devices, ordered by device id. */
  listDevices(userId: string): Promise<StoredDevice[]>;

  // --- prekeys (invariants 4, 5) ---------------------------------------------------------
  /** Stores a device's prekeys (replace signed and last-resort, add one-time keys by id). */
  putPrekeys(address: StoreAddress, put: PrekeyPut, quota: PrekeyQuota): Promise<PutPrekeysResult>;
  /** Takes one bundle's keys atomically; `undefined` if the device has no signed prekey. */
  takeBundle(address: StoreAddress): Promise<TakenBundle | undefined>;
  /** How many one-time keys a device has left (zeros for an unknown device). */
  prekeyCounts(address: StoreAddress): Promise<PrekeyCounts>;

  // --- mailboxes (invariants 6, 7, 8) ----------------------------------------------------
  /** Stores a batch of messages, all or none, within the quotas. */
  enqueue(batch: EnqueueBatch, quota: MailboxQuota): Promise<EnqueueResult>;
  /** A mailbox's waiting messages in arrival order. */
  fetch(mailbox: StoreAddress, options: FetchOptions): Promise<StoredMessage[]>;
  /** Deletes the named messages of this mailbox only; returns how many were deleted. */
  ack(mailbox: StoreAddress, ids: readonly string[]): Promise<number>;
  /** A mailbox's message count and frame bytes. */
  stats(mailbox: StoreAddress): Promise<MailboxStats>;

  /** Releases the backend. Idempotent (invariant 10). */
  close(): Promise<void>;
}
