/**
 * Deadbolt's one error type.
 *
 * Every error Deadbolt throws is a {@link DeadboltError} with a stable string `code`
 * (`SCREAMING_SNAKE`), typed `details` for that code, and an optional `cause`. Errors are
 * recognised with {@link isDeadboltError}, which checks a `Symbol.for` marker rather than
 * `instanceof`, so the check survives two copies of this package in one bundle.
 *
 * The subclasses say who is at fault, so an application knows whom to blame:
 * {@link UsageError} (the caller), {@link ProtocolError} and {@link CodecError} (the peer, the
 * relay or an attacker), {@link StorageError} and {@link TransportError} (a backend), and
 * {@link InternalError} (a bug in Deadbolt).
 *
 * Messages and details never contain key material or plaintext: they name fields, lengths
 * and offsets only.
 *
 * @module
 */

const MARKER = Symbol.for('@deadbolt/error');

/**
 * Typed details for each error code. A code without extra details maps to `undefined`.
 * Codes are strings so that they never renumber between versions.
 */
export interface ErrorDetails {
  // --- the caller ---------------------------------------------------------------------
  /** An argument had the wrong type, length or range. */
  INVALID_ARGUMENT: { field: string; expected: string };
  /** An object was used after `close()`. */
  CLOSED: { what: string };
  /** The operation needs state that does not exist yet (no identity, no session). */
  NOT_INITIALIZED: { what: string };
  /** No session exists with the given peer device. */
  NO_SESSION: { userId: string; deviceId: string };
  /** The peer's identity changed (or was never accepted) and must be accepted before sending. */
  UNTRUSTED_IDENTITY: { userId: string };
  // --- the peer, the relay or an attacker ---------------------------------------------
  /** Bytes did not decode: names the field and the byte offset where decoding failed. */
  DECODE_FAILED: { structure: string; field: string; offset: number; reason: string };
  /** A signature did not verify (bundle, prekey, certificate). */
  BAD_SIGNATURE: { what: string };
  /** Authenticated decryption failed. Deliberately says nothing more (SECURITY.md E36). */
  DECRYPT_FAILED: undefined;
  /** The message was already decrypted once (Double Ratchet duplicates, SECURITY.md B12). */
  DUPLICATE_MESSAGE: undefined;
  /** A message named a key that is not (or no longer) available. */
  UNKNOWN_KEY: { what: string };
  /** The peer left out a part it had advertised (for example the post-quantum prekey). */
  DOWNGRADE: { what: string };
  /** A public key was invalid: low order, non-canonical, or an all-zero shared secret. */
  INVALID_KEY: { what: string };
  /** A configured limit was exceeded (forward skip, sizes, counts). */
  LIMIT_EXCEEDED: { limit: string; max: number };
  /** The claimed sender does not match the authenticated sender. */
  SENDER_MISMATCH: undefined;
  /**
   * The device is not in its user's newest device list (docs/protocol.md §3.3): revoked,
   * or never added. Nothing is encrypted to it and nothing from it starts a session.
   */
  DEVICE_NOT_CURRENT: { userId: string; deviceId: string };
  /**
   * Two different device lists of one user carry the same version: evidence that a holder
   * of the account key, or the relay, equivocates. The newer one is refused (§3.3).
   */
  DEVICE_LIST_CONFLICT: { userId: string; listVersion: number };
  /** The protocol version is not supported. */
  UNSUPPORTED_VERSION: { structure: string; version: number };
  // --- a backend ----------------------------------------------------------------------
  /** The storage backend failed. */
  STORAGE_FAILED: { operation: string };
  /** The store's exclusive lock (storage contract invariant 11) stayed held by someone else too long. */
  STORAGE_BUSY: { operation: string; waitedMs: number };
  /**
   * Encryption at rest (docs/protocol.md §7.5): the key does not open this store, the store
   * holds plaintext state, or an encrypted store was opened without its key.
   */
  STORAGE_ENCRYPTION: { reason: 'wrong-key' | 'store-not-encrypted' | 'store-encrypted' };
  /** A stored record is corrupted, truncated or of an unknown schema version. */
  CORRUPTED_RECORD: { key: string; reason: string };
  /** The transport failed or is not connected. */
  TRANSPORT_FAILED: { operation: string };
  /** A frame exceeded the declared maximum size. */
  FRAME_TOO_LARGE: { size: number; max: number };
  /** The relay asks to slow down; retry after the given delay. */
  RATE_LIMITED: { retryAfterMs: number };
  /** The relay knows no such user (or none of its devices). */
  UNKNOWN_USER: { userId: string };
  /**
   * A send named out-of-date device lists (docs/relay-protocol.md DEVICE_MISMATCH): each
   * user whose list the relay holds at another version, with that version. Refresh those
   * users' devices (fetch their bundles) and send again.
   */
  DEVICE_MISMATCH: { users: readonly { readonly userId: string; readonly listVersion: number }[] };
  /** The relay refused a request for another reason (its own code). */
  RELAY_REJECTED: { code: string };
  // --- us -----------------------------------------------------------------------------
  /** An invariant inside Deadbolt did not hold. A bug: please report it. */
  INTERNAL: undefined;
}

