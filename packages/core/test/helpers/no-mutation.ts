/**
 * "A failed transition mutates nothing" (SECURITY.md B14): snapshot every stored byte,
 * run the failing operation, and require the snapshot to be identical afterwards.
 */
import { expect } from 'vitest';
import { isDeadboltError, type ErrorCode, type StorageAdapter } from '@deadbolt/spec';
import { toHex } from '../../src/index.js';

/** Every top-level prefix core's session and group layers write under (docs/protocol.md §7.1, §12.11). */
const PREFIXES = [['identity'], ['prekey-meta'], ['prekey'], ['prekey-replay'], ['session'], ['trust'], ['group']];

/** Every stored byte under {@link PREFIXES}, as one comparable string. */
export async function snapshot(storage: StorageAdapter): Promise<string> {
  const lines: string[] = [];
  for (const prefix of PREFIXES) {
    for (const e of await storage.range(prefix)) lines.push(`${JSON.stringify(e.key)}=${toHex(e.value)}`);
  }
  return lines.join('\n');
}

/**
 * Runs `op`, expects it to fail with `code`, and expects every store in `stores` to be
 * byte-identical before and after. Returns the error, for checks of its details.
 */
export async function expectFailsWithoutMutation(stores: readonly StorageAdapter[], op: () => Promise<unknown>, code: ErrorCode): Promise<unknown> {
  const before = await Promise.all(stores.map(snapshot));
  let caught: unknown;
  try {
    await op();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${code}`).toBeDefined();
  expect(isDeadboltError(caught) ? caught.code : caught).toBe(code);
  const after = await Promise.all(stores.map(snapshot));
  after.forEach((s, i) => expect(s === before[i], 'store changed by a failed operation').toBe(true));
  return caught;
}
