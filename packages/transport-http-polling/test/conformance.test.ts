/** The shared transport conformance suite against the real relay on loopback. */
import { createHttpPollingTransport } from '../src/index.js';
import { describeTransportConformance } from '@deadbolt/test-kit';
import { conformanceRelay, conformanceDevice, restartConformanceRelay } from '@deadbolt/relay/testing';

describeTransportConformance('http-polling', {
  startRelay: () => conformanceRelay(),
  restartRelay: restartConformanceRelay,
  createTransport: (relay) => createHttpPollingTransport({ url: relay.url, pollWaitMs: 1000, backoff: { initialMs: 20, maxMs: 500 } }),
  createDevice: conformanceDevice,
});
