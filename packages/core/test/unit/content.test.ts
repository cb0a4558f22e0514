/** The client's content codec (docs/protocol.md §11.1), the SIGNAL kind in particular. */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import { ContentKind, MAX_GROUP_PAYLOAD, MAX_SIGNAL_PAYLOAD, decodeContent, encodeContent, type Content } from '../../src/client/content.js';

const messageId = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);

function decodeError(bytes: Uint8Array): { field: string; offset: number } {
  try {
    decodeContent(bytes);
  } catch (e) {
    if (isDeadboltError(e, 'DECODE_FAILED')) return { field: e.details.field, offset: e.details.offset };
    throw e;
  }
  throw new Error('decoded');
}

describe('Content (§11.1)', () => {
  test.each<Content>([
    { kind: 'direct', messageId, sentAt: 1_700_000_000_000, body: Uint8Array.of(1, 2, 3) },
    { kind: 'sent-sync', messageId, sentAt: 5, recipient: 'bob' as never, body: new Uint8Array(0) },
    { kind: 'device-hello', messageId, sentAt: 6 },
    { kind: 'signal', messageId, sentAt: 7, payload: Uint8Array.of(9, 8, 7) },
    { kind: 'signal', messageId, sentAt: 8, payload: new Uint8Array(MAX_SIGNAL_PAYLOAD).fill(1) },
    { kind: 'group', messageId, sentAt: 9, payload: Uint8Array.of(1, 0x12, 3) },
    { kind: 'group', messageId, sentAt: 10, payload: new Uint8Array(MAX_GROUP_PAYLOAD).fill(2) },
  ])('round trip: $kind', (content) => {
    expect(decodeContent(encodeContent(content))).toEqual(content);
  });

  test('SIGNAL layout: version, kind 0x04, messageId, sentAt, payload bytes16', () => {
    const bytes = encodeContent({ kind: 'signal', messageId, sentAt: 0x0102, payload: Uint8Array.of(0xee, 0xff) });
    expect([...bytes]).toEqual([1, ContentKind.SIGNAL, ...messageId, 0, 0, 0, 0, 0, 0, 1, 2, 0, 2, 0xee, 0xff]);
  });

  test('GROUP layout: version, kind 0x05, messageId, sentAt, payload bytes32; an oversize payload is refused', () => {
    const bytes = encodeContent({ kind: 'group', messageId, sentAt: 0x0102, payload: Uint8Array.of(1, 0x11) });
    expect([...bytes]).toEqual([1, ContentKind.GROUP, ...messageId, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 2, 1, 0x11]);
    const big = encodeContent({ kind: 'group', messageId, sentAt: 1, payload: new Uint8Array(MAX_GROUP_PAYLOAD + 1) });
    expect(decodeError(big).field).toBe('payload');
  });

  test('a truncated or padded SIGNAL is refused with the field and offset', () => {
    const bytes = encodeContent({ kind: 'signal', messageId, sentAt: 1, payload: Uint8Array.of(1, 2, 3) });
    expect(decodeError(bytes.subarray(0, bytes.length - 1))).toEqual({ field: 'payload', offset: 28 });
    expect(decodeError(new Uint8Array([...bytes, 0]))).toEqual({ field: 'end', offset: bytes.length });
    const unknown = bytes.slice();
    unknown[1] = 0x06;
    expect(decodeError(unknown)).toEqual({ field: 'kind', offset: 1 });
  });

  test('docs/protocol.md §11.1 lists exactly the kinds in use', () => {
    const spec = readFileSync(new URL('../../../../docs/protocol.md', import.meta.url), 'utf8');
    const start = spec.indexOf('### 11.1 Content');
    const section = spec.slice(start, spec.indexOf('\n### ', start + 1));
    const documented = [...section.matchAll(/^kind 0x([0-9a-f]{2}) ([A-Z_]+):/gm)].map((m) => [m[2], parseInt(m[1]!, 16)]);
    expect(Object.fromEntries(documented)).toEqual({ ...ContentKind });
  });
});
