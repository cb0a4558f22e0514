/**
 * Raw primitive costs, measured with the same crypto provider in the same run, and the
 * primitive baselines they add up to: what one message (or one set-up) must cost at the
 * very least with that provider, before any protocol logic, encoding or state handling.
 *
 * @module
 */
import { Label, equalBytes, utf8, type CryptoProvider } from '@deadbolt/core';
import type { Ed25519PublicKey, MlKemPublicKey, X25519PublicKey } from '@deadbolt/spec';
import { composeRate, type Measurement, type OpBench } from './harness.js';

/** The primitives measured. */
export const PRIMITIVES = [
  'hmac',
  'hkdf76',
  'hkdf64',
  'seal1088',
  'open1088',
  'compare32',
  'x25519',
  'x25519Keygen',
  'hkdfPqxdh',
  'ed25519VerifyShort',
  'ed25519VerifyPq',
  'mlkemEncaps',
  'mlkemDecaps',
] as const;

export type PrimitiveName = (typeof PRIMITIVES)[number];

/** Human-readable names of the primitives, in the shapes measured. */
export const PRIMITIVE_LABELS: Readonly<Record<PrimitiveName, string>> = {
  hmac: 'HMAC-SHA256 (32 B key, 1 B)',
  hkdf76: 'HKDF-SHA256 L=76',
  hkdf64: 'HKDF-SHA256 L=64',
  seal1088: 'ChaCha20-Poly1305 seal, padded 1 KiB (1088 B)',
  open1088: 'ChaCha20-Poly1305 open, padded 1 KiB (1088 B)',
  compare32: 'constant-time compare 32 B',
  x25519: 'X25519 agreement',
  x25519Keygen: 'X25519 key generation',
  hkdfPqxdh: 'HKDF-SHA256 L=32 (PQXDH, 192 B ikm)',
  ed25519VerifyShort: 'Ed25519 verify (170 B)',
  ed25519VerifyPq: 'Ed25519 verify (1210 B)',
  mlkemEncaps: 'ML-KEM-768 encapsulate',
  mlkemDecaps: 'ML-KEM-768 decapsulate',
};

/** The benchmark name of a primitive. */
export function primitiveBenchName(p: PrimitiveName): string {
  return `primitive/${p}`;
}

/** The measured rate of every primitive. */
export type PrimitiveRates = Readonly<Record<PrimitiveName, Measurement>>;

/** A composite baseline: its description and its rate. */
export interface PrimitiveBaseline {
  readonly name: string;
  readonly perSecond: number;
}

/** Inputs shaped like the protocol's: a 1 KiB plaintext pads to 1088 bytes. */
export interface PrimitiveShapes {
  /** Padded plaintext length (1088 for 1 KiB). */
  readonly paddedLength: number;
  /** AD length: the pairwise AD prefix plus the 42-byte header (a group message: its AD). */
  readonly adLength: number;
}

/** The symmetric primitives of one message, see {@link messagePrimitives}. */
export type MessagePrimitive = 'hmac' | 'hkdf76' | 'seal' | 'open' | 'compare32';

/**
 * The symmetric primitives of one message, pairwise (docs/protocol.md §6.4) or group
 * (§12.8), in its shapes: the chain step (HMAC-SHA256, 32 B key, 1 B input), the message
 * keys (HKDF-SHA256, L=76, under `keysInfo`), the seal and the open of the padded plaintext
 * with its AD, and the 32-byte commitment compare.
 */
export function messagePrimitives(crypto: CryptoProvider, shapes: PrimitiveShapes, keysInfo: Uint8Array): Record<MessagePrimitive, () => unknown> {
  const ck = crypto.randomBytes(32);
  const mk = crypto.randomBytes(32);
  const seed = Uint8Array.of(0x01);
  const zeroSalt = new Uint8Array(32);
  const key = crypto.randomBytes(32);
  const nonce = crypto.randomBytes(12);
  const padded = crypto.randomBytes(shapes.paddedLength);
  const ad = crypto.randomBytes(shapes.adLength);
  const sealed = crypto.chacha20Poly1305Seal(key, nonce, padded, ad);
  const c1 = crypto.randomBytes(32);
  const c2 = c1.slice();
  return {
    hmac: () => crypto.hmacSha256(ck, seed),
    hkdf76: () => crypto.hkdfSha256(mk, zeroSalt, keysInfo, 76),
    seal: () => crypto.chacha20Poly1305Seal(key, nonce, padded, ad),
    open: () => crypto.chacha20Poly1305Open(key, nonce, sealed, ad),
    compare32: () => equalBytes(c1, c2),
  };
}

/** One {@link OpBench} per primitive of `names`, named by `benchName`, each run for at least `minMs`. */
export function opBenches<N extends string>(names: readonly N[], benchName: (p: N) => string, fns: Readonly<Record<N, () => unknown>>, minMs: number): Record<N, OpBench> {
  return Object.fromEntries(names.map((p) => [p, { name: benchName(p), fn: fns[p], minMs }])) as Record<N, OpBench>;
}

/** The parts of a composite operation for harness.ts `composeRate`: each primitive's measured rate, used `counts[p]` times. */
export function primitiveParts<N extends string>(rates: Readonly<Record<N, Measurement>>, counts: Readonly<Partial<Record<N, number>>>): { perSecond: number; count: number }[] {
  return (Object.entries(counts) as [N, number][]).map(([p, count]) => ({ perSecond: rates[p].perSecond, count }));
}

