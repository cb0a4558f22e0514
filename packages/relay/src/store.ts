/**
 * The relay's own persistence contract (version `deadbolt.relay-store.v2`: v1 plus device
 * lists, list-version checks on registration and enqueue, and shared enqueues).
 *
 * A relay store keeps five things: pinned account keys, device lists, device
 * certificates, prekeys and mailboxes. It sees only user and device ids, small integers (prekey ids, counts, times)
 * and **opaque bytes**: it never decodes a certificate, a device list, a key or a message frame, and it
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
 *    every device, prekey and mailbox and the device list of that user: they belonged to
 *    the old account.
 * 3. **Devices.** A device is registered only together with the account key it was
 *    verified under: {@link RelayStore.registerDevice} refuses (`account-mismatch`) when
 *    that key is no longer the pinned one, (`list-mismatch`) when the user's device list is
 *    no longer at the version the certificate was checked against (0: no list), and
 *    (`too-many-devices`) past `maxDevices`.
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
 *    derived from any global counter (they reveal nothing about other mailboxes). When the
 *    batch names `expectedLists`, any named user whose stored list version (0: none)
 *    differs refuses the whole batch first (`list-mismatch`, naming every such user with its
 *    current version). {@link RelayStore.enqueueShared} stores one frame in many mailboxes
 *    under the same rules, each mailbox charged the full frame size.
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
 * 11. **Device lists** (docs/protocol.md §3.3). At most one list is stored per user, with
 *    its version. {@link RelayStore.putDeviceList} is a compare-and-set under the pinned
 *    account key (`account-mismatch` otherwise): a higher version replaces the stored list;
 *    the same version with the same bytes changes nothing (`changed: false`); the same
 *    version with other bytes (`conflict`) and a lower one (`stale`) are refused. Storing a
 *    list deletes, in the same step, every registered device of the user that is not in
 *    `keep` with a byte-identical certificate, with its prekeys, handed-out prekey ids and
 *    mailbox (messages it sent to others stay), and returns their ids.
 *
 * @module
 */

/** The relay store contract version a store implements. */
export const RELAY_STORE_SPECIFICATION_VERSION = 'deadbolt.relay-store.v2';

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
export type RegisterDeviceResult = 'registered' | 'unchanged' | 'replaced' | 'account-mismatch' | 'list-mismatch' | 'too-many-devices';

/** A user's stored device list. */
export interface StoredDeviceList {
  /** Its `listVersion` (1 or more). */
  readonly version: number;
  /** The encoded list, exactly as stored (opaque to the store). */
  readonly list: Uint8Array;
}

/** A registered device that a new device list keeps (its certificate as the relay read it). */
export interface KeptDevice {
  readonly deviceId: string;
  readonly certificate: Uint8Array;
}

/** The outcome of {@link RelayStore.putDeviceList}. */
export type PutDeviceListResult =
  | {
      readonly ok: true;
      /** False when the same version with the same bytes was stored already. */
      readonly changed: boolean;
      /** The devices deleted with their prekeys and mailboxes, in device-id order. */
      readonly removed: readonly string[];
    }
  | {
      readonly ok: false;
      /** `account-mismatch`: not the pinned key; `stale`: a higher version is stored; `conflict`: this version with other bytes is. */
      readonly reason: 'account-mismatch' | 'stale' | 'conflict';
    };

/** A user and its device list version (0: none). */
export interface StoreListVersion {
  readonly userId: string;
  readonly listVersion: number;
}

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
  /** The device list version the sender encrypted for, per recipient user (invariant 6). */
  readonly expectedLists?: readonly StoreListVersion[];
}

/** One frame for many mailboxes from one sender ({@link RelayStore.enqueueShared}). */
export interface SharedEnqueueBatch {
  readonly from: StoreAddress;
  readonly receivedAt: number;
  /** The recipient mailboxes; ids are returned in this order. */
  readonly to: readonly StoreAddress[];
  /** Stored for every mailbox (the store may keep it once); each mailbox is charged its full size. */
  readonly frame: Uint8Array;
  /** The device list version the sender encrypted for, per recipient user (invariant 6). */
  readonly expectedLists?: readonly StoreListVersion[];
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

/**
 * The outcome of {@link RelayStore.enqueue} and {@link RelayStore.enqueueShared}. On a
 * device or quota failure, `to` names the first refusing mailbox; on `list-mismatch`,
 * `users` names every user whose stored list version differs, with that version.
 */
export type EnqueueResult =
  | { readonly ok: true; readonly ids: readonly string[] }
  | { readonly ok: false; readonly reason: 'unknown-device' | 'mailbox-full'; readonly to: StoreAddress }
  | { readonly ok: false; readonly reason: 'list-mismatch'; readonly users: readonly StoreListVersion[] };

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

  // --- device lists (invariant 11) ----------------------------------------------------
  /** The user's stored device list, or `undefined`. */
  getDeviceList(userId: string): Promise<StoredDeviceList | undefined>;
  /**
   * Stores a newer device list verified under `accountKey`, deleting every registered
   * device not in `keep` (with its prekeys and mailbox) in the same step.
   */
  putDeviceList(userId: string, accountKey: Uint8Array, version: number, list: Uint8Array, keep: readonly KeptDevice[]): Promise<PutDeviceListResult>;

  // --- devices (invariant 3) -------------------------------------------------------------
  /**
   * Registers (or re-registers) a device verified under `accountKey` and checked against
   * the user's device list at `listVersion` (0: the user had none).
   */
  registerDevice(address: StoreAddress, accountKey: Uint8Array, certificate: Uint8Array, maxDevices: number, listVersion: number): Promise<RegisterDeviceResult>;
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
  /** Stores one frame in many mailboxes, all or none, within the quotas of each. */
  enqueueShared(batch: SharedEnqueueBatch, quota: MailboxQuota): Promise<EnqueueResult>;
  /** A mailbox's waiting messages in arrival order. */
  fetch(mailbox: StoreAddress, options: FetchOptions): Promise<StoredMessage[]>;
  /** Deletes the named messages of this mailbox only; returns how many were deleted. */
  ack(mailbox: StoreAddress, ids: readonly string[]): Promise<number>;
  /** A mailbox's message count and frame bytes. */
  stats(mailbox: StoreAddress): Promise<MailboxStats>;

  /** Releases the backend. Idempotent (invariant 10). */
  close(): Promise<void>;
}
