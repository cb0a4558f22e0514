/**
 * The page side of the Chromium tests: a real client (`@deadbolt/core`, WebCrypto) on the
 * WebRTC transport with the browser's own RTCPeerConnection, over the WebSocket transport
 * (the device itself: `page-device.ts`). Node drives it through `globalThis.deadboltWebRtc`;
 * every wait here is on an event, with a deadline.
 */
import { createWebRtcTransport, type RTCPeerConnectionConstructor } from '../../src/index.js';
import { createPageDevice, createPageWaits } from './page-device.js';

/** Every local description this page's peer connections produced (for the relay check). */
const localDescriptions: string[] = [];

/** The browser's RTCPeerConnection, noting the descriptions it produces. */
class RecordingPeerConnection extends RTCPeerConnection {
  override get localDescription(): RTCSessionDescription | null {
    const d = super.localDescription;
    if (d?.sdp && !localDescriptions.includes(d.sdp)) localDescriptions.push(d.sdp);
    return d;
  }
}

const device = createPageDevice(createPageWaits());

const api = {
  /** Starts this page's device (again after `stop`, with the same storage). */
  async start(options: { userId: string; deviceId: string; wsUrl: string }): Promise<void> {
    await device.start(options, (fallback) =>
      createWebRtcTransport({
        fallback,
        RTCPeerConnection: RecordingPeerConnection as unknown as RTCPeerConnectionConstructor,
        backoff: { initialMs: 50, maxMs: 1000 },
        connectTimeoutMs: 5000,
      }),
    );
  },
  /** Closes the client: the device is offline (its storage stays). */
  stop: device.stop,
  send: device.send,
  received: device.received,
  waitReceived: device.waitReceived,
  history: device.history,
  path: device.path,
  /** Waits until the path to that device is `path`; returns its fingerprint check. */
  async waitPath(userId: string, deviceId: string, path: 'direct' | 'relay'): Promise<string | undefined> {
    return (await device.waitPath(userId, deviceId, path))?.fingerprintCheck;
  },
  localDescriptions: (): string[] => localDescriptions.slice(),
};

export type DeadboltWebRtcPage = typeof api;
(globalThis as unknown as { deadboltWebRtc: DeadboltWebRtcPage }).deadboltWebRtc = api;
