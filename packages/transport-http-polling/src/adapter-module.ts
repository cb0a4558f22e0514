/**
 * The configuration entry point (`TransportAdapterModule`): `{ adapter: 'http-polling',
 * options: { url } }`.
 *
 * @module
 */
import { TransportError, type TransportAdapter } from '@deadbolt/spec';
import { createHttpPollingTransport, type HttpPollingTransportOptions } from './http-polling-transport.js';

/**
 * Creates the transport from a configuration object (`url`, and optionally the other
 * {@link createHttpPollingTransport} options).
 *
 * @example
 * ```ts
 * const client = await createClient({ userId, deviceId, storage, transport: { adapter: 'http-polling', options: { url: 'http://127.0.0.1:8787' } } });
 * ```
 */
export function createTransportAdapter(options: Record<string, unknown>): TransportAdapter {
  if (typeof options.url !== 'string') throw new TransportError('TRANSPORT_FAILED', { message: 'options.url is required', details: { operation: 'create' } });
  return createHttpPollingTransport(options as unknown as HttpPollingTransportOptions);
}
