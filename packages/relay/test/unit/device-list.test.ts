/**
 * The relay's device-list reader (docs/protocol.md §3.3): it accepts exactly what core
 * signs, verifies with the Ed25519 check it uses for certificates, rejects every malformed
 * encoding with a `CodecError`, and calls a device current only when its id, signing key
 * and identity key all match.
 */
import { describe, expect, it } from 'vitest';
import { decodeDeviceCertificate, type DeviceCertificate } from '@deadbolt/core';
import { ByteWriter, concatBytes, isDeadboltError, userId, type Ed25519SecretKey } from '@deadbolt/spec';
// Core's own signer (not yet exported by core): the relay must accept its lists byte for byte.
import { signDeviceList as coreSignDeviceList } from '../../../core/src/protocol/device-list.js';
import { decodeDeviceList, encodeDeviceListBody, listsCertificate, MAX_LISTED_DEVICES, verifyDeviceList } from '../../src/device-list.js';
import { createDevice, createSiblingDevice, crypto, deviceListOf } from '../helpers/devices.js';

const key = (fill: number): Uint8Array => new Uint8Array(32).fill(fill);

function decodeError(bytes: Uint8Array): { field: string; reason: string } {
  try {
    decodeDeviceList(bytes);
  } catch (e) {
    if (isDeadboltError(e, 'DECODE_FAILED')) return e.details;
    throw e;
  }
  throw new Error('decoded, but expected a CodecError');
}

/** A list body written by hand (for encodings a correct signer never makes), with a dummy signature. */
function rawList(entries: readonly string[], options: { listVersion?: number; count?: number; user?: string } = {}): Uint8Array {
  const w = new ByteWriter().u8(1).string8(options.user ?? 'alice').fixed(key(1), 32).u32(options.listVersion ?? 1).u64(5).u8(options.count ?? entries.length);
  for (const id of entries) w.string8(id).fixed(key(2), 32).fixed(key(3), 32);
  return concatBytes(w.finish(), new Uint8Array(64));
}

