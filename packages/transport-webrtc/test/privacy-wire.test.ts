/**
 * The privacy mode at the wire (hostile review 3, finding 1): what a malicious peer
 * actually receives, not what the descriptions or the ICE agent's stats say.
 *
 * The set-up, all on loopback, three addresses apart so that a packet's source tells
 * where it came from:
 *
 * - a TURN server (node-turn) listening on 127.0.0.1, whose relayed transport addresses
 *   are on **127.0.0.2** (`relayIps`): every packet that went through TURN arrives from
 *   127.0.0.2;
 * - the device under test (Alice), whose host sockets are on 127.0.0.1 (or any other
 *   address of the machine: anything but 127.0.0.2);
 * - Mallory, the peer, a bare UDP socket (node:dgram) on **127.0.0.3**, announced in her
 *   answer as a candidate labelled `typ relay` (which the relay-only filter lets through:
 *   the label is hers to choose). Alice's ICE agent sends its connectivity checks to it.
 *
 * Mallory records the source address of every datagram. In the privacy mode everything
 * must come from 127.0.0.2 (through TURN); one datagram from anywhere else is the leak:
 * it carries Alice's own address. werift, the Node implementation still allowed in the
 * privacy mode, is driven through the transport itself (its real configuration and
 * description filter). node-datachannel (libdatachannel) is driven with the configuration
 * the transport gave it before the fix (`iceTransportPolicy: 'relay'`, same TURN server):
 * it sends from its host socket as well, which is why the transport now refuses it in the
 * privacy mode. Waits are on datagrams arriving, never on time.
 */
import * as ndc from 'node-datachannel';
import * as polyfill from 'node-datachannel/polyfill';
import { RTCPeerConnection as WeriftPeerConnection } from 'werift';
import { afterEach, describe, expect, test } from 'vitest';
import { encodeSignal, nodeDatachannelImplementation, weriftImplementation, type IceServer, type NodeDatachannelModule, type NodeDatachannelPolyfillModule, type RTCPeerConnectionLike } from '../src/index.js';
import { Changes } from './helpers/changes.js';
import { World } from './helpers/fake-world.js';
import { bindUdpSocket, startLoopbackTurn } from './helpers/loopback-turn.js';
import { within } from './helpers/stack.js';

const TURN_RELAY_IP = '127.0.0.2';
const MALLORY_IP = '127.0.0.3';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** A TURN server listening on 127.0.0.1 whose relayed addresses are on {@link TURN_RELAY_IP}. */
async function turnServer(): Promise<IceServer> {
  const { turn, iceServer } = await startLoopbackTurn({ relayIp: TURN_RELAY_IP });
  cleanup.push(() => turn.stop());
  return iceServer;
}

/** Mallory's socket: records the source of every datagram; `until` waits on arrivals. */
async function malloryPeer(): Promise<{ port: number; sources: string[]; until(check: () => boolean, what: string): Promise<void> }> {
  const socket = await bindUdpSocket(MALLORY_IP);
  cleanup.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  const sources: string[] = [];
  const changes = new Changes();
  socket.on('message', (_msg, rinfo) => {
    sources.push(rinfo.address);
    changes.poke();
  });
  return { port: socket.address().port, sources, until: (check, what) => changes.until(check, what) };
}

/** Mallory's answer to `offer`: her one candidate, labelled relay, really her own socket. */
function maliciousAnswer(offer: string, port: number): string {
  const mid = /^a=mid:(\S+)/m.exec(offer)?.[1] ?? '0';
  const fingerprint = Array.from({ length: 32 }, (_, i) => (i * 7 + 3).toString(16).padStart(2, '0').toUpperCase()).join(':');
  return [
    'v=0',
    'o=- 4611731400430051336 2 IN IP4 0.0.0.0',
    's=-',
    't=0 0',
    `a=group:BUNDLE ${mid}`,
    'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
    'c=IN IP4 0.0.0.0',
    `a=mid:${mid}`,
    'a=ice-ufrag:mllr',
    'a=ice-pwd:malloryspasswordmalloryspw',
    `a=fingerprint:sha-256 ${fingerprint}`,
    'a=setup:active',
    'a=sctp-port:5000',
    'a=max-message-size:262144',
    `a=candidate:1 1 udp 2130706431 ${MALLORY_IP} ${port} typ relay raddr 0.0.0.0 rport 0`,
    'a=end-of-candidates',
    '',
  ].join('\r\n');
}

