/**
 * `@deadbolt/transport-websocket`: Deadbolt's WebSocket transport.
 *
 * @example
 * ```ts
 * import { createWebSocketTransport } from '@deadbolt/transport-websocket';
 * const transport = createWebSocketTransport({ url: 'wss://relay.example/v1/ws' });
 * ```
 *
 * @module
 */
export { createWebSocketTransport, type WebSocketConstructor, type WebSocketLike, type WebSocketTransportOptions } from './websocket-transport.js';
export { createTransportAdapter } from './adapter-module.js';
