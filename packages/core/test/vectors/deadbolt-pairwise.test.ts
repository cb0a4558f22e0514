/**
 * Deadbolt's own deterministic vectors (issue: "a test that reproduces them"): every
 * provider must regenerate `deadbolt/pairwise-v1.json` byte for byte.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { CRYPTO_PROVIDERS } from '../helpers/providers.js';
import { generateVectors } from './deadbolt/generate.js';

const stored = JSON.parse(readFileSync(new URL('./deadbolt/pairwise-v1.json', import.meta.url), 'utf8')) as Record<string, unknown>;

describe('deadbolt pairwise v1 vectors', () => {
  test('the stored file has the expected shape', () => {
    const t = stored.transcript as { messages: { wire: string }[] };
    expect(t.messages).toHaveLength(5);
    // The first two are PrekeyMessages (type 0x01), the rest RatchetMessages (0x02).
    expect(t.messages.map((m) => m.wire.slice(0, 4))).toEqual(['0101', '0101', '0102', '0102', '0102']);
  });

  test.each(CRYPTO_PROVIDERS)('the %s provider reproduces them byte for byte', async (_name, make) => {
    expect(await generateVectors(make)).toEqual(stored);
  });
});
