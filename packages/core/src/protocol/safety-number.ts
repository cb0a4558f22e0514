/**
 * Safety numbers (docs/protocol.md §9): what two users compare, by eye or by scanning a
 * QR code, to verify each other's account keys.
 *
 * They are made from the **account** key only, so adding or removing a device never
 * changes them, while any change of either account key changes them (SECURITY.md B17).
 * The construction follows Signal's numeric fingerprint: an iterated SHA-512 that makes
 * finding a colliding key expensive.
 *
 * ```
 * h_0 = SHA-512(label8("Deadbolt_v1_SafetyNumber") | accountKey[32] | userId string8)
 * h_i = SHA-512(h_{i-1} | accountKey)         for i = 1..5200
 * fingerprint = h_5200[0..32)
 * digits(fp)  = for each of 6 chunks of 5 bytes of fp[0..30): uint40 big-endian mod 100000, as 5 digits
 * number      = the two 30-digit strings, sorted, concatenated (60 digits)
 * qr payload  = 0x01 | the two 32-byte fingerprints, sorted bytewise
 * ```
 *
 * @module
 */
import type { Ed25519PublicKey } from '@deadbolt/spec';
import { concatBytes } from '../codec/bytes.js';
import { ByteWriter } from '../codec/writer.js';
import { equalBytes } from '../crypto/checks.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { Label, Len, Limits, labelPrefix } from './constants.js';

/** One party of a safety number. */
export interface SafetyNumberParty {
  readonly userId: string;
  readonly accountKey: Ed25519PublicKey;
}

/** A safety number, the same on both sides. */
export interface SafetyNumber {
  /** 60 digits to compare by eye (see {@link formatSafetyNumber}). */
  readonly digits: string;
  /** 65 bytes to show as a QR code and compare with {@link compareSafetyNumberQr}. */
  readonly qr: Uint8Array;
}

const QR_VERSION = 1;
const LABEL = labelPrefix(Label.safetyNumber);

/** The 32-byte fingerprint of one party. */
export function fingerprint(crypto: CryptoProvider, party: SafetyNumberParty): Uint8Array {
  const key = party.accountKey;
  let h = crypto.sha512(
    concatBytes(LABEL, key, new ByteWriter(72).string8(party.userId).finish()),
  );
  const buf = new Uint8Array(64 + Len.key);
  buf.set(key, 64);
  for (let i = 0; i < Limits.safetyNumberIterations; i++) {
    buf.set(h, 0);
    h = crypto.sha512(buf);
  }
  return h.slice(0, 32);
}

function digits(fp: Uint8Array): string {
  let out = '';
  for (let i = 0; i < 30; i += 5) {
    let v = 0;
    for (let j = 0; j < 5; j++) v = v * 256 + (fp[i + j] as number);
    out += String(v % 100000).padStart(5, '0');
  }
  return out;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
}

/**
 * The safety number between two parties; symmetric in its arguments.
 *
 * @example
 * ```ts
 * const n = safetyNumber(crypto, { userId: 'alice', accountKey: a }, { userId: 'bob', accountKey: b });
 * formatSafetyNumber(n.digits); // '12345 67890 ...'
 * ```
 */
export function safetyNumber(crypto: CryptoProvider, local: SafetyNumberParty, remote: SafetyNumberParty): SafetyNumber {
  const mine = fingerprint(crypto, local);
  const theirs = fingerprint(crypto, remote);
  const fps = [mine, theirs].sort(compareBytes) as [Uint8Array, Uint8Array];
  const text = [digits(mine), digits(theirs)].sort().join('');
  return { digits: text, qr: concatBytes(Uint8Array.of(QR_VERSION), fps[0], fps[1]) };
}

/** Groups of five digits separated by spaces, for display. */
export function formatSafetyNumber(digitsText: string): string {
  return digitsText.replace(/(\d{5})(?=\d)/g, '$1 ');
}

/** Whether a scanned QR payload matches ours (constant time). */
export function compareSafetyNumberQr(ours: Uint8Array, scanned: Uint8Array): boolean {
  return equalBytes(ours, scanned);
}
