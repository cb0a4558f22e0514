/**
 * `@deadbolt/core`: Deadbolt's crypto provider, PQXDH + Double Ratchet pairwise sessions,
 * safety numbers and wire formats. docs/protocol.md is the specification.
 *
 * @example
 * ```ts
 * import { createSessionManager } from '@deadbolt/core';
 * import { createMemoryStorage } from '@deadbolt/storage-memory';
 *
 * const sessions = createSessionManager({ storage: createMemoryStorage() });
 * await sessions.createIdentity({ userId: 'alice', deviceId: 'laptop' });
 * ```
 *
 * @module
 */
export * from './crypto/index.js';
export { concatBytes, fromHex, toHex, utf8, fromUtf8 } from './codec/bytes.js';
export { Capability, Label, Limits, MessageType, PqPrekeyKind, WIRE_VERSION } from './protocol/constants.js';
export {
  decodeDeviceCertificate,
  encodeDeviceCertificate,
  verifyDeviceCertificate,
  certificateAddress,
  type DeviceCertificate,
} from './protocol/device-certificate.js';
export type { OneTimePrekeyPublic, PqPrekeyPublic, SignedPrekeyPublic } from './protocol/prekeys.js';
export { decodePrekeyBundle, encodePrekeyBundle, verifyPrekeyBundle, type PrekeyBundle } from './protocol/prekey-bundle.js';
export { decodePrekeyMessage, peekMessageType, type PrekeyMessage, type PrekeyMessagePq } from './protocol/prekey-message.js';
export { decodeRatchetMessage, type RatchetHeader, type RatchetMessage } from './protocol/ratchet-message.js';
export { pad, unpad, paddedLength } from './protocol/padding.js';
export {
  safetyNumber,
  formatSafetyNumber,
  compareSafetyNumberQr,
  fingerprint,
  type SafetyNumber,
  type SafetyNumberParty,
} from './protocol/safety-number.js';
export {
  createSessionManager,
  type AppliedDeviceList,
  type LinkApproval,
  type DecryptOptions,
  type EncryptOptions,
  type DecryptResult,
  type GeneratePrekeysOptions,
  type PublicPrekeys,
  type SessionLimits,
  type SessionManager,
  type SessionManagerOptions,
  type TrustInfo,
} from './session/session-manager.js';
export {
  bundleFromUpload,
  decodePrekeyUpload,
  encodePrekeyUpload,
  verifyPrekeyUpload,
  MAX_UPLOAD_ONE_TIME,
  MAX_UPLOAD_PQ,
  type PrekeyUpload,
} from './protocol/prekey-upload.js';
export { relayAuthSignatureInput } from './protocol/relay-auth.js';
export {
  createClient,
  type AdapterConfig,
  type Client,
  type ClientEvents,
  type ClientOptions,
  type ModuleLoader,
} from './client/client.js';
export type { ReadonlyTransport, TransportActingMember } from './client/transport-view.js';
export type { Conversation, DeliveryStatus, HistoryOptions, ReceivedGroupMessage, ReceivedMessage, StoredGroupMessage, StoredMessage } from './client/history.js';
export type {
  ClientGroupApi,
  CreateGroupOptions,
  Group,
  GroupClientEvents,
  GroupInfo,
  GroupMemberInfo,
  GroupMemberStatus,
  GroupSummary,
} from './client/groups.js';
export type { Subscribe } from './client/events.js';
export { AT_REST_CHECK_KEY, createEncryptedStorage, encodeStoragePath, SEAL_OVERHEAD, type EncryptedStorageOptions } from './storage/encrypted-storage.js';
export {
  decodeDeviceList,
  listsDevice,
  signDeviceList,
  verifyDeviceList,
  type DeviceList,
  type DeviceListEntry,
} from './protocol/device-list.js';
export { decodeLinkRequest, LINK_CODE_PREFIX, linkCode, parseLinkCode, type LinkRequest } from './protocol/device-link.js';
export { createDeviceLinkRequest, type PendingDeviceLink } from './session/device-link-request.js';
export { linkDevice, type DeviceInfo, type DeviceLink, type LinkDeviceOptions } from './client/devices.js';
