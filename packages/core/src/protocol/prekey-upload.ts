/**
 * The prekey upload (docs/protocol.md §4.5): what a device publishes to the key
 * directory, from which the directory assembles bundles (§4.4) one fetch at a time.
 *
 * ```
 * version u8 (=1)
 * certificate    bytes16
 * signedPrekey   id u32 | publicKey[32] | signature[64]
 * lastResort     id u32 | publicKey[1184] | signature[64]          (kind 2)
 * oneTimeCount u16 (<= 1000) | (id u32 | publicKey[32]) * oneTimeCount
 * pqCount u16 (<= 200)       | (id u32 | publicKey[1184] | signature[64]) * pqCount   (kind 1)
 * ```
 *
 * @module
 */
import { CodecError, type MlKemPublicKey, type X25519PublicKey } from '@deadbolt/spec';
import { ByteReader } from '../codec/reader.js';
import { ByteWriter } from '../codec/writer.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { Len, Limits, PqPrekeyKind, WIRE_VERSION } from './constants.js';
import { decodeDeviceCertificate, encodeDeviceCertificate, readVersion, verifyDeviceCertificate, type DeviceCertificate } from './device-certificate.js';
import type { PrekeyBundle } from './prekey-bundle.js';
import { verifyPqPrekey, verifySignedPrekey, type OneTimePrekeyPublic, type PqPrekeyPublic, type SignedPrekeyPublic } from './prekeys.js';

/** Everything a device publishes. Same shape as the session manager's `PublicPrekeys`. */
export interface PrekeyUpload {
  readonly certificate: DeviceCertificate;
  readonly signedPrekey: SignedPrekeyPublic;
  readonly lastResortPqPrekey: PqPrekeyPublic;
  readonly oneTimePrekeys: readonly OneTimePrekeyPublic[];
  readonly pqPrekeys: readonly PqPrekeyPublic[];
}

const STRUCTURE = 'PrekeyUpload';
/** Most one-time prekeys and PQ one-time prekeys in one upload. */
export const MAX_UPLOAD_ONE_TIME = 1000;
export const MAX_UPLOAD_PQ = 200;
const MAX_SIZE = Limits.maxPrekeyUpload;

/** Encodes an upload (§4.5). */
export function encodePrekeyUpload(u: PrekeyUpload): Uint8Array {
  const w = new ByteWriter(4096 + u.pqPrekeys.length * 1252 + u.oneTimePrekeys.length * 36)
    .u8(WIRE_VERSION)
    .bytes16(encodeDeviceCertificate(u.certificate))
    .u32(u.signedPrekey.id)
    .fixed(u.signedPrekey.publicKey, Len.key)
    .fixed(u.signedPrekey.signature, Len.signature)
    .u32(u.lastResortPqPrekey.id)
    .fixed(u.lastResortPqPrekey.publicKey, Len.mlkemPublic)
    .fixed(u.lastResortPqPrekey.signature, Len.signature)
    .u16(u.oneTimePrekeys.length);
  for (const k of u.oneTimePrekeys) w.u32(k.id).fixed(k.publicKey, Len.key);
  w.u16(u.pqPrekeys.length);
  for (const k of u.pqPrekeys) w.u32(k.id).fixed(k.publicKey, Len.mlkemPublic).fixed(k.signature, Len.signature);
  return w.finish();
}

/** Decodes an upload without verifying it. Throws `CodecError`. */
export function decodePrekeyUpload(bytes: Uint8Array): PrekeyUpload {
  const r = new ByteReader(bytes, STRUCTURE, MAX_SIZE);
  readVersion(r, STRUCTURE);
  const certAt = r.offset;
  let certificate: DeviceCertificate;
  try {
    certificate = decodeDeviceCertificate(r.bytes16('certificate', 512));
  } catch {
    throw r.fail('certificate', 'invalid certificate', certAt);
  }
  const signedPrekey: SignedPrekeyPublic = {
    id: r.u32('signedPrekey.id'),
    publicKey: r.fixed('signedPrekey.publicKey', Len.key) as X25519PublicKey,
    signature: r.fixed('signedPrekey.signature', Len.signature),
  };
  const lastResortPqPrekey: PqPrekeyPublic = {
    id: r.u32('lastResort.id'),
    kind: PqPrekeyKind.LAST_RESORT,
    publicKey: r.fixed('lastResort.publicKey', Len.mlkemPublic) as MlKemPublicKey,
    signature: r.fixed('lastResort.signature', Len.signature),
  };
  const otAt = r.offset;
  const otCount = r.u16('oneTimeCount');
  if (otCount > MAX_UPLOAD_ONE_TIME) throw r.fail('oneTimeCount', `over ${MAX_UPLOAD_ONE_TIME}`, otAt);
  const oneTimePrekeys: OneTimePrekeyPublic[] = [];
  for (let i = 0; i < otCount; i++) oneTimePrekeys.push({ id: r.u32('oneTime.id'), publicKey: r.fixed('oneTime.publicKey', Len.key) as X25519PublicKey });
  const pqAt = r.offset;
  const pqCount = r.u16('pqCount');
  if (pqCount > MAX_UPLOAD_PQ) throw r.fail('pqCount', `over ${MAX_UPLOAD_PQ}`, pqAt);
  const pqPrekeys: PqPrekeyPublic[] = [];
  for (let i = 0; i < pqCount; i++) {
    pqPrekeys.push({
      id: r.u32('pq.id'),
      kind: PqPrekeyKind.ONE_TIME,
      publicKey: r.fixed('pq.publicKey', Len.mlkemPublic) as MlKemPublicKey,
      signature: r.fixed('pq.signature', Len.signature),
    });
  }
  r.end();
  return { certificate, signedPrekey, lastResortPqPrekey, oneTimePrekeys, pqPrekeys };
}

/**
 * Verifies every signature in an upload: the certificate, the signed prekey, the
 * last-resort key and each PQ one-time key (SECURITY.md F40). Throws `BAD_SIGNATURE`.
 */
export async function verifyPrekeyUpload(crypto: CryptoProvider, u: PrekeyUpload): Promise<void> {
  await verifyDeviceCertificate(crypto, u.certificate);
  const signer = u.certificate.signingKey;
  await verifySignedPrekey(crypto, signer, u.signedPrekey);
  await verifyPqPrekey(crypto, signer, u.lastResortPqPrekey);
  for (const k of u.pqPrekeys) await verifyPqPrekey(crypto, signer, k);
  const ids = new Set<number>([u.signedPrekey.id, u.lastResortPqPrekey.id]);
  for (const k of [...u.oneTimePrekeys, ...u.pqPrekeys]) {
    if (ids.has(k.id)) throw new CodecError({ structure: 'PrekeyUpload', field: 'id', offset: 0, reason: `duplicate prekey id ${k.id}` });
    ids.add(k.id);
  }
}

/** Assembles a bundle from one upload's parts, as a key directory does (§4.4). */
export function bundleFromUpload(u: Pick<PrekeyUpload, 'certificate' | 'signedPrekey'>, oneTime: OneTimePrekeyPublic | undefined, pq: PqPrekeyPublic): PrekeyBundle {
  return { certificate: u.certificate, signedPrekey: u.signedPrekey, ...(oneTime ? { oneTimePrekey: oneTime } : {}), pqPrekey: pq };
}
