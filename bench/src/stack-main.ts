/**
 * `pnpm bench:stack`: the whole Deadbolt stack on loopback — client (encrypt, store),
 * WebSocket transport, the reference relay on SQLite, transport, client (decrypt, store,
 * acknowledge) — beside a raw `ws` echo server measured in the same run.
 *
 * ```
 * pnpm bench:stack                  # the table (about a minute on 2 cores)
 * pnpm bench:stack --json           # one JSON object per line on stdout (progress on stderr)
 * pnpm bench:stack --quick          # tiny figures: a smoke run, the numbers mean nothing
 * pnpm bench:stack --profile=DIR    # also profile one extra full-load run (relay and clients)
 * ```
 *
 * Figures (1 KiB message bodies):
 * 1. sustained messages/s between 50 client pairs (100 clients, each sending to its partner
 *    with one send in flight; a message counts when its recipient decrypted and stored it),
 *    against the echo rate of a raw `ws` server with 50 connections and the same number of
 *    messages in flight (2 per connection); target >= 40%;
 * 2. end-to-end latency p50/p99 at half the sustained rate (paced sends; a message's
 *    latency counts from when it was due, so a client falling behind shows);
 * 3. the relay's memory (RSS, heap after a full GC) and database size before and after
 *    100,000 messages queued for devices that are not connected.
 *
 * Processes: the relay and the echo server each run in their own child process
 * (stack-server.ts), as a relay does not share its CPU with its clients; the 100 clients
 * (and the raw echo clients) run in this one. With 2 cores that is one core for each side.
 * The stack and the echo take their timed runs alternately (harness.ts `interleaveRuns`),
 * and each figure is the median of the runs.
 *
 * The relay is `createRelay` + `createSqliteRelayStore` (WAL, synchronous = FULL) with its
 * rate limits loosened by `LOOSE_TEST_LIMITS` (mailbox quotas at their defaults).
 *
 * Targets are reported (PASS / BELOW); the exit code is 0 either way.
 *
 * @module
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  formatInt,
  interleaveRuns,
  measureInterleaved,
  median,
  ownCpuMs,
  printTable,
  rateLine,
  valueLine,
  watchContention,
  type PreparedBench,
  type RateLine,
  type ValueLine,
} from './harness.js';
import { createNodeCryptoProvider, paddedLength } from '@deadbolt/core';
import { ProtocolPair } from './deadbolt.js';
import { primitiveBenches, steadyBaseline, type PrimitiveRates } from './primitives.js';
import { startFleet, type StackRun } from './stack-clients.js';
import { openEchoClients } from './stack-echo.js';
import { ServerProcess, sleep, startProfile, usageBetween, usageSnapshot, type ServerStats, type Usage, type UsageSnapshot } from './stack-ipc.js';
import { queueForOffline } from './stack-offline.js';
import { startTransportPairs } from './stack-transports.js';
import { formatSummary, summarize, type CpuProfile } from './stack-profile.js';
import { contentionNote, log, parseArgs, writeJson, writeTable } from './script.js';

const HELP = `Usage: pnpm bench:stack [--json] [--quick] [--profile=DIR]

  --json          one JSON object per line on stdout (progress on stderr):
                    {"name","perSecond","baseline","baselinePerSecond","ratio"} for the sustained rate
                    {"name","value","unit"} for every other figure
  --quick         tiny figures (smoke run; the numbers are meaningless)
  --profile=DIR   after the measured runs, one more full-load run with V8's CPU profiler on in the
                  relay and in the client process; writes DIR/relay.cpuprofile and
                  DIR/clients.cpuprofile and prints where their time went
`;

let profileDir: string | undefined;
const { json, quick } = parseArgs(process.argv.slice(2), HELP, (a) => {
  if (!a.startsWith('--profile=') || a.length <= 10) return false;
  profileDir = resolve(a.slice(10));
  return true;
});

/** Everything sized in one place; --quick shrinks it all. */
const C = quick
  ? { primitiveMs: 20, pairs: 3, echoWindow: 2, echoMs: 200, stackMs: 300, warmEchoMs: 100, warmStackMs: 200, rounds: 1, halfMs: 300, queued: 1000, offlineDevices: 10, offlineSenders: 2 }
  : { primitiveMs: 300, pairs: 50, echoWindow: 2, echoMs: 2000, stackMs: 3000, warmEchoMs: 500, warmStackMs: 1500, rounds: 3, halfMs: 5000, queued: 100_000, offlineDevices: 100, offlineSenders: 10 };
