/**
 * The protocol-level functions of `@deadbolt/core` that its public entry point does not
 * export (the pure Double Ratchet and PQXDH functions, the wire codecs, signing helpers).
 * The benchmark reaches them by relative path into the workspace source; every such
 * import is in this one file, so a refactor of packages/core breaks one place.
 *
 * @module
 */
export { ratchetDecrypt, ratchetEncrypt, ratchetInitInitiator, ratchetInitResponder } from '../../packages/core/src/protocol/double-ratchet.js';
export type { RatchetLimits, RatchetState } from '../../packages/core/src/protocol/double-ratchet.js';
export { pqxdhInitiate, pqxdhRespond } from '../../packages/core/src/protocol/pqxdh.js';
export { pairwiseAdPrefix } from '../../packages/core/src/protocol/associated-data.js';
export { signDeviceCertificate } from '../../packages/core/src/protocol/device-certificate.js';
export { signPqPrekey, signSignedPrekey } from '../../packages/core/src/protocol/prekeys.js';
export { encodePrekeyMessage } from '../../packages/core/src/protocol/prekey-message.js';
export { encodeRatchetMessage } from '../../packages/core/src/protocol/ratchet-message.js';
export { CHAIN_MESSAGE_KEY_SEED, Label, Limits, labelPrefix } from '../../packages/core/src/protocol/constants.js';
export { storageKeys } from '../../packages/core/src/session/stored-records.js';
