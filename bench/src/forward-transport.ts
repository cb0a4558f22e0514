/**
 * A transport wrapper for the benches that look at a client's traffic at the transport
 * boundary (storage-main.ts captures frames, stack-clients.ts times them): every member of
 * the inner transport forwarded explicitly, some replaced.
 *
 * @module
 */
import type { TransportAdapter } from '@deadbolt/spec';

/** The members a bench replaces. */
export type TransportOverrides = Partial<Pick<TransportAdapter, 'send' | 'sendShared' | 'onFrame'>>;

/** `inner` with `overrides` in place of those members; every other member forwarded to `inner`. */
export function forwardTransport(inner: TransportAdapter, overrides: TransportOverrides): TransportAdapter {
  return {
    specificationVersion: inner.specificationVersion,
    get maxFrameSize() {
      return inner.maxFrameSize;
    },
    get state() {
      return inner.state;
    },
    connect: (auth) => inner.connect(auth),
    send: (messages) => inner.send(messages),
    onFrame: (handler) => inner.onFrame(handler),
    onStateChange: (l) => inner.onStateChange(l),
    onNotice: (l) => inner.onNotice(l),
    publishPrekeys: (u) => inner.publishPrekeys(u),
    fetchBundles: (u, options) => inner.fetchBundles(u, options),
    sendShared: (recipients, frame) => inner.sendShared(recipients, frame),
    publishDeviceList: (list) => inner.publishDeviceList(list),
    provisionPut: (channel, sealed) => inner.provisionPut(channel, sealed),
    provisionTake: (channel, waitMs) => inner.provisionTake(channel, waitMs),
    close: () => inner.close(),
    ...overrides,
  };
}
