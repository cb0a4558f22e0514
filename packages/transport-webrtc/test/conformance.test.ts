/**
 * The shared transport conformance suite against the real relay on loopback, with the
 * WebRTC transport over the WebSocket transport and node-datachannel (libdatachannel).
 * Signalling is attached (by a stand-in for core), so once two devices have exchanged a
 * frame the suite's later frames between them take the direct data channel: the contract
 * holds on both paths and across switches between them.
 */
import { afterAll, expect } from 'vitest';
import WebSocket from 'ws';
import * as ndc from 'node-datachannel';
import * as polyfill from 'node-datachannel/polyfill';
import { describeTransportConformance, type TransportConformanceFactory } from '@deadbolt/test-kit';
import { conformanceDevice, conformanceRelay, restartConformanceRelay } from '@deadbolt/relay/testing';
import { createWebSocketTransport, type WebSocketConstructor } from '@deadbolt/transport-websocket';
import { createWebRtcTransport, nodeDatachannelImplementation, type NodeDatachannelModule, type NodeDatachannelPolyfillModule } from '../src/index.js';
import { UnsafeSignalBus } from './helpers/signal-bus.js';

const implementation = nodeDatachannelImplementation(ndc as unknown as NodeDatachannelModule, polyfill as unknown as NodeDatachannelPolyfillModule);

function factory(bus: UnsafeSignalBus | undefined): TransportConformanceFactory {
  return {
    startRelay: () => conformanceRelay(),
    restartRelay: restartConformanceRelay,
    createTransport: (relay) => {
      const transport = createWebRtcTransport({
        fallback: createWebSocketTransport({ url: relay.wsUrl, WebSocket: WebSocket as unknown as WebSocketConstructor, backoff: { initialMs: 20, maxMs: 500 } }),
        ...implementation,
        backoff: { initialMs: 20, maxMs: 500 },
        connectTimeoutMs: 5000,
        receiptTimeoutMs: 2000,
        processTimeoutMs: 2000,
      });
      return bus ? bus.wrap(transport) : transport;
    },
    createDevice: async (userId, deviceId) => {
      const device = await conformanceDevice(userId, deviceId);
      bus?.register(device.address, device.auth);
      return device;
    },
  };
}

// Without signalling the transport is its fallback, and must keep the contract as such.
describeTransportConformance('webrtc, relay path only (no signalling attached)', factory(undefined));

// With signalling, and direct links set up as each device connects (the stand-in for core
// tells each transport the devices talked before, so offers are answered): the suite's
// frames between devices that both have a handler take the direct path.
const bus = new UnsafeSignalBus({ preconnect: true });
describeTransportConformance('webrtc, direct links (node-datachannel over websocket)', factory(bus));

// The suite passes on the relay path alone: make sure the second run took the direct one.
afterAll(() => {
  expect(bus.opened, 'direct links opened during the suite').toBeGreaterThan(5);
  expect(bus.delivered.direct, 'frames delivered over direct links during the suite').toBeGreaterThan(100);
});
