/**
 * Linking a device (docs/protocol.md §3.4): the new device's request, shown as a code, and
 * the approving device's answer, sealed to a key that only the code carries.
 *
 * ```
 * LinkRequest  = version u8 (=1) | userId string8 | deviceId string8 | signingKey[32]
 *              | identityKey[32] | linkKey[32] | channel[16]
 * code         = "deadbolt-link:" | base64url(LinkRequest)
 * LinkResponse = version u8 (=1) | certificate bytes16 | deviceList bytes16 | accountSecret bytes8 (0 or 32)
 * okm          = HKDF-SHA256(X25519(e, linkKey), salt = channel, info = label8("Deadbolt_v1_DeviceLink") | e.public | linkKey, 44)
 * sealed       = e.public[32] | ChaCha20-Poly1305(okm[0..32], okm[32..44], LinkResponse, AD = SHA-256(LinkRequest))
 * ```
 *
 * @module
 */
import {
  CodecError,
  ProtocolError,
  deviceId as toDeviceId,
  userId as toUserId,
  type DeviceId,
  type Ed25519PublicKey,
  type Ed25519SecretKey,
  type UserId,
  type X25519PublicKey,
  type X25519SecretKey,
} from '@deadbolt/spec';
import { concatBytes } from '../codec/bytes.js';
import { ByteReader } from '../codec/reader.js';
import { ByteWriter } from '../codec/writer.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { Label, Len, Limits, WIRE_VERSION, labelPrefix } from './constants.js';
import { readVersion } from './device-certificate.js';

/** What a new device shows (as a code) to be linked (§3.4). */
export interface LinkRequest {
  readonly userId: UserId;
  readonly deviceId: DeviceId;
  readonly signingKey: Ed25519PublicKey;
  readonly identityKey: X25519PublicKey;
  /** X25519 public key, fresh for this request: the answer is sealed to it. */
  readonly linkKey: X25519PublicKey;
  /** 16 random bytes: where the answer is left at the relay. */
  readonly channel: Uint8Array;
}

/** The approving device's answer (§3.4), before sealing. */
export interface LinkResponse {
  /** The new device's encoded certificate, signed by the account key. */
  readonly certificate: Uint8Array;
  /** The encoded device list that makes it current. */
  readonly deviceList: Uint8Array;
  /** The account secret, when the new device may link and revoke devices. */
  readonly accountSecret?: Ed25519SecretKey;
}

/** The prefix of a link code. */
export const LINK_CODE_PREFIX = 'deadbolt-link:';
const REQUEST = 'LinkRequest';
const RESPONSE = 'LinkResponse';
const CHANNEL_BYTES = 16;
const LINK_LABEL = labelPrefix(Label.deviceLink);

/** Encodes a link request (§3.4). */
export function encodeLinkRequest(q: LinkRequest): Uint8Array {
  return new ByteWriter(Limits.maxLinkRequest)
    .u8(WIRE_VERSION)
    .string8(q.userId)
    .string8(q.deviceId)
    .fixed(q.signingKey, Len.key)
    .fixed(q.identityKey, Len.key)
    .fixed(q.linkKey, Len.key)
    .fixed(q.channel, CHANNEL_BYTES)
    .finish();
}

/** Decodes a link request. Throws `CodecError`. */
export function decodeLinkRequest(bytes: Uint8Array): LinkRequest {
  const r = new ByteReader(bytes, REQUEST, Limits.maxLinkRequest);
  readVersion(r, REQUEST);
  const uAt = r.offset;
  const user = r.string8('userId');
  const dAt = r.offset;
  const device = r.string8('deviceId');
  let userId: UserId;
  let deviceId: DeviceId;
  try {
    userId = toUserId(user);
  } catch {
    throw r.fail('userId', 'invalid user id', uAt);
  }
  try {
    deviceId = toDeviceId(device);
  } catch {
    throw r.fail('deviceId', 'invalid device id', dAt);
  }
  const request: LinkRequest = {
    userId,
    deviceId,
    signingKey: r.fixed('signingKey', Len.key) as Ed25519PublicKey,
    identityKey: r.fixed('identityKey', Len.key) as X25519PublicKey,
    linkKey: r.fixed('linkKey', Len.key) as X25519PublicKey,
    channel: r.fixed('channel', CHANNEL_BYTES),
  };
  r.end();
  return request;
}

