/** The stack bench runs end to end in --quick mode and prints well-formed --json lines (no speed assertions). */
import { cpus } from 'node:os';
import { expect, test } from 'vitest';
import { runQuickJson } from './helpers/run-bench.js';

test('pnpm bench:stack --quick --json prints one well-formed object per line', async () => {
  const lines = await runQuickJson('stack-main.ts', 120_000);
  const rates = lines.filter((l) => 'perSecond' in l);
  const values = lines.filter((l) => !('perSecond' in l));
  expect(rates.map((r) => r.name)).toEqual(['stack/sustained-1024B-messages-3-pairs', 'stack/bare-transports-1182B-frames-3-pairs', `stack/ceiling-${cpus().length}-cores`]);
  for (const rate of rates) {
    expect(Object.keys(rate).sort()).toEqual(['baseline', 'baselinePerSecond', 'name', 'perSecond', 'ratio']);
    expect(rate.perSecond).toBeGreaterThan(0);
    expect(rate.baselinePerSecond).toBeGreaterThan(0);
  }
  for (const v of values) {
    expect(Object.keys(v).sort()).toEqual(['name', 'unit', 'value']);
    expect(typeof v.value).toBe('number');
  }
  // The figures the issue names are all there.
  const names = values.map((v) => v.name);
  for (const name of ['stack/half-load/latency-p50', 'stack/half-load/latency-p99', 'relay/queued-offline', 'relay/rss-after', 'relay/database-after']) {
    expect(names).toContain(name);
  }
}, 150_000);
