/**
 * `pnpm --filter @deadbolt/bench bench:webrtc`: the WebRTC transport's direct path between
 * two real clients, beside the same pair over the WebSocket relay transport, same run.
 *
 * ```
 * pnpm --filter @deadbolt/bench bench:webrtc            # the table
 * pnpm --filter @deadbolt/bench bench:webrtc --json     # one JSON object per line on stdout (progress on stderr)
 * pnpm --filter @deadbolt/bench bench:webrtc --quick    # tiny figures: a smoke run, the numbers mean nothing
 * pnpm --filter @deadbolt/bench bench:webrtc --trace    # also log each peer connection's set-up steps, timed (stderr)
 * pnpm --filter @deadbolt/bench bench:webrtc --no-werift  # node-datachannel only
 * ```
 *
 * Everything runs in this process: the reference relay (memory store, loose limits) on
 * loopback, and two devices (`createClient`, memory storage). The pair is the same two
 * devices throughout (identity, sessions and history in `createMemoryStorageBacking`s):
 * for each path it is opened with that path's transport, measured, and closed again, the
 * paths taking their runs in turn (round 1 of every path, then round 2, ...). Each opening
 * starts from an empty message history (see {@link clearHistory}):
 *
 * - `node-datachannel` / `werift`: `createWebRtcTransport` over a WebSocket fallback; the
 *   receiver sends one message first (a transport may answer offers only from users its
 *   device sent to lately), then the link is set up with `preconnect` and warmed up
 *   before the timed runs (the first frame
 *   after a transport opens takes the relay until the relay confirmed the recipient's
 *   device list version), and every frame the fallback carries during the timed runs is
 *   counted (`relayed-during-direct-runs`: 0 means every message went direct).
 * - `websocket-relay` (the baseline): `createWebSocketTransport` alone.
 *
 * Figures, 1 KiB messages, one sender and one receiver; a message counts when the
 * receiver's `message-received` fires:
 *
 * 1. **messages/s**: the sender keeps a window of sends in flight (`client.send` without
 *    awaiting; core queues them and hands the transport one at a time) for a fixed window of
 *    time; messages received inside it over its length. Median of the rounds. Core awaits
 *    each `transport.send` before the next message: on the direct path that is until the
 *    peer acknowledged the frame as processed (its handler ran), on the relay until the
 *    relay stored it, so the direct rate is one message per end-to-end round trip. Beside
 *    it, this process's CPU time per message (user + system, all threads, median of the
 *    rounds): both clients, their transports and the relay all run here, so it is the
 *    whole cost of a message on either path, and it depends far less than the rate on
 *    what other processes take.
 * 2. **latency p50/p99 at half load**: sends on a fixed schedule at half of that path's
 *    own median rate (timers against the schedule, as in stack-clients.ts); a message's
 *    latency runs from when it was due to `message-received`.
 * 3. **set-up time** (WebRTC only), over fresh pairs: `first-send` — two new devices, no
 *   session yet, opening a conversation: from Alice's `send` (which goes through the
 *   relay, carrying PQXDH, and starts a link), Bob replying as soon as it arrives, to
 *   Alice's `onPathChange` reporting `direct`; `preconnect` — the same two devices reopened
 *   with new transports (sessions kept, nothing sent, no link): from `preconnect` to
 *   `direct`. Offer and answer travel sealed through the relay; ICE, DTLS (and the
 *   fingerprint check), SCTP and the channel's own handshake follow. A `preconnect` that
 *   resolves `false` (the attempt ended without a link) is counted
 *   (`preconnect-ended-without-link`, of `preconnect-calls`, those of the rate and latency
 *   runs included) and called again at once, up to 5 times; a pair still without a link is
 *   counted (`setup-preconnect-no-link` of `setup-pairs`) and left out of the times.
 *
 * Waits are on events (message-received, onPathChange) with deadlines; the only timers
 * are the half-load schedule and the deadlines.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import * as ndc from 'node-datachannel';
import * as polyfill from 'node-datachannel/polyfill';
import { RTCPeerConnection as WeriftPeerConnection } from 'werift';
import { createClient, type Client } from '@deadbolt/core';
import { createMemoryRelayStore, createRelay, silentRelayLogger, type Relay } from '@deadbolt/relay';
import { LOOSE_TEST_LIMITS } from '@deadbolt/relay/testing';
import { address, type Address, type OutboundMessage, type TransportAdapter } from '@deadbolt/spec';
import { createMemoryStorage, createMemoryStorageBacking, type MemoryStorageBacking } from '@deadbolt/storage-memory';
import { createWebSocketTransport, type WebSocketConstructor } from '@deadbolt/transport-websocket';
import {
  createWebRtcTransport,
  nodeDatachannelImplementation,
  type NodeDatachannelModule,
  type NodeDatachannelPolyfillModule,
  type PeerConnectionImplementation,
  type RTCPeerConnectionConstructor,
  type WebRtcTransport,
} from '@deadbolt/transport-webrtc';
import { formatInt, jsonLines, median, ownCpuMs, printTable, rateLine, valueLine, watchContention, type RateLine, type ValueLine } from './harness.js';

const args = new Set(process.argv.slice(2));
const json = args.has('--json');
const quick = args.has('--quick');
/** Log each peer connection's set-up steps and each path change, with times (stderr). */
const trace = args.has('--trace');
const log = (s: string) => process.stderr.write(`${s}\n`);

