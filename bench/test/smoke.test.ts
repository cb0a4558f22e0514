/**
 * Smoke test of the benchmark script: runs `src/main.ts --quick --json` exactly as
 * `pnpm bench` does and checks the shape of every output line. It never asserts a speed.
 */
import { describe, expect, it } from 'vitest';
import { runQuickJson } from './helpers/run-bench.js';

const RATE_FIELDS = ['name', 'perSecond', 'baseline', 'baselinePerSecond', 'ratio'];
const PRIMITIVE_FIELDS = ['primitiveBaseline', 'primitivePerSecond', 'primitiveRatio'];
const VALUE_FIELDS = ['name', 'value', 'unit'];

describe('pnpm bench --quick --json', () => {
  it('prints one well-formed JSON object per line', { timeout: 180_000 }, async () => {
    const lines = await runQuickJson('main.ts');
    expect(lines.length).toBeGreaterThan(0);

    const names = new Set<string>();
    for (const obj of lines) {
      const keys = Object.keys(obj).sort();
      expect(typeof obj.name).toBe('string');
      names.add(obj.name as string);
      if ('value' in obj) {
        expect(keys).toEqual([...VALUE_FIELDS].sort());
        expect(Number.isFinite(obj.value)).toBe(true);
        expect(typeof obj.unit).toBe('string');
        continue;
      }
      const expected = 'primitivePerSecond' in obj ? [...RATE_FIELDS, ...PRIMITIVE_FIELDS] : RATE_FIELDS;
      expect(keys).toEqual([...expected].sort());
      expect(typeof obj.baseline).toBe('string');
      for (const f of ['perSecond', 'baselinePerSecond', 'ratio']) {
        expect(Number.isFinite(obj[f]) && (obj[f] as number) > 0, `${obj.name}.${f}`).toBe(true);
      }
      if ('primitivePerSecond' in obj) {
        expect(typeof obj.primitiveBaseline).toBe('string');
        expect(Number.isFinite(obj.primitivePerSecond) && (obj.primitivePerSecond as number) > 0).toBe(true);
        expect(Number.isFinite(obj.primitiveRatio) && (obj.primitiveRatio as number) > 0).toBe(true);
      }
    }

    for (const name of [
      'protocol/steady',
      'protocol/ping-pong',
      'protocol/setup',
      'session-api/steady',
      'session-api/ping-pong',
      'size/session-record/initiator/deadbolt',
      'size/session-record/initiator/libsignal',
      'size/message-overhead/deadbolt',
      'size/message-overhead/libsignal',
    ]) {
      expect(names.has(name), name).toBe(true);
    }
  });
});
