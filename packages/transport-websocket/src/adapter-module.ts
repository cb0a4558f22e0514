/**
 * The configuration entry point (`TransportAdapterModule`): `{ adapter: 'websocket',
 * options: { url } }`. Where the platform has no global WebSocket (Node 20), the `ws`
 * package is loaded when installed.
 *
 * @module
 */
import { TransportError, type TransportAdapter } from '@deadbolt/spec';
import { createWebSocketTransport, type WebSocketConstructor } from './websocket-transport.js';

/**
 * Creates the transport from a configuration object (`url`, and optionally the other
 * {@link createWebSocketTransport} options).
 *
 * @example
 * ```ts
 * const client = await createClient({ userId, deviceId, storage, transport: { adapter: 'websocket', options: { url: 'ws://127.0.0.1:8787/v1/ws' } } });
 * ```
 */
export async function createTransportAdapter(options: Record<string, unknown>): Promise<TransportAdapter> {
  if (typeof options.url !== 'string') throw new TransportError('TRANSPORT_FAILED', { message: 'options.url is required', details: { operation: 'create' } });
  let WebSocket = options.WebSocket as WebSocketConstructor | undefined;
  if (!WebSocket && !(globalThis as { WebSocket?: unknown }).WebSocket) {
    const ws = (await import(/* @vite-ignore */ 'ws').catch(() => undefined)) as { default?: WebSocketConstructor } | undefined;
    WebSocket = ws?.default;
  }
  return createWebSocketTransport({ ...(options as object), url: options.url, ...(WebSocket ? { WebSocket } : {}) });
}
