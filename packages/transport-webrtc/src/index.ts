/**
 * `@deadbolt/transport-webrtc`: direct, end-to-end encrypted data channels between devices
 * that are both online, over a relay transport that stays the key directory, the offline
 * path and the carrier of the (end-to-end encrypted) signalling.
 *
 * @example
 * ```ts
 * import { createClient } from '@deadbolt/core';
 *
 * const client = await createClient({
 *   userId: 'alice',
 *   deviceId: 'laptop',
 *   storage: { adapter: 'memory' },
 *   transport: {
 *     adapter: 'webrtc',
 *     options: { fallback: { adapter: 'websocket', options: { url: 'wss://relay.example/v1/ws' } }, iceServers: [{ urls: 'stun:stun.example:3478' }] },
 *   },
 * });
 * ```
 *
 * @module
 */
export {
  createWebRtcTransport,
  defaultAcceptOffer,
  ANSWER_BURST,
  ANSWER_REFILL_MS,
  FLOOR_BYE_INTERVAL_MS,
  MAX_LINK_LIFETIME_MS,
  NOT_EXPOSED_USERS,
  NOT_EXPOSED_WINDOW_MS,
  REFUSAL_MS,
  type OfferContext,
  type PathChange,
  type SignalSenderInfo,
  type WebRtcPrivacy,
  type WebRtcTransport,
  type WebRtcTransportOptions,
} from './webrtc-transport.js';
export {
  nodeDatachannelImplementation,
  weriftImplementation,
  readRemoteFingerprint,
  readSelectedCandidatePair,
  looksLikeNodeDatachannel,
  sendsFromHostDespiteRelayPolicy,
  type IceServer,
  type NodeDatachannelModule,
  type NodeDatachannelPolyfillModule,
  type WeriftModule,
  type PeerConnectionConfig,
  type PeerConnectionImplementation,
  type RemoteFingerprintReader,
  type SelectedCandidatePair,
  type SelectedCandidatePairReader,
  type RTCDataChannelLike,
  type RTCPeerConnectionConstructor,
  type RTCPeerConnectionLike,
  type SessionDescriptionLike,
} from './peer-connection.js';
export { type FingerprintCheck, type Timers } from './peer-link.js';
export { relayOnlySdp, sdpCandidates, sdpFingerprints, type DtlsFingerprint } from './sdp.js';
export { decodeSignal, encodeSignal, type Signal } from './signal-codec.js';
export { decodeDirect, encodeDirect, type DirectMessage } from './direct-codec.js';
export { createTransportAdapter, type ModuleLoader } from './adapter-module.js';