const BODY_BYTES = 1024;
const TARGET_RATIO = 0.4;
const LIMITS_NOTE = 'rate limits loosened with LOOSE_TEST_LIMITS from @deadbolt/relay/testing (mailbox quotas at their defaults)';

/** Nearest-rank percentile of unsorted values. */
function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

const ms2 = (x: number): number => Math.round(x * 100) / 100;
const MB = (b: number): string => `${(b / 1024 / 1024).toFixed(1)} MB`;

// --- clean-up, however the run ends --------------------------------------------------------------------

const workDir = mkdtempSync(join(tmpdir(), 'deadbolt-bench-stack-'));
process.once('exit', () => rmSync(workDir, { recursive: true, force: true }));
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130)); // exit handlers kill the servers

/** A timed run of one side, with the CPU use of both its processes. */
interface SideRun {
  readonly rate: number;
  readonly clients: Usage;
  readonly server: Usage;
  readonly stack?: StackRun;
}

/** Runs `fn` and, in parallel, takes usage snapshots of this process and `server` at its start and after `ms`. */
async function withUsage<T>(server: ServerProcess, ms: number, fn: () => Promise<T>): Promise<{ value: T; clients: Usage; server: Usage }> {
  const c0 = usageSnapshot();
  const s0 = await server.usage();
  const after = sleep(ms).then(async (): Promise<[UsageSnapshot, UsageSnapshot]> => [usageSnapshot(), await server.usage()]);
  const value = await fn();
  const [c1, s1] = await after;
  return { value, clients: usageBetween(c0, c1), server: usageBetween(s0, s1) };
}

