/**
 * Wire-format decoders (protocol §2): maximum sizes before parsing, field and offset in
 * every error, no trailing bytes, version checks.
 */
import { describe, expect, test } from 'vitest';
import { CodecError, isDeadboltError } from '@deadbolt/spec';
import {
  decodeDeviceCertificate,
  decodePrekeyBundle,
  decodePrekeyMessage,
  decodeRatchetMessage,
  encodeDeviceCertificate,
  encodePrekeyBundle,
  Limits,
  peekMessageType,
} from '../../src/index.js';
import { createParty, establishedPair, takeBundle, text } from '../helpers/parties.js';

function codecError(fn: () => unknown): CodecError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CodecError) return e;
    throw e;
  }
  throw new Error('expected a CodecError');
}

describe('decoders', () => {
  test('trailing bytes are rejected, naming the offset', async () => {
    const bob = await createParty('bob', 'laptop');
    const bundle = encodePrekeyBundle(takeBundle(bob));
    const extended = new Uint8Array(bundle.length + 1);
    extended.set(bundle);
    const e = codecError(() => decodePrekeyBundle(extended));
    expect(e.details).toMatchObject({ structure: 'PrekeyBundle', field: 'end', offset: bundle.length });
  });

  test('truncation at every length is a codec error naming a field, never anything else', async () => {
    const bob = await createParty('bob', 'laptop');
    const cert = encodeDeviceCertificate(takeBundle(bob).certificate);
    for (let n = 0; n < cert.length; n++) {
      const e = codecError(() => decodeDeviceCertificate(cert.subarray(0, n)));
      expect(e.details.structure).toBe('DeviceCertificate');
      expect(e.details.offset).toBeLessThanOrEqual(n);
      expect(e.message).not.toMatch(/[0-9a-f]{32}/); // never bytes in messages
    }
  });

  test('oversize input is refused before parsing', () => {
    const e = codecError(() => decodeRatchetMessage(new Uint8Array(Limits.maxRatchetMessage + 1)));
    expect(e.details).toMatchObject({ field: 'input', offset: 0 });
    expect(codecError(() => decodePrekeyBundle(new Uint8Array(Limits.maxBundle + 1))).details.field).toBe('input');
  });

  test('an unknown version is UNSUPPORTED_VERSION; a wrong type is a codec error', async () => {
    const { alice, bob } = await establishedPair();
    const wire = await alice.sessions.encrypt(bob.address, text('x'));
    const v2 = wire.slice();
    v2[0] = 2;
    expect(() => decodeRatchetMessage(v2)).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_VERSION' }));
    const t = wire.slice();
    t[1] = 0x10;
    expect(codecError(() => decodeRatchetMessage(t)).details).toMatchObject({ field: 'type', offset: 1 });
    expect(peekMessageType(t)).toBeUndefined();
  });

  test('a group-type ciphertext on the pairwise path is refused before any crypto (C22)', async () => {
    const { alice, bob } = await establishedPair();
    const wire = await alice.sessions.encrypt(bob.address, text('x'));
    const asGroup = wire.slice();
    asGroup[1] = 0x10;
    await expect(bob.sessions.decrypt(alice.address, asGroup)).rejects.toSatisfy((e) => isDeadboltError(e, 'DECODE_FAILED'));
    // A ratchet message relabelled as a prekey message fails to decode, not to decrypt.
    const asPrekey = wire.slice();
    asPrekey[1] = 0x01;
    await expect(bob.sessions.decrypt(alice.address, asPrekey)).rejects.toSatisfy((e) => isDeadboltError(e, 'DECODE_FAILED'));
  });

  test('invalid ids inside a certificate are codec errors', async () => {
    const bob = await createParty('bob', 'laptop');
    const cert = encodeDeviceCertificate(takeBundle(bob).certificate);
    const bad = cert.slice();
    bad[2] = 0x20; // a space inside the user id
    expect(codecError(() => decodeDeviceCertificate(bad)).details).toMatchObject({ field: 'userId', offset: 1 });
  });

  test('prekey messages: flags other than 0 and 1 are refused', async () => {
    const alice = await createParty('alice', 'phone');
    const bob = await createParty('bob', 'laptop');
    await alice.sessions.processBundle(takeBundle(bob));
    const wire = await alice.sessions.encrypt(bob.address, text('x'));
    const m = decodePrekeyMessage(wire);
    const certLen = encodeDeviceCertificate(m.certificate).length;
    const flagAt = 2 + 2 + certLen + 4;
    const bad = wire.slice();
    bad[flagAt] = 2;
    expect(codecError(() => decodePrekeyMessage(bad)).details).toMatchObject({ field: 'hasOneTime', offset: flagAt });
  });
});

describe('certificate capability bits (review L1)', () => {
  test('reserved capability bits are refused', async () => {
    const bob = await createParty('bob', 'laptop');
    const cert = encodeDeviceCertificate(takeBundle(bob).certificate);
    const at = cert.length - 64 - 1;
    for (const bits of [0x02, 0x80, 0xfe]) {
      const bad = cert.slice();
      bad[at] = bits;
      expect(codecError(() => decodeDeviceCertificate(bad)).details).toMatchObject({ field: 'capabilities', offset: at });
    }
  });
});
