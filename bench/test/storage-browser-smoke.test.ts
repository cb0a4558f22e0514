/** The browser storage bench runs end to end in real Chromium in --quick mode and prints well-formed --json lines (no speed assertions). */
import { expect, test } from 'vitest';
import { runQuickJson } from './helpers/run-bench.js';

test('pnpm bench:storage-browser --quick --json prints every adapter figure, one well-formed object per line', async () => {
  const lines = await runQuickJson('storage-browser.ts', 150_000);
  const names = lines.map((l) => l.name);
  for (const adapter of ['memory', 'indexeddb', 'memory-at-rest', 'indexeddb-at-rest']) {
    for (const figure of ['receive-1024B', 'send-1024B', 'session-record', 'history-per-1000-messages']) {
      expect(names).toContain(`storage-browser/${adapter}/${figure}`);
    }
  }
  expect(lines).toHaveLength(16);
  for (const line of lines) {
    if ('perSecond' in line) {
      expect(Object.keys(line).sort()).toEqual(['baseline', 'baselinePerSecond', 'name', 'perSecond', 'ratio']);
      expect(line.perSecond).toBeGreaterThan(0);
      expect(['memory receive', 'memory send']).toContain(line.baseline);
    } else {
      expect(Object.keys(line).sort()).toEqual(['name', 'unit', 'value']);
      expect(line.unit).toBe('bytes');
      expect(line.value).toBeGreaterThan(0);
    }
  }
}, 180_000);
