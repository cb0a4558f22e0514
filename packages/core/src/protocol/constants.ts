/**
 * Every protocol constant: versions, message types, KDF labels and limits.
 * docs/protocol.md lists the same values; a test checks the two agree.
 *
 * @module
 */
import { utf8 } from '../codec/bytes.js';

/** Wire-format version of every v1 structure (docs/protocol.md §2). */
export const WIRE_VERSION = 1;

/**
 * Message type bytes (docs/protocol.md §2.2). The type is the second byte of every message
 * and is authenticated in the associated data, so a message of one type never decrypts
 * as another (SECURITY.md C22).
 */
export const MessageType = Object.freeze({
  /** A PQXDH initial message carrying the first ratchet message (§5.3). */
  PREKEY: 0x01,
  /** A Double Ratchet message (§6.4). */
  RATCHET: 0x02,
  /** A group (sender-key) message, fanned out by the relay (docs/protocol.md §12.8). */
  GROUP: 0x10,
  /**
   * The payloads below travel only inside pairwise plaintexts (§12.10). They share this
   * registry so that no two v1 structures ever start with the same version and type bytes.
   */
  /** A sender-key distribution message (§12.7.2). */
  GROUP_SENDER_KEY: 0x11,
  /** A signed group change (§12.3). */
  GROUP_CHANGE: 0x12,
  /** A welcome for a device that joins a group (§12.6). */
  GROUP_WELCOME: 0x13,
  /** A request for a member's current sender key (§12.9.1). */
  GROUP_KEY_REQUEST: 0x14,
  /** One fragment of a group payload too large for one pairwise message (§12.9.2). */
  GROUP_FRAGMENT: 0x15,
});

/** Kinds of post-quantum prekey (§4.3). */
export const PqPrekeyKind = Object.freeze({ ONE_TIME: 1, LAST_RESORT: 2 });

/** Capability bits in a device certificate (§3.2). */
export const Capability = Object.freeze({ PQXDH_MLKEM768: 0x01 });

/**
 * Domain-separation labels (SECURITY.md A4). Every signature, KDF and MAC input in
 * Deadbolt begins with exactly one of these, so a value made for one purpose never
 * verifies or decrypts in another. docs/protocol.md §2.3 lists them.
 */
export const Label = Object.freeze({
  deviceCertificate: 'Deadbolt_v1_DeviceCertificate',
  signedPrekey: 'Deadbolt_v1_SignedPrekey',
  pqPrekey: 'Deadbolt_v1_PqPrekey',
  pqxdh: 'Deadbolt_v1_PQXDH_X25519_SHA-256_ML-KEM-768',
  ratchetRoot: 'Deadbolt_v1_RatchetRoot',
  pairwiseMessageKeys: 'Deadbolt_v1_PairwiseMessageKeys',
  groupMessageKeys: 'Deadbolt_v1_GroupMessageKeys',
  storageKeys: 'Deadbolt_v1_StorageKeys',
  attachmentKeys: 'Deadbolt_v1_AttachmentKeys',
  frankingKeys: 'Deadbolt_v1_FrankingKeys',
  relayAuth: 'Deadbolt_v1_RelayAuth',
  pairwiseAd: 'Deadbolt_v1_PairwiseAD',
  safetyNumber: 'Deadbolt_v1_SafetyNumber',
  /** Signature input prefix of a device list, signed by the account key (§3.3). */
  deviceList: 'Deadbolt_v1_DeviceList',
  /** HKDF info prefix of a device-link answer (§3.4). */
  deviceLink: 'Deadbolt_v1_DeviceLink',
  /** SHA-256 prefix deriving a group id from its genesis change (docs/protocol.md §12.3.3). */
  groupId: 'Deadbolt_v1_GroupId',
  /** SHA-256 prefix of a group state hash (§12.2.3). */
  groupStateHash: 'Deadbolt_v1_GroupStateHash',
  /** Signature input prefix of a group change, signed by a device signing key (§12.3.1). */
  groupChange: 'Deadbolt_v1_GroupChange',
  /** SHA-256 prefix of a group change hash (§12.3.1). */
  groupChangeHash: 'Deadbolt_v1_GroupChangeHash',
  /** Associated-data prefix of group messages (§12.8.1). */
  groupAd: 'Deadbolt_v1_GroupAD',
  /** Signature input prefix of a group message, signed by the sender-key signing key (§12.8.1). */
  groupMessageSignature: 'Deadbolt_v1_GroupMessageSignature',
});

/** A label as bytes, with a one-byte length prefix, ready to prepend to an input. */
export function labelPrefix(label: string): Uint8Array {
  const raw = utf8(label);
  const out = new Uint8Array(raw.length + 1);
  out[0] = raw.length;
  out.set(raw, 1);
  return out;
}

/** Chain-key constants of the symmetric-key ratchet (Double Ratchet §5.2, as in libsignal). */
export const CHAIN_MESSAGE_KEY_SEED = Uint8Array.of(0x01);
export const CHAIN_NEXT_KEY_SEED = Uint8Array.of(0x02);

