/**
 * The configuration entry point (`TransportAdapterModule`): `{ adapter: 'http-polling',
 * options: { url } }`.
 *
 * @module
 */
import { UsageError, type TransportAdapter } from '@deadbolt/spec';
import { createHttpPollingTransport, type HttpPollingTransportOptions } from './http-polling-transport.js';

/**
 * Creates the transport from a configuration object: `url`, and optionally the other
 * {@link createHttpPollingTransport} options.
 *
 * @example
 * ```ts
 * const transport = createTransportAdapter({ url: 'http://127.0.0.1:8787' });
 * // or, through core: createClient({ ..., transport: { adapter: 'http-polling', options: { url } } })
 * ```
 */
export function createTransportAdapter(options: Record<string, unknown>): TransportAdapter {
  if (typeof options !== 'object' || options === null || typeof options.url !== 'string') {
    throw new UsageError('INVALID_ARGUMENT', { message: 'options.url must be an http:// or https:// URL', details: { field: 'url', expected: 'an http:// or https:// URL' } });
  }
  return createHttpPollingTransport(options as unknown as HttpPollingTransportOptions);
}
