/** The stack bench runs end to end in --quick mode and prints well-formed --json lines (no speed assertions). */
import { execFile } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';

test('pnpm bench:stack --quick --json prints one well-formed object per line', async () => {
  const cwd = fileURLToPath(new URL('..', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, ['--conditions=@deadbolt/source', '--import', 'tsx', 'src/stack-main.ts', '--quick', '--json'], { cwd, timeout: 120_000 });
  const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
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
