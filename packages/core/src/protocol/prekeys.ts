/**
 * Prekeys (docs/protocol.md §4): the public halves a device publishes so that others can
 * start sessions with it while it is offline.
 *
 * - Signed prekey (SPK): X25519, signed by the device signing key, rotated periodically.
 * - One-time prekey (OPK): X25519, unsigned (as in X3DH/PQXDH), used at most once.
 * - PQ prekey (PQPK): ML-KEM-768, signed; either one-time or the last-resort key that is
 *   served when one-time PQ keys run out.
 *
 * ```
 * SPK signature input  = label8("Deadbolt_v1_SignedPrekey") | id u32 | publicKey[32]
 * PQPK signature input = label8("Deadbolt_v1_PqPrekey") | id u32 | kind u8 | publicKey[1184]
 * ```
 *
 * @module
 */
import { ProtocolError, type Ed25519PublicKey, type Ed25519SecretKey, type MlKemPublicKey, type X25519PublicKey } from '@deadbolt/spec';
import { concatBytes } from '../codec/bytes.js';
import { ByteWriter } from '../codec/writer.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { Label, Len, PqPrekeyKind, labelPrefix } from './constants.js';

/** The public half of a signed prekey. */
export interface SignedPrekeyPublic {
  readonly id: number;
  readonly publicKey: X25519PublicKey;
  readonly signature: Uint8Array;
}

/** The public half of a one-time prekey. */
export interface OneTimePrekeyPublic {
  readonly id: number;
  readonly publicKey: X25519PublicKey;
}

/** The public half of a post-quantum prekey. */
export interface PqPrekeyPublic {
  readonly id: number;
  /** {@link PqPrekeyKind}: 1 one-time, 2 last-resort. */
  readonly kind: number;
  readonly publicKey: MlKemPublicKey;
  readonly signature: Uint8Array;
}

const SPK_LABEL = labelPrefix(Label.signedPrekey);
const PQ_LABEL = labelPrefix(Label.pqPrekey);

function spkInput(id: number, publicKey: Uint8Array): Uint8Array {
  return concatBytes(SPK_LABEL, new ByteWriter(36).u32(id).fixed(publicKey, Len.key).finish());
}

function pqInput(id: number, kind: number, publicKey: Uint8Array): Uint8Array {
  return concatBytes(PQ_LABEL, new ByteWriter(1190).u32(id).u8(kind).fixed(publicKey, Len.mlkemPublic).finish());
}

/** Signs a signed prekey's public half. */
export async function signSignedPrekey(
  crypto: CryptoProvider,
  signingSecret: Ed25519SecretKey,
  id: number,
  publicKey: X25519PublicKey,
): Promise<SignedPrekeyPublic> {
  return { id, publicKey, signature: await crypto.ed25519Sign(signingSecret, spkInput(id, publicKey)) };
}

/** Signs a PQ prekey's public half. */
export async function signPqPrekey(
  crypto: CryptoProvider,
  signingSecret: Ed25519SecretKey,
  id: number,
  kind: number,
  publicKey: MlKemPublicKey,
): Promise<PqPrekeyPublic> {
  return { id, kind, publicKey, signature: await crypto.ed25519Sign(signingSecret, pqInput(id, kind, publicKey)) };
}

/** Throws `BAD_SIGNATURE` unless the device signing key signed this signed prekey (SECURITY.md B7, F40). */
export async function verifySignedPrekey(crypto: CryptoProvider, signingKey: Ed25519PublicKey, spk: SignedPrekeyPublic): Promise<void> {
  if (!(await crypto.ed25519Verify(signingKey, spkInput(spk.id, spk.publicKey), spk.signature))) {
    throw new ProtocolError('BAD_SIGNATURE', { message: 'signed prekey signature', details: { what: 'signed prekey' } });
  }
}

/** Throws `BAD_SIGNATURE` unless the device signing key signed this PQ prekey. */
export async function verifyPqPrekey(crypto: CryptoProvider, signingKey: Ed25519PublicKey, pq: PqPrekeyPublic): Promise<void> {
  if (pq.kind !== PqPrekeyKind.ONE_TIME && pq.kind !== PqPrekeyKind.LAST_RESORT) {
    throw new ProtocolError('BAD_SIGNATURE', { message: 'PQ prekey kind', details: { what: 'pq prekey' } });
  }
  if (!(await crypto.ed25519Verify(signingKey, pqInput(pq.id, pq.kind, pq.publicKey), pq.signature))) {
    throw new ProtocolError('BAD_SIGNATURE', { message: 'PQ prekey signature', details: { what: 'pq prekey' } });
  }
}
