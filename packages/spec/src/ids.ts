/**
 * Branded identifiers and key types.
 *
 * A brand is a compile-time tag: a `UserId` cannot be passed where a `DeviceId` is
 * expected, nor a public key where a secret key is expected, although at run time both
 * are plain strings or `Uint8Array`s. Values are branded only by the parsing functions
 * here (for ids) or by the crypto layer (for keys), which check them first.
 *
 * @module
 */
import { UsageError } from './errors.js';

declare const brand: unique symbol;
/** Adds a compile-time brand `B` to `T`. */
export type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A user (an account) as named by the application. 1–64 bytes of `[A-Za-z0-9._@:+-]`. */
export type UserId = Brand<string, 'UserId'>;
/** One device of a user. 1–64 bytes of `[A-Za-z0-9._@:+-]`. */
export type DeviceId = Brand<string, 'DeviceId'>;

/** A device address: the unit that holds a pairwise session. */
export interface Address {
  readonly userId: UserId;
  readonly deviceId: DeviceId;
}

/** Ed25519 public key, 32 bytes. */
export type Ed25519PublicKey = Brand<Uint8Array, 'Ed25519PublicKey'>;
/** Ed25519 secret key (the 32-byte seed). */
export type Ed25519SecretKey = Brand<Uint8Array, 'Ed25519SecretKey'>;
/** X25519 public key, 32 bytes. */
export type X25519PublicKey = Brand<Uint8Array, 'X25519PublicKey'>;
/** X25519 secret key, 32 bytes. */
export type X25519SecretKey = Brand<Uint8Array, 'X25519SecretKey'>;
/** ML-KEM-768 encapsulation (public) key, 1184 bytes. */
export type MlKemPublicKey = Brand<Uint8Array, 'MlKemPublicKey'>;
/** ML-KEM-768 decapsulation (secret) key, 2400 bytes. */
export type MlKemSecretKey = Brand<Uint8Array, 'MlKemSecretKey'>;

/** A key pair of matching brands. */
export interface KeyPair<P extends Uint8Array, S extends Uint8Array> {
  readonly publicKey: P;
  readonly secretKey: S;
}

const ID_PATTERN = /^[A-Za-z0-9._@:+-]{1,64}$/;

/**
 * Checks and brands a user id.
 *
 * @example
 * ```ts
 * const alice = userId('alice');
 * ```
 */
export function userId(value: string): UserId {
  if (typeof value !== 'string' || !ID_PATTERN.test(value)) {
    throw new UsageError('INVALID_ARGUMENT', {
      message: 'userId must be 1-64 characters of [A-Za-z0-9._@:+-]',
      details: { field: 'userId', expected: '1-64 characters of [A-Za-z0-9._@:+-]' },
    });
  }
  return value as UserId;
}

/**
 * Checks and brands a device id.
 *
 * @example
 * ```ts
 * const phone = deviceId('phone-1');
 * ```
 */
export function deviceId(value: string): DeviceId {
  if (typeof value !== 'string' || !ID_PATTERN.test(value)) {
    throw new UsageError('INVALID_ARGUMENT', {
      message: 'deviceId must be 1-64 characters of [A-Za-z0-9._@:+-]',
      details: { field: 'deviceId', expected: '1-64 characters of [A-Za-z0-9._@:+-]' },
    });
  }
  return value as DeviceId;
}

/**
 * Builds an address from plain strings, checking both.
 *
 * @example
 * ```ts
 * const bob = address('bob', 'laptop');
 * ```
 */
export function address(user: string, device: string): Address {
  return { userId: userId(user), deviceId: deviceId(device) };
}

/** Whether two addresses name the same device. */
export function sameAddress(a: Address, b: Address): boolean {
  return a.userId === b.userId && a.deviceId === b.deviceId;
}
