/**
 * Checksum verification for the stored test vectors (SECURITY.md G47): a vector file is
 * parsed only after its SHA-256 matches the line for it in the folder's `SHA256SUMS`, so a
 * silently edited or truncated vector fails loudly instead of weakening a test.
 *
 * Reads only files inside this repository (`test/vectors/`).
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder of this file: `packages/core/test/vectors`. */
export const VECTORS_DIR = dirname(fileURLToPath(import.meta.url));

/** Parses a `sha256sum` listing (`<64 hex>  <name>` per line) into name -> hex digest. */
export function parseSha256Sums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const [index, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const match = /^([0-9a-f]{64}) [ *](\S+)$/.exec(line);
    if (match === null) throw new Error(`SHA256SUMS line ${index + 1} is malformed`);
    const [, digest, name] = match as unknown as [string, string, string];
    if (sums.has(name)) throw new Error(`SHA256SUMS lists ${name} twice`);
    sums.set(name, digest);
  }
  return sums;
}

/** The checksums of one vector folder (for example `'wycheproof'`). */
export function readSha256Sums(folder: string): Map<string, string> {
  return parseSha256Sums(readFileSync(join(VECTORS_DIR, folder, 'SHA256SUMS'), 'utf8'));
}

/** Hex SHA-256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Throws unless `bytes` is the exact content listed for `name` in `sums`. Kept separate from
 * the file system so a test can prove an edited copy is refused.
 */
export function assertChecksum(sums: ReadonlyMap<string, string>, name: string, bytes: Uint8Array): void {
  const expected = sums.get(name);
  if (expected === undefined) throw new Error(`${name} is not listed in SHA256SUMS: refusing to use it`);
  const actual = sha256Hex(bytes);
  if (actual !== expected) throw new Error(`${name}: SHA-256 ${actual} does not match SHA256SUMS (${expected})`);
}

/** The bytes of `folder/name`, verified against the folder's `SHA256SUMS` first. */
export function readVerifiedVectorFile(folder: string, name: string): Uint8Array {
  const bytes = readFileSync(join(VECTORS_DIR, folder, name));
  assertChecksum(readSha256Sums(folder), name, bytes);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A verified JSON vector file, parsed. */
export function loadVerifiedJson<T>(folder: string, name: string): T {
  return JSON.parse(new TextDecoder().decode(readVerifiedVectorFile(folder, name))) as T;
}

// --- Wycheproof -------------------------------------------------------------------------------------

/** The fields every Wycheproof vector file shares. */
export interface WycheproofFile<G> {
  readonly algorithm: string;
  readonly numberOfTests: number;
  readonly testGroups: readonly G[];
}

/** The fields every Wycheproof test case shares. */
export interface WycheproofCase {
  readonly tcId: number;
  readonly comment?: string;
  readonly flags: readonly string[];
  readonly result: 'valid' | 'invalid' | 'acceptable';
}

/**
 * A verified Wycheproof file from `test/vectors/wycheproof/`, with a sanity check that
 * `numberOfTests` matches the cases present (a truncated file would fail its checksum
 * first; this guards against a file that was regenerated with fewer cases).
 */
export function loadWycheproof<G extends { readonly tests: readonly WycheproofCase[] }>(name: string): WycheproofFile<G> {
  const file = loadVerifiedJson<WycheproofFile<G>>('wycheproof', name);
  const count = file.testGroups.reduce((n, g) => n + g.tests.length, 0);
  if (count !== file.numberOfTests) throw new Error(`${name}: ${count} cases, header says ${file.numberOfTests}`);
  return file;
}

/**
 * Every case of a verified Wycheproof file, group after group, for files whose groups add
 * nothing a case needs. `checkGroup` sees each group first (for example, that it is for the
 * expected curve or parameter set).
 */
export function wycheproofCases<G extends { readonly tests: readonly WycheproofCase[] }>(name: string, checkGroup: (group: G) => void = () => undefined): G['tests'][number][] {
  return loadWycheproof<G>(name).testGroups.flatMap((g) => {
    checkGroup(g);
    return g.tests;
  });
}
