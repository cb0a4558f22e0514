/**
 * Raw primitive costs of one group message (docs/protocol.md §12.7.1, §12.8), measured
 * with the same crypto provider in the same run, in the shapes a 1 KiB group message uses
 * them, and the primitive baselines they add up to: what a send, or a send and a receive,
 * must cost at the very least with that provider, before any protocol logic, encoding or
 * storage (the record checksums of §7.1 included: they are storage, not message crypto).
 *
 * @module
 */
import { Label, utf8, type CryptoProvider } from '@deadbolt/core';
import type { Ed25519PublicKey } from '@deadbolt/spec';
import { composeRate, type Measurement, type OpBench } from './harness.js';
import { messagePrimitives, opBenches, primitiveParts, type PrimitiveBaseline, type PrimitiveShapes } from './primitives.js';

/** The primitives measured. */
export const GROUP_PRIMITIVES = ['hmac', 'hkdf76', 'seal', 'open', 'compare32', 'ed25519Sign', 'ed25519Verify'] as const;

export type GroupPrimitiveName = (typeof GROUP_PRIMITIVES)[number];

/** The shapes of one group message, read off a real one. */
export interface GroupMessageShapes extends PrimitiveShapes {
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
export type GroupPrimitiveBaseline = PrimitiveBaseline;

/** A benchmark of every primitive, for `measureInterleaved` / a suite. */
export async function groupPrimitiveBenches(crypto: CryptoProvider, shapes: GroupMessageShapes, minMs: number): Promise<Readonly<Record<GroupPrimitiveName, OpBench>>> {
  const message = messagePrimitives(crypto, shapes, utf8(Label.groupMessageKeys));
  const signer = await crypto.ed25519GenerateKeyPair();
  const signedInput = crypto.randomBytes(shapes.signedLength);
  const signature = await crypto.ed25519Sign(signer.secretKey, signedInput);

  const fns: Record<GroupPrimitiveName, () => unknown> = {
    ...message,
    ed25519Sign: () => crypto.ed25519Sign(signer.secretKey, signedInput),
    ed25519Verify: () => crypto.ed25519Verify(signer.publicKey as Ed25519PublicKey, signedInput, signature),
  };
  return opBenches(GROUP_PRIMITIVES, groupPrimitiveBenchName, fns, minMs);
}

/**
 * One send (§12.8.2): the chain step (2 HMAC-SHA256), the message keys (HKDF-SHA256, L=76),
 * the seal of the padded plaintext and one Ed25519 signature.
 */
export function sendBaseline(p: GroupPrimitiveRates): GroupPrimitiveBaseline {
  return {
    name: 'per send: Ed25519 sign + ChaCha20-Poly1305 seal (1088 B) + HKDF-SHA256(76) + 2 HMAC-SHA256',
    perSecond: composeRate(primitiveParts(p, { ed25519Sign: 1, seal: 1, hkdf76: 1, hmac: 2 })),
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
    perSecond: composeRate(primitiveParts(p, { ed25519Sign: 1, ed25519Verify: 1, seal: 1, open: 1, hkdf76: 2, hmac: 4, compare32: 1 })),
  };
}
