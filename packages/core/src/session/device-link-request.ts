/**
 * The new device's side of linking (docs/protocol.md §3.4): make the device's keys and a
 * code, then, with the approving device's sealed answer, check everything and only then
 * store the identity.
 *
 * @module
 */
import {
  ProtocolError,
  UsageError,
  deviceId as toDeviceId,
  userId as toUserId,
  type Ed25519SecretKey,
  type StorageAdapter,
  type X25519SecretKey,
} from '@deadbolt/spec';
import { equalBytes } from '../crypto/checks.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { decodeDeviceCertificate, verifyDeviceCertificate, type DeviceCertificate } from '../protocol/device-certificate.js';
import { decodeDeviceList, listsDevice, verifyDeviceList } from '../protocol/device-list.js';
import { encodeLinkRequest, linkCode, openLinkResponse, type LinkRequest } from '../protocol/device-link.js';
import { RecordType, sealRecord } from './record-envelope.js';
import { encodeIdentityRecord, storageKeys } from './stored-records.js';

/** A link request waiting for its answer. Its secrets live only in memory. */
export interface PendingDeviceLink {
  /** The code to show (as a QR code or text) to a device of the same user. */
  readonly code: string;
  /** Where the answer will be left at the relay (16 bytes). */
  readonly channel: Uint8Array;
  /**
   * Opens the sealed answer, checks it (§3.4) and stores this device's identity and its
   * user's device list. Rejects, storing nothing, when the answer is not for this request,
   * or names other keys, or does not verify.
   */
  complete(sealed: Uint8Array): Promise<DeviceCertificate>;
}

/**
 * Makes a new device's keys and its link request (§3.4). The store must hold no identity
 * yet; nothing is written to it before {@link PendingDeviceLink.complete} succeeds.
 */
export async function createDeviceLinkRequest(options: {
  readonly storage: StorageAdapter;
  readonly crypto: CryptoProvider;
  readonly userId: string;
  readonly deviceId: string;
}): Promise<PendingDeviceLink> {
  const { storage, crypto } = options;
  const userId = toUserId(options.userId);
  const deviceId = toDeviceId(options.deviceId);
  const assertEmpty = async (): Promise<void> => {
    if ((await storage.get(storageKeys.identity())) !== undefined) {
      throw new UsageError('INVALID_ARGUMENT', { message: 'this store already holds an identity', details: { field: 'storage', expected: 'a store without an identity' } });
    }
  };
  await assertEmpty();
  const signing = await crypto.ed25519GenerateKeyPair();
  const dh = await crypto.x25519GenerateKeyPair();
  const link = await crypto.x25519GenerateKeyPair();
  const request: LinkRequest = {
    userId,
    deviceId,
    signingKey: signing.publicKey,
    identityKey: dh.publicKey,
    linkKey: link.publicKey,
    channel: crypto.randomBytes(16),
  };
  const encoded = encodeLinkRequest(request);
  let done = false;
  return {
    code: linkCode(request),
    channel: request.channel.slice(),
    async complete(sealed: Uint8Array): Promise<DeviceCertificate> {
      if (done) throw new UsageError('INVALID_ARGUMENT', { message: 'this link request was already completed', details: { field: 'link', expected: 'a pending link' } });
      const response = await openLinkResponse(crypto, encoded, request, link.secretKey as X25519SecretKey, sealed);
      const certificate = decodeDeviceCertificate(response.certificate);
      // The certificate must carry exactly this device's keys, and verify; the list must
      // verify under the same account key and make this device current (§3.4).
      const mine =
        certificate.userId === userId &&
        certificate.deviceId === deviceId &&
        equalBytes(certificate.signingKey, signing.publicKey) &&
        equalBytes(certificate.identityKey, dh.publicKey);
      if (!mine) throw new ProtocolError('SENDER_MISMATCH', { message: 'the link answer certifies other keys' });
      await verifyDeviceCertificate(crypto, certificate);
      const list = decodeDeviceList(response.deviceList);
      await verifyDeviceList(crypto, list);
      if (!listsDevice(list, certificate)) {
        throw new ProtocolError('DEVICE_NOT_CURRENT', { message: 'the link answer\'s device list does not name this device', details: { userId, deviceId } });
      }
      if (response.accountSecret !== undefined && !equalBytes(await crypto.ed25519PublicKey(response.accountSecret), certificate.accountKey)) {
        throw new ProtocolError('SENDER_MISMATCH', { message: 'the account secret does not match the account key' });
      }
      await assertEmpty();
      const identity = {
        ...(response.accountSecret !== undefined ? { accountSecret: response.accountSecret as Ed25519SecretKey } : {}),
        signingSecret: signing.secretKey as Ed25519SecretKey,
        identitySecret: dh.secretKey as X25519SecretKey,
        certificate,
      };
      await storage.batch([
        { type: 'put', key: storageKeys.identity(), value: sealRecord(crypto, RecordType.IDENTITY, encodeIdentityRecord(identity)) },
        { type: 'put', key: storageKeys.deviceList(userId), value: sealRecord(crypto, RecordType.DEVICE_LIST, list.encoded) },
      ]);
      done = true;
      link.secretKey.fill(0);
      return certificate;
    },
  };
}
