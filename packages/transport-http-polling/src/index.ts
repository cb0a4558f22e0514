/**
 * `@deadbolt/transport-http-polling`: Deadbolt's HTTP long-polling transport.
 *
 * @example
 * ```ts
 * import { createHttpPollingTransport } from '@deadbolt/transport-http-polling';
 * const transport = createHttpPollingTransport({ url: 'https://relay.example' });
 * ```
 *
 * @module
 */
export { createHttpPollingTransport, type HttpPollingTransportOptions, type HttpPollingTransportTimers } from './http-polling-transport.js';
export { createTransportAdapter } from './adapter-module.js';