/** Fixed byte lengths (§2.1). */
export const Len = Object.freeze({
  key: 32,
  signature: 64,
  mlkemPublic: 1184,
  mlkemSecret: 2400,
  mlkemCiphertext: 1088,
  /** The key commitment at the start of every message body (§6.3). */
  commitment: 32,
  aeadTag: 16,
  aeadNonce: 12,
});

/** Limits (§8). The session limits are defaults and may be lowered, never raised past the maxima. */
export const Limits = Object.freeze({
  /** Largest plaintext a pairwise message may carry, before padding. */
  maxPlaintext: 256 * 1024,
  /** Largest encoded ratchet message (the largest plaintext pads to 270,336 bytes; encoded 270,430). */
  maxRatchetMessage: 272 * 1024,
  /** Largest encoded prekey message (a maximal ratchet message plus the PQXDH fields). */
  maxPrekeyMessage: 280 * 1024,
  /** Largest encoded device certificate. */
  maxCertificate: 512,
  /** Largest encoded prekey bundle. */
  maxBundle: 4096,
  /** Default and maximum forward skip within one chain (libsignal: 25,000). */
  maxForwardSkip: 25_000,
  /** Default and maximum stored skipped message keys per session (libsignal: 2,000). */
  maxSkippedKeys: 2_000,
  /** Sessions kept per peer device: the active one and older ones still decrypting. */
  maxSessionsPerDevice: 5,
  /** Previous receiving chains remembered per session, to tell duplicates from new chains. */
  maxPreviousChains: 5,
  /** Replayable initial messages accepted per last-resort PQ prekey before it must rotate. */
  maxLastResortUses: 10_000,
  /** Largest encoded prekey upload (§4.5). */
  maxPrekeyUpload: 1 + 2 + 512 + 100 + 1252 + 2 + 1000 * 36 + 2 + 200 * 1252,
  /** Largest stored record core reads. */
  maxRecord: 4 * 1024 * 1024,
  /** SHA-512 iterations of the safety-number fingerprint (as Signal's 5,200). */
  safetyNumberIterations: 5_200,
  /** Devices in one device list (§3.3). */
  maxDevicesPerUser: 32,
  /** Largest encoded device list: 32 entries with 64-byte ids (§3.3). */
  maxDeviceList: 1 + 65 + 32 + 4 + 8 + 1 + 32 * (65 + 32 + 32) + 64,
  /** Largest encoded link request (§3.4). */
  maxLinkRequest: 1 + 65 + 65 + 32 + 32 + 32 + 16,
  /** Largest encoded link response (§3.4): version, certificate, device list, account secret. */
  maxLinkResponse: 1 + 2 + 512 + 2 + (1 + 65 + 32 + 4 + 8 + 1 + 32 * (65 + 32 + 32) + 64) + 1 + 32,

  // --- groups (docs/protocol.md §12.12) ---------------------------------------------
  /** Members of one group (as Signal's 1,000). */
  maxGroupMembers: 1_000,
  /** Devices of one member in a group (one primary and five linked, as Signal). */
  maxGroupDevicesPerMember: 6,
  /** Operations in one group change. */
  maxGroupOpsPerChange: 100,
  /** Largest encoded group state (a full group encodes to at most 1,263,363 bytes). */
  maxGroupState: 2 * 1024 * 1024,
  /** Largest encoded group change (a genesis of a full group is about 1.27 MB). */
  maxGroupChange: 2 * 1024 * 1024,
  /** Largest encoded welcome (a parent state and a change). */
  maxGroupWelcome: 4 * 1024 * 1024,
  /** Largest encoded group message (the largest plaintext pads to 270,336 bytes). */
  maxGroupMessage: 272 * 1024,
  /** Largest encoded sender-key distribution message. */
  maxSenderKeyDistribution: 256,
  /** Forward skip within one sender key per message, checked before any derivation. */
  maxGroupForwardSkip: 2_000,
  /** Skipped message keys stored per sender device, over all its sender keys (libsignal: 2,000). */
  maxGroupSkippedKeys: 2_000,
  /** Sender keys kept per sender device (libsignal: 5). */
  maxGroupSenderKeysPerDevice: 5,
  /** Messages per sender key: senders rotate before reaching it; receivers refuse generations at or above it. */
  maxGroupMessagesPerKey: 10_000,
  /** Age of a sender key after which its owner rotates it before the next send (7 days). */
  maxGroupKeyAgeMs: 7 * 24 * 60 * 60 * 1000,
  /** Epochs between a group's finalized base state and its head: the reorganisation window. */
  maxGroupReorgDepth: 32,
  /** Changes kept in a group's log above its base state. */
  maxGroupLogChanges: 128,
  /** Changes held per group while their parent is unknown. */
  maxGroupPendingChanges: 64,
  /** Group messages held per group while their sender key is unknown. */
  maxGroupHeldMessages: 256,
  /** Largest chunk of one group payload fragment. */
  maxGroupFragmentChunk: 196_608,
  /** Fragments of one group payload. */
  maxGroupFragments: 32,
  /** Group payloads waiting in the inbox. */
  maxGroupInbox: 1_024,
});