async function main(): Promise<void> {
  const started = performance.now();
  log(
    `bench:stack: ${C.pairs} client pairs (${2 * C.pairs} Deadbolt clients: memory storage, WebSocket transport) in this process; ` +
      `relay (SQLite, ${LIMITS_NOTE}) and raw ws echo server each in their own process; ${BODY_BYTES} B bodies; Node ${process.version}`,
  );
  const dbPath = join(workDir, 'relay.db');
  let echo: ServerProcess | undefined;
  let relay: ServerProcess | undefined;
  let echoClients: Awaited<ReturnType<typeof openEchoClients>> | undefined;
  let fleet: Awaited<ReturnType<typeof startFleet>> | undefined;
  let bare: Awaited<ReturnType<typeof startTransportPairs>> | undefined;
  try {
    [echo, relay] = await Promise.all([ServerProcess.start('echo'), ServerProcess.start('relay', dbPath)]);
    const echoServer = echo;
    const relayServer = relay;
    const idle: ServerStats = await relayServer.stats();

    log(`starting ${2 * C.pairs} clients and establishing ${C.pairs} pairs of sessions...`);
    const t0 = performance.now();
    fleet = await startFleet(relay.wsUrl, C.pairs, BODY_BYTES, log);
    const theFleet = fleet;
    log(`  ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    echoClients = await openEchoClients(echo.wsUrl, C.pairs, C.echoWindow, BODY_BYTES);
    const theEcho = echoClients;

    log('warming up...');
    await theEcho.run(C.warmEchoMs);
    await theFleet.run(C.warmStackMs);
    const frameBytes = theFleet.frameBytes();
    bare = await startTransportPairs(relay.wsUrl, C.pairs, frameBytes);
    const theBare = bare;
    await theBare.run(C.warmEchoMs);

    // --- figure 1: sustained, interleaved with the raw echo ---------------------------------------
    const echoRuns: SideRun[] = [];
    const stackRuns: SideRun[] = [];
    const bareRuns: SideRun[] = [];
    const prepared: PreparedBench[] = [
      {
        name: 'raw ws echo',
        run: async () => {
          const r = await withUsage(echoServer, C.echoMs, () => theEcho.run(C.echoMs));
          echoRuns.push({ rate: (r.value.ops * 1000) / r.value.elapsed, clients: r.clients, server: r.server });
          return r.value;
        },
      },
      {
        name: 'stack',
        run: async () => {
          const r = await withUsage(relayServer, C.stackMs, () => theFleet.run(C.stackMs));
          stackRuns.push({ rate: (r.value.received * 1000) / r.value.elapsed, clients: r.clients, server: r.server, stack: r.value });
          return { ops: r.value.received, elapsed: r.value.elapsed };
        },
      },
      {
        name: 'bare transports',
        run: async () => {
          const r = await withUsage(relayServer, C.stackMs, () => theBare.run(C.stackMs));
          bareRuns.push({ rate: (r.value.ops * 1000) / r.value.elapsed, clients: r.clients, server: r.server });
          return r.value;
        },
      },
    ];
    const contention = await watchContention(async () => ownCpuMs() + (await echoServer.usage()).cpuMs + (await relayServer.usage()).cpuMs);
    const [echoM, stackM, bareM] = await interleaveRuns(prepared, {
      runs: C.rounds,
      onRound: (r) => log(`round ${r} of ${C.rounds}: raw echo ${C.echoMs} ms, stack ${C.stackMs} ms, bare transports ${C.stackMs} ms...`),
    });
    const figure1Contention = await contention();
    const { cores, othersBusyCores } = figure1Contention;
    log(`  raw echo ${formatInt(echoM!.perSecond)}/s, stack ${formatInt(stackM!.perSecond)}/s, bare transports ${formatInt(bareM!.perSecond)}/s`);

    // --- the ceiling: what no implementation of the stack could beat on this machine ----------------
    // A delivered message needs at least what one echoed message costs (the frame crosses two
    // WebSocket hops either way) plus the raw primitives of one pairwise message, encrypted and
    // decrypted (docs/protocol.md §6.4: 4 HMAC, 2 HKDF, seal, open, compare), with nothing else:
    // no relay store, no acknowledgements, no client bookkeeping. With every core busy that
    // gives the highest rate the stack could reach, measured here in the same run.
    log('ceiling: raw primitives of one pairwise message (node:crypto, this process)...');
    const ceilingCrypto = createNodeCryptoProvider();
    const pair = await ProtocolPair.establish(ceilingCrypto, ceilingCrypto.randomBytes(BODY_BYTES));
    const primBenches = await primitiveBenches(ceilingCrypto, { paddedLength: paddedLength(BODY_BYTES), adLength: pair.adPrefixLength() + 42 }, C.primitiveMs);
    const steadyParts = ['hmac', 'hkdf76', 'seal1088', 'open1088', 'compare32'] as const;
    const steadyMeasured = await measureInterleaved(steadyParts.map((p) => primBenches[p]));
    const steadyPrims = steadyBaseline(Object.fromEntries(steadyParts.map((p, i) => [p, steadyMeasured[i]!])) as unknown as PrimitiveRates);

    // --- figure 2: latency at half load ----------------------------------------------------------
    const halfRate = stackM!.perSecond / 2;
    log(`half load: ${formatInt(halfRate)} messages/s paced, ${C.halfMs} ms...`);
    const half = await withUsage(relayServer, C.halfMs, () => theFleet.run(C.halfMs, halfRate));

    // --- optional: profiles of one more full-load run ------------------------------------------------
    let profileText: string | undefined;
    if (profileDir) {
      mkdirSync(profileDir, { recursive: true });
      log(`profiling one more full-load run (${C.stackMs} ms) in the relay and in this process...`);
      await relayServer.profileStart();
      const mine = await startProfile();
      const profiled = await theFleet.run(C.stackMs);
      const clientProfile = (await mine.stop()) as CpuProfile;
      const relayFile = join(profileDir, 'relay.cpuprofile');
      const clientFile = join(profileDir, 'clients.cpuprofile');
      await relayServer.profileStop(relayFile);
      writeFileSync(clientFile, JSON.stringify(clientProfile));
      const relayProfile = JSON.parse(readFileSync(relayFile, 'utf8')) as CpuProfile;
      profileText = [
        `Profiled run: ${formatInt((profiled.received * 1000) / profiled.elapsed)} messages/s under the profiler (not a figure). Files: ${relayFile}, ${clientFile}`,
        formatSummary('relay process', summarize(relayProfile)),
        formatSummary(`client process (${theFleet.clients} clients)`, summarize(clientProfile)),
      ].join('\n\n');
    }

    echoClients.close();
    echoClients = undefined;
    await fleet.close();
    fleet = undefined;
    await bare.close();
    bare = undefined;
    await echo.stop();
    echo = undefined;

    // --- figure 3: relay memory with mail queued for offline devices --------------------------------
    log(`queueing ${formatInt(C.queued)} messages (${frameBytes} B frames) for ${C.offlineDevices} offline devices from ${C.offlineSenders} senders...`);
    const before: ServerStats = await relayServer.stats();
    const q0 = performance.now();
    await queueForOffline(relayServer.wsUrl, { total: C.queued, devices: C.offlineDevices, senders: C.offlineSenders, frameBytes });
    const queueSeconds = (performance.now() - q0) / 1000;
    const after: ServerStats = await relayServer.stats();
    await relay.stop();
    relay = undefined;

    // --- output ------------------------------------------------------------------------------------
    const pooled = (pick: (r: StackRun) => number[]): number[] => stackRuns.flatMap((r) => pick(r.stack!));
    const full = {
      latencies: pooled((r) => r.latencies),
      sender: pooled((r) => r.senderMs),
      relay: pooled((r) => r.relayMs),
      recipient: pooled((r) => r.recipientMs),
      ok: pooled((r) => r.okMs),
    };
    const med = (runs: SideRun[], pick: (r: SideRun) => number): number => median(runs.map(pick));
    const baselineName = `raw ws echo server in its own process, ${C.pairs} connections × ${C.echoWindow} in flight, ${BODY_BYTES} B binary`;
    const rate = rateLine(`stack/sustained-${BODY_BYTES}B-messages-${C.pairs}-pairs`, stackM!.perSecond, { name: baselineName, perSecond: echoM!.perSecond });
    const bareLine = rateLine(`stack/bare-transports-${frameBytes}B-frames-${C.pairs}-pairs`, bareM!.perSecond, { name: baselineName, perSecond: echoM!.perSecond });
    // The ceiling (measured above): every core busy with nothing but the echo's own CPU per
    // message and the raw primitives of one pairwise message.
    const echoCoreSeconds = med(echoRuns, (r) => (r.clients.cores + r.server.cores) / r.rate);
    const ceilingRate = cores / (echoCoreSeconds + 1 / steadyPrims.perSecond);
    const ceilingLine = rateLine(`stack/ceiling-${cores}-cores`, ceilingRate, { name: baselineName, perSecond: echoM!.perSecond });
    const h = half.value;
    const halfAchieved = (h.received * 1000) / h.elapsed;
    const lines: (RateLine | ValueLine)[] = [
      rate,
      bareLine,
      ceilingLine,
      valueLine('ceiling/echo-cpu-per-message', ms2(echoCoreSeconds * 1e6), 'µs'),
      valueLine('ceiling/pairwise-message-primitives', ms2(1e6 / steadyPrims.perSecond), 'µs'),
      valueLine('stack/half-load/target-rate', Math.round(halfRate), 'messages/s'),
      valueLine('stack/half-load/achieved-rate', Math.round(halfAchieved), 'messages/s'),
      valueLine('stack/half-load/latency-p50', ms2(percentile(h.latencies, 50)), 'ms'),
      valueLine('stack/half-load/latency-p99', ms2(percentile(h.latencies, 99)), 'ms'),
      valueLine('stack/full-load/latency-p50', ms2(percentile(full.latencies, 50)), 'ms'),
      valueLine('stack/full-load/latency-p99', ms2(percentile(full.latencies, 99)), 'ms'),
      valueLine('stack/full-load/sender-p50', ms2(percentile(full.sender, 50)), 'ms'),
      valueLine('stack/full-load/relay-p50', ms2(percentile(full.relay, 50)), 'ms'),
      valueLine('stack/full-load/recipient-p50', ms2(percentile(full.recipient, 50)), 'ms'),
      valueLine('stack/full-load/send-ok-p50', ms2(percentile(full.ok, 50)), 'ms'),
      valueLine('stack/full-load/client-process-cores', ms2(med(stackRuns, (r) => r.clients.cores)), 'cores'),
      valueLine('stack/full-load/client-loop-busy', ms2(med(stackRuns, (r) => r.clients.loopBusy)), 'fraction'),
      valueLine('stack/full-load/relay-process-cores', ms2(med(stackRuns, (r) => r.server.cores)), 'cores'),
      valueLine('stack/full-load/relay-loop-busy', ms2(med(stackRuns, (r) => r.server.loopBusy)), 'fraction'),
      valueLine('bare/client-process-cores', ms2(med(bareRuns, (r) => r.clients.cores)), 'cores'),
      valueLine('bare/relay-process-cores', ms2(med(bareRuns, (r) => r.server.cores)), 'cores'),
      valueLine('bare/relay-loop-busy', ms2(med(bareRuns, (r) => r.server.loopBusy)), 'fraction'),
      valueLine('stack/full-load/relay-commits-per-message', ms2(med(stackRuns, (r) => r.server.store!.groups / ((r.rate * r.server.wallMs) / 1000))), 'commits/message'),
      valueLine('bare/relay-commits-per-message', ms2(med(bareRuns, (r) => r.server.store!.groups / ((r.rate * r.server.wallMs) / 1000))), 'commits/message'),
      valueLine('echo/client-process-cores', ms2(med(echoRuns, (r) => r.clients.cores)), 'cores'),
      valueLine('echo/server-process-cores', ms2(med(echoRuns, (r) => r.server.cores)), 'cores'),
      valueLine('stack/frame-on-wire', frameBytes, 'bytes'),
      valueLine('relay/queued-offline', C.queued, 'messages'),
      valueLine('relay/queue-rate', Math.round(C.queued / queueSeconds), 'messages/s'),
      valueLine('relay/rss-idle', idle.rss, 'bytes'),
      valueLine('relay/rss-before', before.rss, 'bytes'),
      valueLine('relay/rss-after', after.rss, 'bytes'),
      valueLine('relay/heap-idle', idle.heapUsed, 'bytes'),
      valueLine('relay/heap-before', before.heapUsed, 'bytes'),
      valueLine('relay/heap-after', after.heapUsed, 'bytes'),
      valueLine('relay/database-before', before.dbBytes, 'bytes'),
      valueLine('relay/database-after', after.dbBytes, 'bytes'),
      valueLine('contention/other-processes-cores', ms2(othersBusyCores), 'cores'),
    ];
    const note = contentionNote(figure1Contention, 'during figure 1');
    log(note);
    if (profileText && json) log(profileText);
    if (json) {
      writeJson(lines, started);
      return;
    }

    const out: string[] = [''];
    out.push(`Deadbolt whole stack on loopback vs a raw ws echo, ${BODY_BYTES} B bodies, median of ${C.rounds} interleaved runs (${C.stackMs / 1000} s stack, ${C.echoMs / 1000} s echo)`);
    out.push(`Relay: createRelay + createSqliteRelayStore (WAL, synchronous=FULL) in its own process, ${LIMITS_NOTE}.`);
    out.push('');
    out.push(
      printTable(
        ['figure', 'Deadbolt stack', 'raw ws echo', 'ratio', 'target', 'mark'],
        [
          [`1. sustained, ${C.pairs} pairs (${2 * C.pairs} clients)`, `${formatInt(rate.perSecond)}/s`, `${formatInt(rate.baselinePerSecond)}/s`, `${(rate.ratio * 100).toFixed(1)}%`, `>= ${TARGET_RATIO * 100}%`, rate.ratio >= TARGET_RATIO ? 'PASS' : ceilingLine.ratio < TARGET_RATIO ? 'BELOW (ceiling too)' : 'BELOW'],
          [`   ceiling: ${cores} cores ÷ (echo CPU + raw crypto) per message`, `${formatInt(ceilingLine.perSecond)}/s`, `${formatInt(ceilingLine.baselinePerSecond)}/s`, `${(ceilingLine.ratio * 100).toFixed(1)}%`, '-', '-'],
          [`   diagnostic: bare transports, no client (${frameBytes} B frames)`, `${formatInt(bareLine.perSecond)}/s`, `${formatInt(bareLine.baselinePerSecond)}/s`, `${(bareLine.ratio * 100).toFixed(1)}%`, '-', '-'],
        ],
        ['l', 'r', 'r', 'r', 'l', 'l'],
      ),
    );
    out.push(
      `   runs: stack ${stackRuns.map((r) => formatInt(r.rate)).join(', ')}/s; bare ${bareRuns.map((r) => formatInt(r.rate)).join(', ')}/s; echo ${echoRuns.map((r) => formatInt(r.rate)).join(', ')}/s`,
    );
    out.push(`   echo: ${baselineName}. bare: the same relay and transports carrying opaque frames, no Deadbolt client.`);
    out.push(
      `   ceiling: the fastest any stack could go here: per message the echo's own CPU (${(echoCoreSeconds * 1e6).toFixed(1)} µs, both processes: the frame crosses`,
      `   two WebSocket hops either way) plus the raw primitives of one pairwise message encrypted and decrypted (${(1e6 / steadyPrims.perSecond).toFixed(1)} µs:`,
      `   ${steadyPrims.name}), on ${cores} cores, nothing else (no relay store, no acknowledgements). "BELOW (ceiling too)": the`,
      '   target is out of reach on this machine whatever the relay, the transports and the client do.',
    );
    out.push('');
    out.push(
      printTable(
        ['2. end-to-end latency', 'p50', 'p99', 'messages'],
        [
          [`half load (${formatInt(halfRate)}/s paced; achieved ${formatInt(halfAchieved)}/s)`, `${percentile(h.latencies, 50).toFixed(1)} ms`, `${percentile(h.latencies, 99).toFixed(1)} ms`, formatInt(h.latencies.length)],
          ['full load (figure 1 runs)', `${percentile(full.latencies, 50).toFixed(1)} ms`, `${percentile(full.latencies, 99).toFixed(1)} ms`, formatInt(full.latencies.length)],
        ],
      ),
    );
    out.push('');
    out.push(
      printTable(
        [`3. relay, ${formatInt(C.queued)} queued for ${C.offlineDevices} offline devices`, 'idle', 'before', 'after', 'growth'],
        [
          ['RSS', MB(idle.rss), MB(before.rss), MB(after.rss), MB(after.rss - before.rss)],
          ['heap used (after a full GC)', MB(idle.heapUsed), MB(before.heapUsed), MB(after.heapUsed), MB(after.heapUsed - before.heapUsed)],
          ['SQLite database (file + WAL + shm)', MB(idle.dbBytes), MB(before.dbBytes), MB(after.dbBytes), MB(after.dbBytes - before.dbBytes)],
        ],
      ),
    );
    out.push(`   idle = just started; before = after figures 1-2, every client disconnected; after = ${formatInt(C.queued)} more queued.`);
    out.push(
      `   ${frameBytes} B frames (a 1 KiB message's real frame length; random bytes, the relay never reads them) from ${C.offlineSenders} senders, queued at ${formatInt(C.queued / queueSeconds)}/s in SENDs of ${C.offlineDevices}.`,
    );
    out.push('');
    out.push('Where the time goes (figure 1 runs; medians of the runs). CPU = user + system time of the whole process;');
    out.push('loop busy = event-loop utilisation (the one JavaScript thread running, or blocked in a synchronous call such as a');
    out.push('SQLite commit waiting for fsync). "per message" divides by the messages delivered in the same run.');
    const perMsg = (runs: SideRun[], pick: (r: SideRun) => number): string => med(runs, (r) => (pick(r) * 1000) / r.rate).toFixed(3);
    const processRows = (label: string, runs: SideRun[], server: string): string[][] => [
      [`${label}: client process`, med(runs, (r) => r.clients.cores).toFixed(2), `${(100 * med(runs, (r) => r.clients.loopBusy)).toFixed(0)}%`, perMsg(runs, (r) => r.clients.cores), perMsg(runs, (r) => r.clients.loopBusy)],
      [`${label}: ${server}`, med(runs, (r) => r.server.cores).toFixed(2), `${(100 * med(runs, (r) => r.server.loopBusy)).toFixed(0)}%`, perMsg(runs, (r) => r.server.cores), perMsg(runs, (r) => r.server.loopBusy)],
    ];
    out.push(
      printTable(
        ['run', 'CPU (cores)', 'loop busy', 'CPU ms/message', 'loop-busy ms/message'],
        [
          ...processRows(`Deadbolt clients (${formatInt(stackM!.perSecond)}/s)`, stackRuns, 'relay'),
          ...processRows(`bare transports (${formatInt(bareM!.perSecond)}/s)`, bareRuns, 'relay'),
          ...processRows(`raw ws echo (${formatInt(echoM!.perSecond)}/s)`, echoRuns, 'echo server'),
        ],
      ),
    );
    const storeRow = (label: string, runs: SideRun[]): string[] => {
      const st = (r: SideRun) => r.server.store!;
      const delivered = (r: SideRun): number => (r.rate * r.server.wallMs) / 1000;
      return [
        label,
        med(runs, (r) => st(r).groups / delivered(r)).toFixed(2),
        med(runs, (r) => (st(r).enqueues + st(r).acks) / Math.max(1, st(r).groups)).toFixed(1),
        med(runs, (r) => st(r).fetches / delivered(r)).toFixed(2),
        med(runs, (r) => st(r).fetchMs / delivered(r)).toFixed(3),
        med(runs, (r) => Math.max(0, r.server.loopBusy * r.server.wallMs - r.server.cpuMs) / Math.max(1, st(r).groups)).toFixed(2),
      ];
    };
    out.push('');
    out.push(
      printTable(
        ['relay store (SQLite)', 'commits/message', 'ops/commit', 'fetches/message', 'fetch ms/message', 'loop off-CPU ms/commit'],
        [storeRow('Deadbolt clients', stackRuns), storeRow('bare transports', bareRuns)],
      ),
    );
    out.push('   ops = enqueues (one per SEND) + acks; enqueues and acks of one event-loop turn share a commit (group commit).');
    out.push('   loop off-CPU = event-loop busy time not spent on CPU (≈ waiting in fsync: synchronous=FULL, better-sqlite3 is synchronous).');
    out.push('');
    out.push(
      printTable(
        ['one message at full load, p50 (ms)', 'value'],
        [
          ['sender: send() called -> its SEND leaves (queue, encrypt, store)', percentile(full.sender, 50).toFixed(2)],
          ['relay: SEND leaves -> frame at the recipient (2 hops, commit, push)', percentile(full.relay, 50).toFixed(2)],
          ['recipient: handler (decrypt, store, event)', percentile(full.recipient, 50).toFixed(2)],
          ['end to end', percentile(full.latencies, 50).toFixed(2)],
          ["(the sender's SEND -> the relay's OK)", percentile(full.ok, 50).toFixed(2)],
        ],
      ),
    );
    out.push(`   At full load every client keeps one send in flight, so the end-to-end time is ${2 * C.pairs} sends ÷ the rate (Little's law):`);
    out.push('   waiting in queues, mostly for a busy event loop, not work done for this message.');
    if (profileText) out.push('', profileText);
    writeTable(out, note, started, quick);
  } finally {
    echoClients?.close();
    await fleet?.close();
    await bare?.close();
    await echo?.stop();
    await relay?.stop();
  }
}

try {
  await main();
} catch (e) {
  log(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exitCode = 1;
}
// Sockets of closed clients may linger a moment; nothing is left to wait for.
process.exit();
