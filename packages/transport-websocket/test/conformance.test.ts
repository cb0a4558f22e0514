/** The shared transport conformance suite against the real relay on loopback. */
import WebSocket from 'ws';
import { createWebSocketTransport, type WebSocketConstructor } from '../src/index.js';
import { describeTransportConformance } from '@deadbolt/test-kit';
import { conformanceRelay, conformanceDevice, restartConformanceRelay } from '@deadbolt/relay/testing';

describeTransportConformance('websocket', {
  startRelay: () => conformanceRelay(),
  restartRelay: restartConformanceRelay,
  createTransport: (relay) => createWebSocketTransport({ url: relay.wsUrl, WebSocket: WebSocket as unknown as WebSocketConstructor, backoff: { initialMs: 20, maxMs: 500 } }),
  createDevice: conformanceDevice,
});
