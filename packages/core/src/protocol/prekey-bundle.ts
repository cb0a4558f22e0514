/**
 * The prekey bundle (docs/protocol.md §4.4): what an initiator fetches to start a session.
 *
 * ```
 * version u8 (=1)
 * certificate      bytes16                        (§3.2)
 * signedPrekey     id u32 | publicKey[32] | signature[64]
 * hasOneTime u8 (0|1) [ id u32 | publicKey[32] ]
 * hasPq      u8 (0|1) [ id u32 | kind u8 | publicKey[1184] | signature[64] ]
 * ```
 *
 * The PQ part is optional in the encoding only so that its absence can be recognised and
 * refused as a downgrade (SECURITY.md B8): v1 never starts a session without it.
 *
 * @module
 */
import { ProtocolError, type MlKemPublicKey, type X25519PublicKey } from '@deadbolt/spec';
import { ByteReader } from '../codec/reader.js';
import { ByteWriter } from '../codec/writer.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { Capability, Len, Limits, PqPrekeyKind, WIRE_VERSION } from './constants.js';
import {
  decodeDeviceCertificate,
  encodeDeviceCertificate,
  readVersion,
  verifyDeviceCertificate,
  type DeviceCertificate,
} from './device-certificate.js';
import {
  verifyPqPrekey,
  verifySignedPrekey,
  type OneTimePrekeyPublic,
  type PqPrekeyPublic,
  type SignedPrekeyPublic,
} from './prekeys.js';

/** A prekey bundle. */
export interface PrekeyBundle {
  readonly certificate: DeviceCertificate;
  readonly signedPrekey: SignedPrekeyPublic;
  readonly oneTimePrekey?: OneTimePrekeyPublic;
  readonly pqPrekey?: PqPrekeyPublic;
}

const STRUCTURE = 'PrekeyBundle';

/** Encodes a bundle (§4.4). */
export function encodePrekeyBundle(b: PrekeyBundle): Uint8Array {
  const w = new ByteWriter(1600).u8(WIRE_VERSION).bytes16(encodeDeviceCertificate(b.certificate));
  w.u32(b.signedPrekey.id).fixed(b.signedPrekey.publicKey, Len.key).fixed(b.signedPrekey.signature, Len.signature);
  if (b.oneTimePrekey) w.u8(1).u32(b.oneTimePrekey.id).fixed(b.oneTimePrekey.publicKey, Len.key);
  else w.u8(0);
  if (b.pqPrekey) {
    w.u8(1).u32(b.pqPrekey.id).u8(b.pqPrekey.kind).fixed(b.pqPrekey.publicKey, Len.mlkemPublic).fixed(b.pqPrekey.signature, Len.signature);
  } else w.u8(0);
  return w.finish();
}

/** Decodes a bundle without verifying it. Throws `CodecError`. */
export function decodePrekeyBundle(bytes: Uint8Array): PrekeyBundle {
  const r = new ByteReader(bytes, STRUCTURE, Limits.maxBundle);
  readVersion(r, STRUCTURE);
  const certAt = r.offset;
  const certBytes = r.bytes16('certificate', Limits.maxCertificate);
  let certificate: DeviceCertificate;
  try {
    certificate = decodeDeviceCertificate(certBytes);
  } catch (e) {
    throw r.fail('certificate', 'invalid certificate', certAt);
  }
  const signedPrekey: SignedPrekeyPublic = {
    id: r.u32('signedPrekey.id'),
    publicKey: r.fixed('signedPrekey.publicKey', Len.key) as X25519PublicKey,
    signature: r.fixed('signedPrekey.signature', Len.signature),
  };
  let oneTimePrekey: OneTimePrekeyPublic | undefined;
  if (r.bool('hasOneTime')) {
    oneTimePrekey = { id: r.u32('oneTimePrekey.id'), publicKey: r.fixed('oneTimePrekey.publicKey', Len.key) as X25519PublicKey };
  }
  let pqPrekey: PqPrekeyPublic | undefined;
  if (r.bool('hasPq')) {
    pqPrekey = {
      id: r.u32('pqPrekey.id'),
      kind: r.enumU8('pqPrekey.kind', [PqPrekeyKind.ONE_TIME, PqPrekeyKind.LAST_RESORT]),
      publicKey: r.fixed('pqPrekey.publicKey', Len.mlkemPublic) as MlKemPublicKey,
      signature: r.fixed('pqPrekey.signature', Len.signature),
    };
  }
  r.end();
  return {
    certificate,
    signedPrekey,
    ...(oneTimePrekey ? { oneTimePrekey } : {}),
    ...(pqPrekey ? { pqPrekey } : {}),
  };
}

/**
 * Verifies every signature of a bundle and refuses one without its PQ prekey
 * (SECURITY.md B7, B8). Pure: it stores nothing, so a failure leaves nothing behind.
 */
export async function verifyPrekeyBundle(crypto: CryptoProvider, b: PrekeyBundle): Promise<void> {
  await verifyDeviceCertificate(crypto, b.certificate);
  if (!b.pqPrekey) {
    // v1 requires PQXDH. A device that advertises ML-KEM and sends no PQ prekey is being
    // downgraded by someone in the middle; one that does not advertise it is not v1.
    const advertised = (b.certificate.capabilities & Capability.PQXDH_MLKEM768) !== 0;
    throw new ProtocolError('DOWNGRADE', {
      message: advertised ? 'bundle lacks the advertised PQ prekey' : 'peer does not support PQXDH',
      details: { what: 'pq prekey' },
    });
  }
  await verifySignedPrekey(crypto, b.certificate.signingKey, b.signedPrekey);
  await verifyPqPrekey(crypto, b.certificate.signingKey, b.pqPrekey);
}