const BODY_BYTES = 1024;
/** Bytes at the start of each body that carry its tag; the rest is filler. */
const TAG_BYTES = 48;
const FILLER = 'x'.repeat(BODY_BYTES - TAG_BYTES);
/** Sends in flight (queued in the client) during a rate run. */
const WINDOW = 32;
const RATE_MS = quick ? 300 : 2500;
const LATENCY_MS = quick ? 300 : 3000;
const ROUNDS = quick ? 1 : 3;
const LATENCY_ROUNDS = quick ? 1 : 2;
const SETUP_PAIRS = quick ? 2 : 10;
/** Any one wait (a run draining, a path turning direct) may take at most this long. */
const DEADLINE_MS = 30_000;

type DirectKind = 'node-datachannel' | 'werift';
type PathKind = DirectKind | 'websocket-relay';
const DIRECT_KINDS: readonly DirectKind[] = args.has('--no-werift') ? ['node-datachannel'] : ['node-datachannel', 'werift'];
const PATHS: readonly PathKind[] = [...DIRECT_KINDS, 'websocket-relay'];

/** With `--trace`: a peer connection that logs (stderr) when its set-up steps happen. */
interface TracedConnection {
  setLocalDescription(d?: unknown): Promise<void>;
  setRemoteDescription(d: unknown): Promise<void>;
  addEventListener?(type: string, listener: () => void): void;
  readonly connectionState?: string;
}

function implementation(kind: DirectKind): PeerConnectionImplementation {
  const impl: PeerConnectionImplementation =
    kind === 'werift'
      ? { RTCPeerConnection: WeriftPeerConnection as unknown as RTCPeerConnectionConstructor }
      : nodeDatachannelImplementation(ndc as unknown as NodeDatachannelModule, polyfill as unknown as NodeDatachannelPolyfillModule);
  if (!trace) return impl;
  const Base = impl.RTCPeerConnection as unknown as new (config: unknown) => TracedConnection;
  const Traced = class extends Base {
    constructor(config: unknown) {
      super(config);
      const t = (what: string): void => {
        log(`  ${performance.now().toFixed(1)} ms ${kind} ${what}`);
      };
      const setLocal = this.setLocalDescription.bind(this);
      const setRemote = this.setRemoteDescription.bind(this);
      this.setLocalDescription = (d?: unknown) => (t(`setLocalDescription ${(d as { type?: string } | undefined)?.type ?? ''}`), setLocal(d));
      this.setRemoteDescription = (d: unknown) => (t(`setRemoteDescription ${(d as { type?: string }).type ?? ''}`), setRemote(d));
      this.addEventListener?.('connectionstatechange', () => t(`connectionState ${this.connectionState ?? '?'}`));
    }
  };
  return { ...impl, RTCPeerConnection: Traced as unknown as RTCPeerConnectionConstructor };
}

