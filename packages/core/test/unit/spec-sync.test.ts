/**
 * docs/protocol.md is normative; this test keeps its tables and the code constants in
 * step (labels §2.3, limits §8, message types §2.2).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { Label, Limits, MessageType } from '../../src/index.js';

const spec = readFileSync(new URL('../../../../docs/protocol.md', import.meta.url), 'utf8');

function section(title: string): string {
  const start = spec.indexOf(title);
  expect(start, title).toBeGreaterThan(-1);
  const next = spec.indexOf('\n#', start + title.length);
  return spec.slice(start, next === -1 ? undefined : next);
}

const num = (s: string): number => Number(s.replace(/,/g, '').split(' ')[0]);

describe('docs/protocol.md matches the code', () => {
  test('§2.3 lists exactly the labels in use', () => {
    const documented = [...section('### 2.3 Labels').matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.values(Label).sort());
  });

  test('§2.2 message types', () => {
    const rows = [...section('### 2.2').matchAll(/^\| `0x([0-9a-f]{2})` \|/gm)].map((m) => parseInt(m[1]!, 16));
    expect(rows.sort()).toEqual(Object.values(MessageType).sort());
  });

  test('§8 limits', () => {
    const limits = section('## 8. Limits');
    const row = (label: string): string => {
      const m = limits.match(new RegExp(`^\\| ${label.replace(/[()/]/g, '\\$&')}[^|]* \\| ([^|]+) \\|`, 'm'));
      expect(m, label).not.toBeNull();
      return m![1]!.trim();
    };
    expect(num(row('plaintext per message'))).toBe(Limits.maxPlaintext);
    expect(num(row('RatchetMessage encoding'))).toBe(Limits.maxRatchetMessage);
    expect(num(row('PrekeyMessage encoding'))).toBe(Limits.maxPrekeyMessage);
    expect(num(row('DeviceCertificate encoding'))).toBe(Limits.maxCertificate);
    expect(num(row('PrekeyBundle encoding'))).toBe(Limits.maxBundle);
    expect(num(row('forward skip per message'))).toBe(Limits.maxForwardSkip);
    expect(num(row('PrekeyUpload encoding'))).toBe(Limits.maxPrekeyUpload);
    expect(num(row('stored skipped keys per session'))).toBe(Limits.maxSkippedKeys);
    expect(num(row('sessions per peer device'))).toBe(Limits.maxSessionsPerDevice);
    expect(num(row('previous receiving chains remembered per session'))).toBe(Limits.maxPreviousChains);
    expect(num(row('initial messages per last-resort PQ prekey'))).toBe(Limits.maxLastResortUses);
    expect(row('stored record')).toBe(`${Limits.maxRecord / 1024 / 1024} MiB`);
    expect(num(row('safety-number SHA-512 iterations'))).toBe(Limits.safetyNumberIterations);
    expect(num(row('devices in a device list'))).toBe(Limits.maxDevicesPerUser);
    expect(num(row('DeviceList encoding'))).toBe(Limits.maxDeviceList);
    expect(num(row('LinkRequest encoding'))).toBe(Limits.maxLinkRequest);
    expect(num(row('LinkResponse encoding'))).toBe(Limits.maxLinkResponse);
  });
});