/** Every error code. */
export type ErrorCode = keyof ErrorDetails;

/** Who is at fault for an error. */
export type ErrorKind = 'usage' | 'protocol' | 'codec' | 'storage' | 'transport' | 'internal';

/** Options for constructing a {@link DeadboltError}. */
export interface DeadboltErrorOptions<C extends ErrorCode> {
  /** A human-readable message. Never include key material or plaintext. */
  message?: string;
  /** Typed details for the code. */
  details?: ErrorDetails[C];
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * The base class of every error Deadbolt throws.
 *
 * @example
 * ```ts
 * try {
 *   await sessions.decrypt(from, bytes);
 * } catch (e) {
 *   if (isDeadboltError(e, 'DUPLICATE_MESSAGE')) return; // already processed
 *   throw e;
 * }
 * ```
 */
export class DeadboltError<C extends ErrorCode = ErrorCode> extends Error {
  /** The stable error code. */
  readonly code: C;
  /** Typed details for the code. */
  readonly details: ErrorDetails[C];
  /** Who is at fault. */
  readonly kind: ErrorKind;
  /** @internal marker recognised by {@link isDeadboltError}. */
  readonly [MARKER] = true;

  constructor(kind: ErrorKind, code: C, options: DeadboltErrorOptions<C> = {}) {
    super(options.message ?? code, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.kind = kind;
    this.code = code;
    this.details = options.details as ErrorDetails[C];
  }
}

/** The caller used the API wrongly. */
export class UsageError<C extends ErrorCode = ErrorCode> extends DeadboltError<C> {
  constructor(code: C, options?: DeadboltErrorOptions<C>) {
    super('usage', code, options);
  }
}

/** The peer, the relay or an attacker sent something that breaks the protocol. */
export class ProtocolError<C extends ErrorCode = ErrorCode> extends DeadboltError<C> {
  constructor(code: C, options?: DeadboltErrorOptions<C>) {
    super('protocol', code, options);
  }
}

/** Bytes did not decode. Always has code `DECODE_FAILED` with field and offset. */
export class CodecError extends DeadboltError<'DECODE_FAILED'> {
  constructor(details: ErrorDetails['DECODE_FAILED'], cause?: unknown) {
    super('codec', 'DECODE_FAILED', {
      message: `${details.structure}: ${details.reason} at ${details.field} (offset ${details.offset})`,
      details,
      cause,
    });
  }
}

/** The storage backend failed or returned something that cannot be trusted. */
export class StorageError<C extends ErrorCode = ErrorCode> extends DeadboltError<C> {
  constructor(code: C, options?: DeadboltErrorOptions<C>) {
    super('storage', code, options);
  }
}

/** The transport failed. */
export class TransportError<C extends ErrorCode = ErrorCode> extends DeadboltError<C> {
  constructor(code: C, options?: DeadboltErrorOptions<C>) {
    super('transport', code, options);
  }
}

/** An invariant inside Deadbolt did not hold. */
export class InternalError extends DeadboltError<'INTERNAL'> {
  constructor(message: string, cause?: unknown) {
    super('internal', 'INTERNAL', { message, cause });
  }
}

/**
 * Whether `e` is a Deadbolt error, optionally with the given code. Works across duplicate
 * installs of this package (it checks a `Symbol.for` marker, not the prototype chain).
 *
 * @example
 * ```ts
 * if (isDeadboltError(e, 'UNTRUSTED_IDENTITY')) showSafetyNumberChanged(e.details.userId);
 * ```
 */
export function isDeadboltError<C extends ErrorCode>(e: unknown, code?: C): e is DeadboltError<C> {
  if (typeof e !== 'object' || e === null || (e as Record<symbol, unknown>)[MARKER] !== true) return false;
  return code === undefined || (e as DeadboltError).code === code;
}