describe('device lists as the relay reads them', () => {
  it('a list signed by core decodes and verifies; the relay encodes the same bytes for the same fields', async () => {
    const pair = await crypto.ed25519GenerateKeyPair();
    const devices = [
      { deviceId: 'phone', signingKey: key(4), identityKey: key(5) },
      { deviceId: 'laptop', signingKey: key(6), identityKey: key(7) },
    ];
    const signed = await coreSignDeviceList(crypto, pair.secretKey as Ed25519SecretKey, {
      userId: userId('alice'),
      accountKey: pair.publicKey,
      listVersion: 7,
      issuedAt: 1_700_000_000_123,
      devices: devices as never,
    });
    const list = decodeDeviceList(signed.encoded);
    expect(list).toMatchObject({ userId: 'alice', listVersion: 7, issuedAt: 1_700_000_000_123 });
    expect(list.devices.map((d) => d.deviceId)).toEqual(['laptop', 'phone']);
    expect(await verifyDeviceList(crypto, list)).toBe(true);
    const { body } = encodeDeviceListBody({ userId: 'alice', accountKey: pair.publicKey, listVersion: 7, issuedAt: 1_700_000_000_123, devices });
    expect(concatBytes(body, list.signature)).toEqual(signed.encoded);
  });

  it('a changed body, another account key or another label does not verify', async () => {
    const owner = await createDevice('alice', 'phone');
    const encoded = await deviceListOf(owner, 2, [owner]);
    expect(await verifyDeviceList(crypto, decodeDeviceList(encoded))).toBe(true);
    // Any flipped bit of the signed part (here: in the list version and in the device's identity key).
    for (const at of [41, encoded.length - 65]) {
      const tampered = encoded.slice();
      tampered[at]! ^= 1;
      expect(await verifyDeviceList(crypto, decodeDeviceList(tampered)), `byte ${at}`).toBe(false);
    }
    // Signed by another account's key (the body names the owner's key).
    const mallory = await createDevice('alice', 'phone');
    const forged = await deviceListOf(mallory, 2, [owner]);
    const withOwnersKey = concatBytes(encoded.subarray(0, encoded.length - 64), forged.subarray(forged.length - 64));
    expect(await verifyDeviceList(crypto, decodeDeviceList(withOwnersKey))).toBe(false);
    // The same body signed without the label (what a certificate-style signature would be).
    const list = decodeDeviceList(encoded);
    const pair = await crypto.ed25519GenerateKeyPair();
    const unlabelled = encodeDeviceListBody({ userId: 'alice', accountKey: pair.publicKey, listVersion: 2, issuedAt: 1, devices: list.devices }).body;
    const bare = concatBytes(unlabelled, await crypto.ed25519Sign(pair.secretKey, unlabelled));
    expect(await verifyDeviceList(crypto, decodeDeviceList(bare))).toBe(false);
  });

  it('malformed encodings are CodecErrors naming the field', () => {
    expect(decodeDeviceList(rawList(['a', 'b'])).devices).toHaveLength(2);
    expect(decodeError(rawList(['b', 'a']))).toMatchObject({ field: 'deviceId', reason: 'entries out of order or duplicated' });
    expect(decodeError(rawList(['a', 'a']))).toMatchObject({ field: 'deviceId', reason: 'entries out of order or duplicated' });
    expect(decodeError(rawList(['a/b']))).toMatchObject({ field: 'deviceId', reason: 'invalid device id' });
    expect(decodeError(rawList([], { count: 0 }))).toMatchObject({ field: 'count' });
    expect(decodeError(rawList(['a'], { listVersion: 0 }))).toMatchObject({ field: 'listVersion' });
    const many = Array.from({ length: MAX_LISTED_DEVICES + 1 }, (_, i) => `d${String(i).padStart(2, '0')}`);
    expect(decodeError(rawList(many))).toMatchObject({ field: 'count' });
    const full = rawList(
      Array.from({ length: MAX_LISTED_DEVICES }, (_, i) => `${'x'.repeat(62)}${String(i).padStart(2, '0')}`),
      { user: 'u'.repeat(64) },
    );
    expect(full.length).toBe(4303); // protocol §8: the largest list
    expect(decodeDeviceList(full).devices).toHaveLength(32);
    expect(decodeError(concatBytes(full, new Uint8Array(1)))).toMatchObject({ field: 'input' }); // over the size limit, before parsing
    expect(decodeError(concatBytes(rawList(['a']), new Uint8Array(1)))).toMatchObject({ field: 'end' });
    expect(decodeError(rawList(['a']).subarray(0, 60))).toMatchObject({ reason: expect.stringMatching(/truncated/) });
    const version2 = rawList(['a']);
    version2[0] = 2;
    expect(decodeError(version2)).toMatchObject({ field: 'version' });
  });

  it('a certificate is current only when its id, signing key and identity key are all listed, for its user and account key', async () => {
    const phone = await createDevice('alice', 'phone');
    const laptop = await createSiblingDevice(phone, 'laptop');
    const reinstalled = await createSiblingDevice(phone, 'laptop'); // same id, new keys
    const list = decodeDeviceList(await deviceListOf(phone, 1, [phone, laptop]));
    const cert = (d: { certificate: Uint8Array }): DeviceCertificate => decodeDeviceCertificate(d.certificate);
    expect(listsCertificate(list, cert(phone))).toBe(true);
    expect(listsCertificate(list, cert(laptop))).toBe(true);
    expect(listsCertificate(list, cert(reinstalled))).toBe(false);
    const otherAccount = await createDevice('alice', 'phone');
    expect(listsCertificate(list, cert(otherAccount))).toBe(false);
    const bob = await createDevice('bob', 'phone');
    expect(listsCertificate(list, { ...cert(bob), accountKey: cert(phone).accountKey })).toBe(false);
    // Signing key and identity key are each checked.
    expect(listsCertificate(list, { ...cert(laptop), signingKey: cert(reinstalled).signingKey })).toBe(false);
    expect(listsCertificate(list, { ...cert(laptop), identityKey: cert(reinstalled).identityKey })).toBe(false);
  });
});
