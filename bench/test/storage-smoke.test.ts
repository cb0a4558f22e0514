/** The storage bench runs end to end in --quick mode and prints well-formed --json lines (no speed assertions). */
import { expect, test } from 'vitest';
import { runQuickJson } from './helpers/run-bench.js';

test('pnpm bench:storage --quick --json prints every adapter figure, one well-formed object per line', async () => {
  const lines = await runQuickJson('storage-main.ts', 120_000);
  const names = lines.map((l) => l.name);
  for (const adapter of ['memory', 'sqlite', 'memory-at-rest', 'sqlite-at-rest']) {
    for (const figure of ['receive-1024B', 'send-1024B', 'session-record', 'history-per-1000-messages']) {
      expect(names).toContain(`storage/${adapter}/${figure}`);
    }
  }
  expect(names).toContain('storage/sqlite/sqlite-file-per-1000-messages');
  for (const line of lines) {
    if ('perSecond' in line) {
      expect(Object.keys(line).sort()).toEqual(['baseline', 'baselinePerSecond', 'name', 'perSecond', 'ratio']);
      expect(line.perSecond).toBeGreaterThan(0);
    } else {
      expect(Object.keys(line).sort()).toEqual(['name', 'unit', 'value']);
      expect(line.value).toBeGreaterThan(0);
    }
  }
}, 150_000);
