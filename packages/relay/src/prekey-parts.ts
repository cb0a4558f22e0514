/**
 * How the relay packs the public prekeys of a verified upload into the opaque byte
 * strings its store keeps, and unpacks them into a bundle (docs/protocol.md §4.4, §4.5).
 * The store never sees this structure; only the relay does.
 *
 * ```
 * signedPrekey = id u32 | publicKey[32] | signature[64]
 * lastResort   = id u32 | publicKey[1184] | signature[64]
 * oneTime key  = publicKey[32]                     (the id is the store's)
 * PQ key       = publicKey[1184] | signature[64]   (the id is the store's)
 * ```
 *
 * @module
 */
import { ByteReader, ByteWriter, type MlKemPublicKey, type X25519PublicKey } from '@deadbolt/spec';
import { PqPrekeyKind, bundleFromUpload, encodePrekeyBundle, type DeviceCertificate, type PrekeyUpload } from '@deadbolt/core';
import type { PrekeyPut, TakenBundle } from './store.js';

const KEY = 32;
const SIG = 64;
const MLKEM = 1184;

/** The store's view of a verified upload. */
export function prekeyPutFromUpload(u: PrekeyUpload): PrekeyPut {
  return {
    signedPrekey: new ByteWriter(4 + KEY + SIG).u32(u.signedPrekey.id).fixed(u.signedPrekey.publicKey, KEY).fixed(u.signedPrekey.signature, SIG).finish(),
    lastResortPrekey: new ByteWriter(4 + MLKEM + SIG)
      .u32(u.lastResortPqPrekey.id)
      .fixed(u.lastResortPqPrekey.publicKey, MLKEM)
      .fixed(u.lastResortPqPrekey.signature, SIG)
      .finish(),
    oneTimePrekeys: u.oneTimePrekeys.map((k) => ({ id: k.id, key: k.publicKey })),
    pqPrekeys: u.pqPrekeys.map((k) => ({ id: k.id, key: new ByteWriter(MLKEM + SIG).fixed(k.publicKey, MLKEM).fixed(k.signature, SIG).finish() })),
  };
}

/**
 * One encoded bundle from a device's certificate and the keys just taken: the one-time
 * PQ key if there was one, else the last-resort key (docs/relay-protocol.md §3).
 * Throws `CodecError` if the stored bytes are not what this relay wrote.
 */
export function encodeTakenBundle(certificate: DeviceCertificate, taken: TakenBundle): Uint8Array {
  const spk = new ByteReader(taken.signedPrekey, 'StoredSignedPrekey', 4 + KEY + SIG);
  const signedPrekey = { id: spk.u32('id'), publicKey: spk.fixed('publicKey', KEY) as X25519PublicKey, signature: spk.fixed('signature', SIG) };
  spk.end();
  let pq;
  if (taken.pqPrekey) {
    const r = new ByteReader(taken.pqPrekey.key, 'StoredPqPrekey', MLKEM + SIG);
    pq = { id: taken.pqPrekey.id, kind: PqPrekeyKind.ONE_TIME, publicKey: r.fixed('publicKey', MLKEM) as MlKemPublicKey, signature: r.fixed('signature', SIG) };
    r.end();
  } else {
    const r = new ByteReader(taken.lastResortPrekey, 'StoredLastResortPrekey', 4 + MLKEM + SIG);
    pq = { id: r.u32('id'), kind: PqPrekeyKind.LAST_RESORT, publicKey: r.fixed('publicKey', MLKEM) as MlKemPublicKey, signature: r.fixed('signature', SIG) };
    r.end();
  }
  let oneTime;
  if (taken.oneTimePrekey) {
    const r = new ByteReader(taken.oneTimePrekey.key, 'StoredOneTimePrekey', KEY);
    oneTime = { id: taken.oneTimePrekey.id, publicKey: r.fixed('publicKey', KEY) as X25519PublicKey };
    r.end();
  }
  return encodePrekeyBundle(bundleFromUpload({ certificate, signedPrekey }, oneTime, pq));
}
