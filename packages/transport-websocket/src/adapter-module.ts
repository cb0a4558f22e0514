/**
 * The configuration entry point (`TransportAdapterModule`): `{ adapter: 'websocket',
 * options: { url } }`. Where the platform has no global WebSocket (Node 20), the `ws`
 * package (an optional peer dependency) is loaded when installed.
 *
 * @module
 */
import { UsageError, type TransportAdapter } from '@deadbolt/spec';
import { createWebSocketTransport, type WebSocketConstructor, type WebSocketTransportOptions } from './websocket-transport.js';

/**
 * Creates the transport from a configuration object: `url`, and optionally the other
 * {@link createWebSocketTransport} options.
 *
 * @example
 * ```ts
 * const transport = await createTransportAdapter({ url: 'ws://127.0.0.1:8787/v1/ws' });
 * // or, through core: createClient({ ..., transport: { adapter: 'websocket', options: { url } } })
 * ```
 */
export async function createTransportAdapter(options: Record<string, unknown>): Promise<TransportAdapter> {
  if (typeof options !== 'object' || options === null || typeof options.url !== 'string') {
    throw new UsageError('INVALID_ARGUMENT', { message: 'options.url must be a ws:// or wss:// URL', details: { field: 'url', expected: 'a ws:// or wss:// URL' } });
  }
  let WebSocket = options.WebSocket as WebSocketConstructor | undefined;
  if (WebSocket === undefined && (globalThis as { WebSocket?: unknown }).WebSocket === undefined) {
    // A variable specifier, so bundlers for browsers (which have a WebSocket) leave it alone.
    const specifier = 'ws';
    const ws = (await import(/* @vite-ignore */ specifier).catch(() => undefined)) as { default?: WebSocketConstructor } | undefined;
    WebSocket = ws?.default;
    if (WebSocket === undefined) {
      throw new UsageError('INVALID_ARGUMENT', {
        message: "this platform has no WebSocket: install the 'ws' package or pass options.WebSocket",
        details: { field: 'WebSocket', expected: 'a WebSocket class' },
      });
    }
  }
  return createWebSocketTransport({ ...(options as unknown as WebSocketTransportOptions), ...(WebSocket ? { WebSocket } : {}) });
}
