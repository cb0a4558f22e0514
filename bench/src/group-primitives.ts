/**
 * Raw primitive costs of one group message (docs/protocol.md §12.7.1, §12.8), measured
 * with the same crypto provider in the same run, in the shapes a 1 KiB group message uses
 * them, and the primitive baselines they add up to: what a send, or a send and a receive,
 * must cost at the very least with that provider, before any protocol logic, encoding or
 * storage (the record checksums of §7.1 included: they are storage, not message crypto).
 *
 * @module
 */
import { Label, equalBytes, utf8, type CryptoProvider } from '@deadbolt/core';
import type { Ed25519PublicKey } from '@deadbolt/spec';
import { composeRate, type Measurement, type OpBench } from './harness.js';

/** The primitives measured. */
export const GROUP_PRIMITIVES = ['hmac', 'hkdf76', 'seal', 'open', 'compare32', 'ed25519Sign', 'ed25519Verify'] as const;

export type GroupPrimitiveName = (typeof GROUP_PRIMITIVES)[number];

/** The shapes of one group message, read off a real one. */
export interface GroupMessageShapes {
  /** Padded plaintext length (1088 for 1 KiB). */
  readonly paddedLength: number;
  /** AD length: label8("Deadbolt_v1_GroupAD") and the header. */
  readonly adLength: number;
  /** Signature input length: label8("Deadbolt_v1_GroupMessageSignature") | header | body bytes32. */
  readonly signedLength: number;
}

/** Human-readable names of the primitives, in the shapes measured. */
export function groupPrimitiveLabels(s: GroupMessageShapes): Readonly<Record<GroupPrimitiveName, string>> {
  return {
    hmac: 'HMAC-SHA256 (32 B key, 1 B): chain step',
    hkdf76: 'HKDF-SHA256 L=76: message keys',
    seal: `ChaCha20-Poly1305 seal, padded 1 KiB (${s.paddedLength} B, ${s.adLength} B AD)`,
    open: `ChaCha20-Poly1305 open, padded 1 KiB (${s.paddedLength} B, ${s.adLength} B AD)`,
    compare32: 'constant-time compare 32 B: commitment',
    ed25519Sign: `Ed25519 sign (${s.signedLength} B)`,
    ed25519Verify: `Ed25519 verify (${s.signedLength} B)`,
  };
}

/** The benchmark name of a primitive. */
export function groupPrimitiveBenchName(p: GroupPrimitiveName): string {
  return `group-primitive/${p}`;
}

/** The measured rate of every primitive. */
export type GroupPrimitiveRates = Readonly<Record<GroupPrimitiveName, Measurement>>;

/** A composite baseline: its description and its rate. */
export interface GroupPrimitiveBaseline {
  readonly name: string;
  readonly perSecond: number;
}

/** A benchmark of every primitive, for `measureInterleaved` / a suite. */
export async function groupPrimitiveBenches(crypto: CryptoProvider, shapes: GroupMessageShapes, minMs: number): Promise<Readonly<Record<GroupPrimitiveName, OpBench>>> {
  const ck = crypto.randomBytes(32);
  const mk = crypto.randomBytes(32);
  const seed = Uint8Array.of(0x01);
  const zeroSalt = new Uint8Array(32);
  const info = utf8(Label.groupMessageKeys);
  const key = crypto.randomBytes(32);
  const nonce = crypto.randomBytes(12);
  const padded = crypto.randomBytes(shapes.paddedLength);
  const ad = crypto.randomBytes(shapes.adLength);
  const sealed = crypto.chacha20Poly1305Seal(key, nonce, padded, ad);
  const c1 = crypto.randomBytes(32);
  const c2 = c1.slice();
  const signer = await crypto.ed25519GenerateKeyPair();
  const signedInput = crypto.randomBytes(shapes.signedLength);
  const signature = await crypto.ed25519Sign(signer.secretKey, signedInput);

  const fns: Record<GroupPrimitiveName, () => unknown> = {
    hmac: () => crypto.hmacSha256(ck, seed),
    hkdf76: () => crypto.hkdfSha256(mk, zeroSalt, info, 76),
    seal: () => crypto.chacha20Poly1305Seal(key, nonce, padded, ad),
    open: () => crypto.chacha20Poly1305Open(key, nonce, sealed, ad),
    compare32: () => equalBytes(c1, c2),
    ed25519Sign: () => crypto.ed25519Sign(signer.secretKey, signedInput),
    ed25519Verify: () => crypto.ed25519Verify(signer.publicKey as Ed25519PublicKey, signedInput, signature),
  };
  return Object.fromEntries(GROUP_PRIMITIVES.map((p) => [p, { name: groupPrimitiveBenchName(p), fn: fns[p], minMs }])) as Record<GroupPrimitiveName, OpBench>;
}

/**
 * One send (§12.8.2): the chain step (2 HMAC-SHA256), the message keys (HKDF-SHA256, L=76),
 * the seal of the padded plaintext and one Ed25519 signature.
 */
export function sendBaseline(p: GroupPrimitiveRates): GroupPrimitiveBaseline {
  return {
    name: 'per send: Ed25519 sign + ChaCha20-Poly1305 seal (1088 B) + HKDF-SHA256(76) + 2 HMAC-SHA256',
    perSecond: composeRate([
      { perSecond: p.ed25519Sign.perSecond, count: 1 },
      { perSecond: p.seal.perSecond, count: 1 },
      { perSecond: p.hkdf76.perSecond, count: 1 },
      { perSecond: p.hmac.perSecond, count: 2 },
    ]),
  };
}

/**
 * One message sent and received (§12.8.2, §12.8.3): the send, and on the receiver one
 * Ed25519 verify, the chain step (2 HMAC), the message keys (HKDF 76), the commitment
 * compare and the open.
 */
export function roundTripBaseline(p: GroupPrimitiveRates): GroupPrimitiveBaseline {
  return {
    name: 'per message: Ed25519 sign + verify + ChaCha20-Poly1305 seal + open (1088 B) + 2 HKDF-SHA256(76) + 4 HMAC-SHA256 + 32 B compare',
    perSecond: composeRate([
      { perSecond: p.ed25519Sign.perSecond, count: 1 },
      { perSecond: p.ed25519Verify.perSecond, count: 1 },
      { perSecond: p.seal.perSecond, count: 1 },
      { perSecond: p.open.perSecond, count: 1 },
      { perSecond: p.hkdf76.perSecond, count: 2 },
      { perSecond: p.hmac.perSecond, count: 4 },
      { perSecond: p.compare32.perSecond, count: 1 },
    ]),
  };
}
