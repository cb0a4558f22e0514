/**
 * `@deadbolt/transport-websocket`: Deadbolt's WebSocket transport, one multiplexed
 * WebSocket to a Deadbolt relay (docs/relay-protocol.md).
 *
 * @example
 * ```ts
 * import WebSocket from 'ws'; // Node 20 only; browsers have a global WebSocket
 * import { createWebSocketTransport } from '@deadbolt/transport-websocket';
 *
 * const transport = createWebSocketTransport({ url: 'wss://relay.example/v1/ws', WebSocket });
 * ```
 *
 * @module
 */
export {
  createWebSocketTransport,
  type WebSocketConstructor,
  type WebSocketLike,
  type WebSocketTransportOptions,
  type WebSocketTransportTimers,
} from './websocket-transport.js';
export { createTransportAdapter } from './adapter-module.js';