/**
 * A benchmark of every primitive one message or one set-up uses, in the shapes the
 * protocol uses them (docs/protocol.md §5, §6), for `measureInterleaved` (harness.ts).
 */
export async function primitiveBenches(crypto: CryptoProvider, shapes: PrimitiveShapes, minMs: number): Promise<Readonly<Record<PrimitiveName, OpBench>>> {
  const message = messagePrimitives(crypto, shapes, utf8(Label.pairwiseMessageKeys));
  const key32 = crypto.randomBytes(32);
  const mk = crypto.randomBytes(32);
  const zeroSalt = new Uint8Array(32);
  const rootInfo = utf8(Label.ratchetRoot);
  const pqxdhInfo = utf8(Label.pqxdh);
  const pqxdhIkm = crypto.randomBytes(32 * 5 + 32); // F | DH1..DH4 | SS
  const a = await crypto.x25519GenerateKeyPair();
  const b = await crypto.x25519GenerateKeyPair();
  const signer = await crypto.ed25519GenerateKeyPair();
  // Signature inputs shaped like a certificate (~170 B) and a PQ prekey (label + 1189 B).
  const shortMsg = crypto.randomBytes(170);
  const shortSig = await crypto.ed25519Sign(signer.secretKey, shortMsg);
  const pqMsg = crypto.randomBytes(21 + 1189);
  const pqSig = await crypto.ed25519Sign(signer.secretKey, pqMsg);
  const kem = crypto.mlkem768GenerateKeyPair();
  const { ciphertext: kemCt } = crypto.mlkem768Encapsulate(kem.publicKey);

  const fns: Record<PrimitiveName, () => unknown> = {
    hmac: message.hmac,
    hkdf76: message.hkdf76,
    hkdf64: () => crypto.hkdfSha256(key32, mk, rootInfo, 64),
    seal1088: message.seal,
    open1088: message.open,
    compare32: message.compare32,
    x25519: () => crypto.x25519(a.secretKey, b.publicKey as X25519PublicKey),
    x25519Keygen: () => crypto.x25519GenerateKeyPair(),
    hkdfPqxdh: () => crypto.hkdfSha256(pqxdhIkm, zeroSalt, pqxdhInfo, 32),
    ed25519VerifyShort: () => crypto.ed25519Verify(signer.publicKey as Ed25519PublicKey, shortMsg, shortSig),
    ed25519VerifyPq: () => crypto.ed25519Verify(signer.publicKey as Ed25519PublicKey, pqMsg, pqSig),
    mlkemEncaps: () => crypto.mlkem768Encapsulate(kem.publicKey as MlKemPublicKey),
    mlkemDecaps: () => crypto.mlkem768Decapsulate(kem.secretKey, kemCt),
  };
  return opBenches(PRIMITIVES, primitiveBenchName, fns, minMs);
}

/**
 * One steady message, both sides: on each side 2 HMAC-SHA256 (chain step) and HKDF-SHA256
 * (L=76, message keys); the sender seals and the receiver opens the padded plaintext, and
 * the receiver compares the 32-byte commitment.
 */
export function steadyBaseline(p: PrimitiveRates): PrimitiveBaseline {
  return {
    name: 'per message: 4 HMAC-SHA256 + 2 HKDF-SHA256(76) + ChaCha20-Poly1305 seal + open (1088 B) + 32 B compare',
    perSecond: composeRate(primitiveParts(p, { hmac: 4, hkdf76: 2, seal1088: 1, open1088: 1, compare32: 1 })),
  };
}

/** A ping-pong message: the steady cost plus the receiver's DH ratchet step. */
export function pingPongBaseline(p: PrimitiveRates): PrimitiveBaseline {
  return {
    name: 'steady + 2 X25519 + 1 X25519 keygen + 2 HKDF-SHA256(64)',
    perSecond: composeRate([{ perSecond: steadyBaseline(p).perSecond, count: 1 }, ...primitiveParts(p, { x25519: 2, x25519Keygen: 1, hkdf64: 2 })]),
  };
}

/**
 * One set-up, both sides (docs/protocol.md §5, §6.1): 3 Ed25519 verifies of the bundle
 * (certificate, SPK, PQPK) and 1 of the initiator's certificate by the responder; PQXDH
 * with a one-time prekey (4 X25519 each side, 1 keygen for EK_A, ML-KEM-768 encaps and
 * decaps, one HKDF each side); the initiator's ratchet init (keygen, X25519, HKDF 64); the
 * responder's DH ratchet step on the first message (2 X25519, keygen, 2 HKDF 64); and the
 * first message's symmetric work (as a steady message).
 */
export function setupBaseline(p: PrimitiveRates): PrimitiveBaseline {
  return {
    name: '4 Ed25519 verify + ML-KEM-768 encaps + decaps + 11 X25519 + 3 X25519 keygen + 2 HKDF(32) + 3 HKDF(64) + steady message',
    perSecond: composeRate([
      ...primitiveParts(p, {
        ed25519VerifyShort: 3,
        ed25519VerifyPq: 1,
        mlkemEncaps: 1,
        mlkemDecaps: 1,
        x25519: 4 + 4 + 1 + 2,
        x25519Keygen: 3,
        hkdfPqxdh: 2,
        hkdf64: 3,
      }),
      { perSecond: steadyBaseline(p).perSecond, count: 1 },
    ]),
  };
}