function toBase64Url(bytes: Uint8Array): string {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error('not base64url');
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** The code a new device shows: `deadbolt-link:` and the request in base64url. */
export function linkCode(request: LinkRequest): string {
  return LINK_CODE_PREFIX + toBase64Url(encodeLinkRequest(request));
}

/** Parses a code (surrounding whitespace ignored). Throws `CodecError`. */
export function parseLinkCode(code: string): { readonly request: LinkRequest; readonly encoded: Uint8Array } {
  const text = typeof code === 'string' ? code.trim() : '';
  const body = text.startsWith(LINK_CODE_PREFIX) ? text.slice(LINK_CODE_PREFIX.length) : undefined;
  let encoded: Uint8Array;
  try {
    if (body === undefined || body.length > Math.ceil((Limits.maxLinkRequest * 4) / 3)) throw new Error('not a link code');
    encoded = fromBase64Url(body);
  } catch {
    throw new CodecError({ structure: REQUEST, field: 'code', offset: 0, reason: 'not a deadbolt-link: code' });
  }
  return { request: decodeLinkRequest(encoded), encoded };
}

function encodeLinkResponse(a: LinkResponse): Uint8Array {
  return new ByteWriter(Limits.maxLinkResponse)
    .u8(WIRE_VERSION)
    .bytes16(a.certificate)
    .bytes16(a.deviceList)
    .bytes8(a.accountSecret ?? new Uint8Array(0))
    .finish();
}

function decodeLinkResponse(bytes: Uint8Array): LinkResponse {
  const r = new ByteReader(bytes, RESPONSE, Limits.maxLinkResponse);
  readVersion(r, RESPONSE);
  const certificate = r.bytes16('certificate', Limits.maxCertificate);
  const deviceList = r.bytes16('deviceList', Limits.maxDeviceList);
  const sAt = r.offset;
  const secret = r.bytes8('accountSecret', Len.key);
  if (secret.length !== 0 && secret.length !== Len.key) throw r.fail('accountSecret', 'must be empty or 32 bytes', sAt);
  r.end();
  return { certificate, deviceList, ...(secret.length === Len.key ? { accountSecret: secret as Ed25519SecretKey } : {}) };
}

/** HKDF output of §3.4: the AEAD key and nonce for one answer. */
function linkKeys(crypto: CryptoProvider, shared: Uint8Array, channel: Uint8Array, ephemeral: Uint8Array, linkKey: Uint8Array): { key: Uint8Array; nonce: Uint8Array } {
  const okm = crypto.hkdfSha256(shared, channel, concatBytes(LINK_LABEL, ephemeral, linkKey), Len.key + Len.aeadNonce);
  return { key: okm.subarray(0, Len.key), nonce: okm.subarray(Len.key) };
}

/**
 * Seals an answer to the request's link key (§3.4). `requestBytes` is the request exactly
 * as encoded in the code: its hash is the associated data.
 */
export async function sealLinkResponse(crypto: CryptoProvider, requestBytes: Uint8Array, request: LinkRequest, response: LinkResponse): Promise<Uint8Array> {
  const e = await crypto.x25519GenerateKeyPair();
  // The provider rejects low-order keys and an all-zero shared secret (INVALID_KEY).
  const shared = await crypto.x25519(e.secretKey, request.linkKey);
  const { key, nonce } = linkKeys(crypto, shared, request.channel, e.publicKey, request.linkKey);
  const body = crypto.chacha20Poly1305Seal(key, nonce, encodeLinkResponse(response), crypto.sha256(requestBytes));
  return concatBytes(e.publicKey, body);
}

/**
 * Opens an answer with the link key's secret. Throws `ProtocolError` `DECRYPT_FAILED` if it
 * was not sealed to this request, and `CodecError` if what is inside does not decode.
 */
export async function openLinkResponse(crypto: CryptoProvider, requestBytes: Uint8Array, request: LinkRequest, linkSecret: X25519SecretKey, sealed: Uint8Array): Promise<LinkResponse> {
  if (!(sealed instanceof Uint8Array) || sealed.length < Len.key + Len.aeadTag || sealed.length > Len.key + Limits.maxLinkResponse + Len.aeadTag) {
    throw new ProtocolError('DECRYPT_FAILED', { message: 'the link answer does not open' });
  }
  const ephemeral = sealed.slice(0, Len.key) as X25519PublicKey;
  const shared = await crypto.x25519(linkSecret, ephemeral);
  const { key, nonce } = linkKeys(crypto, shared, request.channel, ephemeral, request.linkKey);
  let plaintext: Uint8Array;
  try {
    plaintext = crypto.chacha20Poly1305Open(key, nonce, sealed.subarray(Len.key), crypto.sha256(requestBytes));
  } catch {
    throw new ProtocolError('DECRYPT_FAILED', { message: 'the link answer does not open' });
  }
  return decodeLinkResponse(plaintext);
}