/** Datagrams through TURN that show Alice's checks reached Mallory the allowed way. */
const ENOUGH = 5;
/** The attempt's connect (and gathering) timeout, real timers, in the werift test: werift took about 6 s to send 5 checks through TURN here; twice that leaves room on a busy machine. */
const ATTEMPT_MS = 12_000;

describe("privacy 'relay-only' at the wire: a malicious peer's relay-labelled candidate (review 3, finding 1)", () => {
  test('werift, through the transport: every datagram Mallory receives comes from the TURN server’s relayed address, none from a host socket', async () => {
    const iceServer = await turnServer();
    const mallory = await malloryPeer();
    const w = new World();
    cleanup.push(() => w.close());
    // Real timers with a short connect timeout (hostile review 4, finding 7): the test
    // watches the whole attempt, until the link gives up (Mallory never completes DTLS)
    // and closes its connection, so a host-socket send late in the attempt is seen too.
    const alice = await w.device('alice', {
      // Marked as werift's (review 5, finding 1: the privacy mode takes an allowlist).
      ...weriftImplementation({ RTCPeerConnection: WeriftPeerConnection }),
      privacy: 'relay-only',
      iceServers: [iceServer],
      timers: { setTimeout: (cb: () => void, ms: number) => setTimeout(cb, ms), clearTimeout: (h: unknown) => clearTimeout(h as ReturnType<typeof setTimeout>) },
      connectTimeoutMs: ATTEMPT_MS,
      gatherTimeoutMs: ATTEMPT_MS,
    });
    const malloryDevice = await w.device('mallory'); // only her signalling address: she answers by hand
    const attempt = alice.raw.preconnect(malloryDevice.address);
    await w.changes.until(() => w.signals(alice.address, malloryDevice.address).some((s) => s.type === 'offer'), "alice's offer");
    const offer = w.signals(alice.address, malloryDevice.address).find((s) => s.type === 'offer');
    if (offer?.type !== 'offer') throw new Error('no offer');
    w.bus.inject(alice.address, malloryDevice.address, encodeSignal({ type: 'answer', connectionId: offer.connectionId, sequence: offer.sequence + 1, sdp: maliciousAnswer(offer.sdp, mallory.port) }));
    await mallory.until(() => mallory.sources.filter((s) => s === TURN_RELAY_IP).length >= ENOUGH, `${ENOUGH} datagrams through TURN`);
    // The attempt ends (connect timeout: no DTLS with Mallory), its connection closed: only
    // then is everything it sent in.
    expect(await within(attempt, 'the attempt to end', ATTEMPT_MS + 10_000)).toBe(false);
    expect(new Set(mallory.sources), 'sources of what Mallory received during the whole attempt').toEqual(new Set([TURN_RELAY_IP]));
  });

  test('node-datachannel with iceTransportPolicy relay (what the transport gave it before the fix): Mallory receives datagrams from its host socket, not only through TURN — the reason it is refused in the privacy mode', async () => {
    const iceServer = await turnServer();
    const mallory = await malloryPeer();
    const { RTCPeerConnection: Ctor } = nodeDatachannelImplementation(ndc as unknown as NodeDatachannelModule, polyfill as unknown as NodeDatachannelPolyfillModule);
    const pc: RTCPeerConnectionLike = new Ctor({ iceServers: [{ ...iceServer, urls: [iceServer.urls as string] }], iceTransportPolicy: 'relay' });
    cleanup.push(() => pc.close());
    pc.createDataChannel('deadbolt/1', { ordered: true });
    await pc.setLocalDescription(await pc.createOffer());
    await within(
      new Promise<void>((resolve) => {
        if (pc.iceGatheringState === 'complete') return resolve();
        pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
      }),
      'gathering',
    );
    await pc.setRemoteDescription({ type: 'answer', sdp: maliciousAnswer(pc.localDescription!.sdp!, mallory.port) });
    await mallory.until(() => mallory.sources.some((s) => s !== TURN_RELAY_IP), 'a datagram not through TURN');
    expect(mallory.sources.filter((s) => s !== TURN_RELAY_IP).length).toBeGreaterThan(0);
  });
});