/** Resolves when `promise` does, or rejects after `ms` saying what it waited for. */
function within<T>(promise: Promise<T>, what: string, ms = DEADLINE_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`bench:webrtc: ${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Condition waits re-checked when something happens (`poke`), never by polling. */
class Waiters {
  private readonly waiters = new Set<() => void>();
  poke(): void {
    for (const w of [...this.waiters]) w();
  }
  until(check: () => boolean, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    let waiter!: () => void;
    const done = new Promise<void>((resolve) => {
      waiter = () => {
        if (!check()) return;
        this.waiters.delete(waiter);
        resolve();
      };
      this.waiters.add(waiter);
    });
    return within(done, what).finally(() => this.waiters.delete(waiter));
  }
}

const waiters = new Waiters();

/** A device: its address and its storage, kept across transports. */
interface Device {
  readonly userId: string;
  readonly deviceId: string;
  readonly backing: MemoryStorageBacking;
}

const newDevice = (userId: string): Device => ({ userId, deviceId: 'd', backing: createMemoryStorageBacking() });

/** A device opened on one path's transport. */
interface Opened {
  readonly client: Client;
  readonly webrtc: WebRtcTransport | undefined;
  /** Frames the relay transport was handed (messages and signalling) since opening. */
  readonly relayed: { count: number };
  /** `performance.now()` of each `message-received`, by body tag. */
  onReceived: ((tag: string, at: number) => void) | undefined;
  close(): Promise<void>;
}

/** The WebSocket transport, counting the frames it is handed. */
function countingWebSocket(relay: Relay, relayed: { count: number }): TransportAdapter {
  const inner = createWebSocketTransport({ url: relay.wsUrl, WebSocket: WebSocket as unknown as WebSocketConstructor });
  return new Proxy(inner, {
    get(target, key) {
      if (key === 'send') {
        return (messages: readonly OutboundMessage[]) => {
          relayed.count += messages.length;
          return target.send(messages);
        };
      }
      if (key === 'sendShared') {
        return (recipients: Parameters<TransportAdapter['sendShared']>[0], frame: Uint8Array) => {
          relayed.count += recipients.length;
          return target.sendShared(recipients, frame);
        };
      }
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function open(relay: Relay, device: Device, path: PathKind): Promise<Opened> {
  const relayed = { count: 0 };
  const fallback = countingWebSocket(relay, relayed);
  const webrtc = path === 'websocket-relay' ? undefined : createWebRtcTransport({ fallback, ...implementation(path), ...DIRECT_BENCH_LIMITS });
  const client = await createClient({
    userId: device.userId,
    deviceId: device.deviceId,
    storage: createMemoryStorage({ backing: device.backing }),
    transport: webrtc ?? fallback,
    prekeyBatch: { oneTime: 5, pqOneTime: 2 },
  });
  const opened: Opened = { client, webrtc, relayed, onReceived: undefined, close: () => client.close() };
  client.on('error', (e) => log(`bench:webrtc: ${device.userId}: background error ${e instanceof Error ? e.message : String(e)}`));
  client.on('message-received', (m) => {
    const at = performance.now();
    opened.onReceived?.(new TextDecoder().decode(m.body.subarray(0, TAG_BYTES)).trimEnd(), at);
    waiters.poke();
  });
  webrtc?.onPathChange((c) => {
    if (trace) log(`  ${performance.now().toFixed(1)} ms ${device.userId}: path to ${c.peer.userId} ${c.path}${c.reason ? ` (${c.reason})` : ''}`);
    waiters.poke();
  });
  await within(client.start(), `starting ${device.userId}`);
  return opened;
}

const addressOf = (d: Device): Address => address(d.userId, d.deviceId);
const body = (tag: string): string => tag.padEnd(TAG_BYTES) + FILLER;

/** Sends `n` messages one at a time and waits until each was received. */
async function exchange(a: Opened, b: Opened, to: Device, n: number, label: string): Promise<void> {
  let got = 0;
  b.onReceived = (tag) => {
    if (tag.startsWith(`${label}:`)) got++;
  };
  for (let i = 0; i < n; i++) {
    await a.client.send(to.userId, body(`${label}:${i}`));
    await waiters.until(() => got > i, `${label} message ${i}`);
  }
  b.onReceived = undefined;
}

let runNumber = 0;

/** `preconnect` calls, and those that resolved `false` (the attempt ended without a link), per implementation. */
const preconnects = new Map<DirectKind, { calls: number; ended: number }>();
function notePreconnect(kind: DirectKind): void {
  const p = preconnects.get(kind) ?? { calls: 0, ended: 0 };
  p.calls++;
  preconnects.set(kind, p);
}
function noteEndedWithoutLink(kind: DirectKind): void {
  preconnects.get(kind)!.ended++;
}

/**
 * A rate run: `WINDOW` sends in flight for `ms`; messages received inside the window over
 * its length. Every message of the run is received before it returns.
 */
async function rateRun(a: Opened, b: Opened, to: Device, ms: number): Promise<{ perSecond: number; cpuUsPerMessage: number }> {
  const prefix = `r${++runNumber}:`;
  let seq = 0;
  let sent = 0;
  let received = 0;
  let inWindow = 0;
  let failure: unknown;
  const cpu0 = ownCpuMs();
  const start = performance.now();
  const end = start + ms;
  const sendOne = (): void => {
    sent++;
    a.client.send(to.userId, body(`${prefix}${seq++}`)).catch((e: unknown) => {
      failure ??= e;
      waiters.poke();
    });
  };
  b.onReceived = (tag, at) => {
    if (!tag.startsWith(prefix)) return;
    received++;
    if (at <= end) {
      inWindow++;
      sendOne(); // keep the window full
    }
  };
  for (let i = 0; i < WINDOW; i++) sendOne();
  await waiters.until(() => failure !== undefined || received >= sent, `receiving the ${sent} messages of a rate run`);
  const cpuMs = ownCpuMs() - cpu0;
  b.onReceived = undefined;
  if (failure !== undefined) throw failure;
  return { perSecond: (inWindow * 1000) / ms, cpuUsPerMessage: (cpuMs * 1000) / received };
}

/**
 * A latency run: sends due every `1000 / perSecond` ms for `ms` (each sent when its timer
 * fires, late ones at once), latency from due to received.
 */
async function latencyRun(a: Opened, b: Opened, to: Device, perSecond: number, ms: number): Promise<number[]> {
  const prefix = `l${++runNumber}:`;
  const gap = 1000 / perSecond;
  const due = new Map<string, number>();
  const latencies: number[] = [];
  let seq = 0;
  let sent = 0;
  let doneSending = false;
  let failure: unknown;
  b.onReceived = (tag, at) => {
    const d = due.get(tag);
    if (d === undefined) return;
    due.delete(tag);
    latencies.push(at - d);
  };
  const start = performance.now();
  const end = start + ms;
  let next = start;
  const tick = (): void => {
    const now = performance.now();
    while (next <= now && next < end) {
      const tag = `${prefix}${seq++}`;
      due.set(tag, next);
      sent++;
      a.client.send(to.userId, body(tag)).catch((e: unknown) => {
        failure ??= e;
        waiters.poke();
      });
      next += gap;
    }
    if (next < end) setTimeout(tick, next - performance.now());
    else {
      doneSending = true;
      waiters.poke();
    }
  };
  tick();
  await waiters.until(() => failure !== undefined || (doneSending && latencies.length >= sent), `receiving the messages of a latency run`);
  b.onReceived = undefined;
  if (failure !== undefined) throw failure;
  return latencies;
}

/**
 * Deletes a closed device's message history (keeping its identity and sessions). The memory
 * adapter's `range` visits every stored key, and core reads a user's sessions with `range`
 * several times per message, so without this each message would cost more than the last
 * as the tens of thousands of messages of a run accumulate (and later runs would be slower).
 */
async function clearHistory(device: Device): Promise<void> {
  const storage = createMemoryStorage({ backing: device.backing });
  const entries = await storage.range(['msg'], { limit: 1_000_000 });
  for (let i = 0; i < entries.length; i += 1000) await storage.batch(entries.slice(i, i + 1000).map((e) => ({ type: 'delete' as const, key: e.key })));
}

/**
 * `preconnect` until it resolves `true` (at most 5 calls, each counted; one that resolves
 * `false` is counted as ended without a link and made again at once, as an application
 * opening a conversation would).
 */
async function preconnect(webrtc: WebRtcTransport, kind: DirectKind, to: Device): Promise<boolean> {
  for (let i = 0; i < 5; i++) {
    notePreconnect(kind);
    if (await within(webrtc.preconnect(addressOf(to)), `preconnect over ${kind}`)) return true;
    noteEndedWithoutLink(kind);
    if (trace) log(`  ${performance.now().toFixed(1)} ms ${kind} preconnect resolved false`);
  }
  return false;
}

/**
 * The direct path's inbound rate limits, loosened as the relay's are (its LOOSE_TEST_LIMITS):
 * by default a device takes 50 frames/s (burst 200) and 2 MiB/s from one peer and NACKs
 * the rest to the relay (hostile review 3, finding 3), a policy against untrusted peers
 * that would otherwise cap, not measure, the path. The other bounds (frames in flight,
 * frames and bytes waiting for the handler) stay at their defaults.
 */
const DIRECT_BENCH_LIMITS = { maxInboundFramesPerSecond: 1_000_000, inboundFrameBurst: 1_000_000, maxInboundBytesPerSecond: 1 << 30 } as const;

/** Opens the pair on `path` (with no history); for a direct path sets the link up and warms it up. */
async function openPair(relay: Relay, alice: Device, bob: Device, path: PathKind): Promise<{ a: Opened; b: Opened }> {
  await clearHistory(alice);
  await clearHistory(bob);
  const a = await open(relay, alice, path);
  const b = await open(relay, bob, path);
  if (a.webrtc) {
    // Bob sends first: a device answers offers only from users it sent to lately (in
    // transports that have that rule), and these transports are new.
    await exchange(b, a, alice, 1, `p${++runNumber}`);
    if (!(await preconnect(a.webrtc, path as DirectKind, bob))) throw new Error(`bench:webrtc: no direct link over ${path} after 5 preconnect calls`);
  }
  // Warm-up (the first frame after opening takes the relay; see the module comment).
  await exchange(a, b, bob, quick ? 5 : 50, `w${++runNumber}`);
  if (a.webrtc && a.webrtc.path(addressOf(bob)) !== 'direct') throw new Error(`bench:webrtc: the path over ${path} is not direct after the warm-up`);
  a.relayed.count = 0;
  return { a, b };
}

async function closePair(p: { a: Opened; b: Opened }): Promise<void> {
  await p.a.close();
  await p.b.close();
}

const percentile = (values: readonly number[], q: number): number => {
  const s = [...values].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
};

/** Set-up times over fresh pairs: first send → direct, and preconnect → direct (same devices reopened). */
async function setupTimes(relay: Relay, kind: DirectKind, index: number): Promise<{ firstSend: number; preconnect: number | undefined }> {
  const alice = newDevice(`s-${kind}-${index}-a`);
  const bob = newDevice(`s-${kind}-${index}-b`);
  /** Time from `start` to Alice's path to Bob turning direct; undefined when `start` resolved false (no link). */
  const toDirect = async (a: Opened, start: () => Promise<unknown>, what: string): Promise<number | undefined> => {
    const t0 = performance.now();
    if (trace) log(`  ${t0.toFixed(1)} ms ${what}: start`);
    let at: number | undefined;
    const off = a.webrtc!.onPathChange((c) => {
      if (c.path !== 'direct' || c.peer.userId !== bob.userId) return;
      at ??= performance.now();
      waiters.poke();
    });
    try {
      const result = await within(start(), what);
      if (trace) log(`  ${performance.now().toFixed(1)} ms ${what}: resolved`);
      if (result === false) return undefined;
      await waiters.until(() => at !== undefined, `${what}: the path turning direct`);
    } finally {
      off();
    }
    return at! - t0;
  };
  let a = await open(relay, alice, kind);
  let b = await open(relay, bob, kind);
  // The opening of a conversation: Alice's first message, and Bob's reply as soon as it arrives.
  b.onReceived = (tag) => {
    if (tag === 'setup-hello') b.client.send(alice.userId, body('setup-reply')).catch((e: unknown) => log(`bench:webrtc: reply failed: ${String(e)}`));
  };
  const firstSend = await toDirect(a, () => a.client.send(bob.userId, body('setup-hello')), `${kind} first send`);
  await closePair({ a, b });
  a = await open(relay, alice, kind);
  b = await open(relay, bob, kind);
  const preconnected = await toDirect(a, () => preconnect(a.webrtc!, kind, bob), `${kind} preconnect`);
  await closePair({ a, b });
  return { firstSend: firstSend!, preconnect: preconnected };
}

async function main(): Promise<void> {
  const relay = await createRelay({ host: '127.0.0.1', port: 0, store: createMemoryRelayStore(), logger: silentRelayLogger, limits: LOOSE_TEST_LIMITS });
  const contention = await watchContention();
  try {
    const alice = newDevice('alice');
    const bob = newDevice('bob');
    // The session, both ways, over the relay (untimed).
    {
      const p = await openPair(relay, alice, bob, 'websocket-relay');
      await exchange(p.b, p.a, alice, 1, 'back');
      await closePair(p);
    }

    // 1. Rates, paths in turn.
    const rates = new Map<PathKind, number[]>(PATHS.map((p) => [p, []]));
    /** CPU time of this process (both clients, their transports and the relay) per message, µs. */
    const cpuPerMessage = new Map<PathKind, number[]>(PATHS.map((p) => [p, []]));
    const relayedDuringDirect = new Map<PathKind, number>(PATHS.map((p) => [p, 0]));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const path of PATHS) {
        log(`bench:webrtc: rate round ${round}/${ROUNDS}: ${path}`);
        const p = await openPair(relay, alice, bob, path);
        const r = await rateRun(p.a, p.b, bob, RATE_MS);
        rates.get(path)!.push(r.perSecond);
        cpuPerMessage.get(path)!.push(r.cpuUsPerMessage);
        if (p.a.webrtc) relayedDuringDirect.set(path, relayedDuringDirect.get(path)! + p.a.relayed.count);
        await closePair(p);
      }
    }
    const rate = (path: PathKind): number => median(rates.get(path)!);

    // 2. Latency at half of each path's own rate, paths in turn.
    const latencies = new Map<PathKind, number[]>(PATHS.map((p) => [p, []]));
    for (let round = 1; round <= LATENCY_ROUNDS; round++) {
      for (const path of PATHS) {
        log(`bench:webrtc: half-load round ${round}/${LATENCY_ROUNDS}: ${path} at ${formatInt(rate(path) / 2)}/s`);
        const p = await openPair(relay, alice, bob, path);
        latencies.get(path)!.push(...(await latencyRun(p.a, p.b, bob, rate(path) / 2, LATENCY_MS)));
        if (p.a.webrtc) relayedDuringDirect.set(path, relayedDuringDirect.get(path)! + p.a.relayed.count);
        await closePair(p);
      }
    }

    // 3. Set-up times over fresh pairs, implementations in turn.
    const setups = new Map<DirectKind, { firstSend: number[]; preconnect: number[]; preconnectNoLink: number }>(
      DIRECT_KINDS.map((k) => [k, { firstSend: [], preconnect: [], preconnectNoLink: 0 }]),
    );
    for (let i = 0; i < SETUP_PAIRS; i++) {
      for (const kind of DIRECT_KINDS) {
        const s = await setupTimes(relay, kind, i);
        setups.get(kind)!.firstSend.push(s.firstSend);
        if (s.preconnect === undefined) setups.get(kind)!.preconnectNoLink++;
        else setups.get(kind)!.preconnect.push(s.preconnect);
      }
      log(`bench:webrtc: set-up pairs ${i + 1}/${SETUP_PAIRS}`);
    }
    const busy = await contention();

    const baseline = { name: 'webrtc/websocket-relay/1024B-messages', perSecond: rate('websocket-relay') };
    const lines: (RateLine | ValueLine)[] = [];
    const rows: string[][] = [];
    const ms = (x: number): string => x.toFixed(1);
    for (const path of PATHS) {
      const lat = latencies.get(path)!;
      const p50 = percentile(lat, 0.5);
      const p99 = percentile(lat, 0.99);
      const direct = path !== 'websocket-relay';
      if (direct) lines.push(rateLine(`webrtc/${path}/direct-1024B-messages`, rate(path), baseline));
      else lines.push(valueLine(`webrtc/${path}/1024B-messages`, Math.round(rate(path)), 'messages/s'));
      lines.push(valueLine(`webrtc/${path}/cpu-per-message`, Math.round(median(cpuPerMessage.get(path)!)), 'us'));
      lines.push(valueLine(`webrtc/${path}/half-load/rate`, Math.round(rate(path) / 2), 'messages/s'));
      lines.push(valueLine(`webrtc/${path}/half-load/latency-p50`, Math.round(p50 * 100) / 100, 'ms'));
      lines.push(valueLine(`webrtc/${path}/half-load/latency-p99`, Math.round(p99 * 100) / 100, 'ms'));
      const s = direct ? setups.get(path as DirectKind)! : undefined;
      if (s) {
        lines.push(valueLine(`webrtc/${path}/setup-first-send-p50`, Math.round(percentile(s.firstSend, 0.5) * 10) / 10, 'ms'));
        lines.push(valueLine(`webrtc/${path}/setup-first-send-p99`, Math.round(percentile(s.firstSend, 0.99) * 10) / 10, 'ms'));
        lines.push(valueLine(`webrtc/${path}/setup-pairs`, SETUP_PAIRS, 'pairs'));
        lines.push(valueLine(`webrtc/${path}/setup-preconnect-no-link`, s.preconnectNoLink, 'pairs'));
        if (s.preconnect.length > 0) {
          lines.push(valueLine(`webrtc/${path}/setup-preconnect-p50`, Math.round(percentile(s.preconnect, 0.5) * 10) / 10, 'ms'));
          lines.push(valueLine(`webrtc/${path}/setup-preconnect-p99`, Math.round(percentile(s.preconnect, 0.99) * 10) / 10, 'ms'));
        }
        lines.push(valueLine(`webrtc/${path}/relayed-during-direct-runs`, relayedDuringDirect.get(path)!, 'frames'));
        const pc = preconnects.get(path as DirectKind) ?? { calls: 0, ended: 0 };
        lines.push(valueLine(`webrtc/${path}/preconnect-calls`, pc.calls, 'calls'));
        lines.push(valueLine(`webrtc/${path}/preconnect-ended-without-link`, pc.ended, 'calls'));
      }
      rows.push([
        direct ? `${path} (direct)` : `${path} (baseline)`,
        formatInt(rate(path)),
        (rate(path) / baseline.perSecond).toFixed(2),
        rates.get(path)!.map((r) => formatInt(r)).join(' / '),
        formatInt(median(cpuPerMessage.get(path)!)),
        formatInt(rate(path) / 2),
        ms(p50),
        ms(p99),
        s ? `${ms(percentile(s.firstSend, 0.5))} / ${ms(percentile(s.firstSend, 0.99))}` : '-',
        s ? (s.preconnect.length > 0 ? `${ms(percentile(s.preconnect, 0.5))} / ${ms(percentile(s.preconnect, 0.99))}` : '-') + (s.preconnectNoLink > 0 ? ` (${s.preconnectNoLink} of ${SETUP_PAIRS} no link)` : '') : '-',
        s ? String(relayedDuringDirect.get(path)) : '-',
        s ? `${preconnects.get(path as DirectKind)?.ended ?? 0} / ${preconnects.get(path as DirectKind)?.calls ?? 0}` : '-',
      ]);
    }
    if (json) {
      process.stdout.write(jsonLines(lines));
    } else {
      console.log(
        `1 KiB messages between two clients in this process, relay in-process on loopback; ${WINDOW} sends in flight, ` +
          `${ROUNDS} runs of ${RATE_MS} ms per path (median); half load: ${LATENCY_ROUNDS} runs of ${LATENCY_MS} ms; set-up: ${SETUP_PAIRS} fresh pairs\n`,
      );
      console.log(
        printTable(['path', 'messages/s', 'x relay', 'runs', 'CPU us/msg', 'half load/s', 'p50 ms', 'p99 ms', 'set-up first send p50/p99 ms', 'set-up preconnect p50/p99 ms', 'relayed frames', 'preconnect false'], rows),
      );
      console.log(`\nOther processes kept ${busy.othersBusyCores.toFixed(2)} of ${busy.cores} cores busy meanwhile.`);
      if (quick) console.log('--quick: numbers are meaningless');
    }
  } finally {
    await relay.close();
    (ndc as unknown as { cleanup?: () => void }).cleanup?.();
  }
}

await main();
