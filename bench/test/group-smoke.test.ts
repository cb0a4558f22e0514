/**
 * Smoke test of the group benchmark: runs `src/group-main.ts --quick --json` exactly as
 * `pnpm bench:group` does and checks every output line's shape and the names of the
 * figures. It never asserts a speed; the message counts of a removal are exact, so their
 * relations are checked.
 */
import { describe, expect, it } from 'vitest';
import { runQuickJson } from './helpers/run-bench.js';

const RATE_FIELDS = ['name', 'perSecond', 'baseline', 'baselinePerSecond', 'ratio', 'primitiveBaseline', 'primitivePerSecond', 'primitiveRatio'];
const VALUE_FIELDS = ['name', 'value', 'unit'];

const RATE_NAMES = [
  'group/send/2',
  'group/send/100',
  'group/send/1000',
  'group/enc-dec/engine',
  'group/enc-dec/engine/vs-libsignal-objects',
  'group/enc-dec/manager',
  'group/enc-dec/manager/vs-libsignal-objects',
];

const VALUE_UNITS: Record<string, string> = {
  'group/send/2/time': 'us',
  'group/send/100/time': 'us',
  'group/send/1000/time': 'us',
  'group/send/cost-ratio-1000-vs-2': 'x',
  'size/group-message/deadbolt': 'bytes',
  'size/group-message/libsignal': 'bytes',
  'size/sender-key-distribution/deadbolt': 'bytes',
  'size/sender-key-distribution/libsignal': 'bytes',
  'group/remove/members': 'members',
  'group/remove/rotating-senders': 'devices',
  'group/remove/change/messages': 'messages',
  'group/remove/change/payload-bytes': 'bytes',
  'group/remove/change/pairwise-bytes': 'bytes',
  'group/remove/rotation/messages': 'messages',
  'group/remove/rotation/payload-bytes': 'bytes',
  'group/remove/rotation/pairwise-bytes': 'bytes',
  'group/remove/total/messages': 'messages',
  'group/remove/total/payload-bytes': 'bytes',
  'group/remove/total/pairwise-bytes': 'bytes',
};

describe('pnpm bench:group --quick --json', () => {
  it('prints one well-formed JSON object per line, with every figure', { timeout: 180_000 }, async () => {
    const objects = await runQuickJson('group-main.ts', 170_000);

    const rates = objects.filter((o) => 'perSecond' in o);
    const values = objects.filter((o) => !('perSecond' in o));
    expect(rates.map((r) => r.name)).toEqual(RATE_NAMES);
    expect(values.map((v) => v.name).sort()).toEqual(Object.keys(VALUE_UNITS).sort());

    for (const r of rates) {
      expect(Object.keys(r).sort()).toEqual([...RATE_FIELDS].sort());
      expect(typeof r.baseline).toBe('string');
      expect(typeof r.primitiveBaseline).toBe('string');
      for (const f of ['perSecond', 'baselinePerSecond', 'ratio', 'primitivePerSecond', 'primitiveRatio']) {
        expect(Number.isFinite(r[f]) && (r[f] as number) > 0, `${r.name}.${f}`).toBe(true);
      }
    }
    const value = new Map<string, number>();
    for (const v of values) {
      expect(Object.keys(v).sort()).toEqual([...VALUE_FIELDS].sort());
      expect(v.unit, String(v.name)).toBe(VALUE_UNITS[v.name as string]);
      expect(Number.isFinite(v.value) && (v.value as number) > 0, String(v.name)).toBe(true);
      value.set(v.name as string, v.value as number);
    }

    // The removal's counts are exact whatever the machine: the change to every other device,
    // then a new key from every remaining device to every other remaining device.
    const members = value.get('group/remove/members')!;
    const senders = value.get('group/remove/rotating-senders')!;
    expect(senders).toBe(members - 1);
    expect(value.get('group/remove/change/messages')).toBe(members - 1);
    expect(value.get('group/remove/rotation/messages')).toBe(senders * (senders - 1));
    for (const unit of ['messages', 'payload-bytes', 'pairwise-bytes']) {
      expect(value.get(`group/remove/total/${unit}`)).toBe(value.get(`group/remove/change/${unit}`)! + value.get(`group/remove/rotation/${unit}`)!);
    }
    // A pairwise ciphertext is larger than the payload it carries.
    expect(value.get('group/remove/total/pairwise-bytes')!).toBeGreaterThan(value.get('group/remove/total/payload-bytes')!);
  });
});
