/**
 * `pnpm bench:storage`: what each storage adapter costs a client, beside the memory adapter
 * measured in the same run.
 *
 * ```
 * pnpm bench:storage            # the table
 * pnpm bench:storage --json     # one JSON object per line on stdout (progress on stderr)
 * pnpm bench:storage --quick    # tiny figures: a smoke run, the numbers mean nothing
 * ```
 *
 * For each adapter (memory, SQLite, and both again under encryption at rest), two real
 * clients (`createClient`) get a confirmed session through the reference relay on loopback.
 * Then the network is taken out of the measurement: the sender's transport captures its
 * frames instead of sending them, and the captured frames are handed straight to the
 * recipient's frame handler, one at a time, as its transport would.
 *
 * 1. **receive** (the figure the issue names): the recipient's handler per 1 KiB message:
 *    decrypt, persist the ratchet step and the message in history, emit the event; the
 *    handler resolving is when the transport would acknowledge.
 * 2. **send**: the sender's `send` per message: encrypt, persist, hand the frame over.
 * 3. **stored bytes**: the bytes (keys and values, as the backend holds them: sealed under
 *    encryption at rest) of one session record and of 1,000 messages of history, and for
 *    SQLite the database file's growth per 1,000 once its write-ahead log is checkpointed.
 *
 * The SQLite adapter runs as configured for production (WAL, `synchronous = FULL`: every
 * batch waits for the disk). Each figure is the median of 3 runs; adapters take their runs
 * in turn (harness.ts `interleaveRuns`), so the memory baseline saw the same machine.
 *
 * @module
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { createEncryptedStorage } from '@deadbolt/core';
import { createMemoryRelayStore, createRelay, silentRelayLogger, type Relay } from '@deadbolt/relay';
import { LOOSE_TEST_LIMITS } from '@deadbolt/relay/testing';
import type { StorageAdapter } from '@deadbolt/spec';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import { createSqliteStorage } from '@deadbolt/storage-sqlite';
import { createWebSocketTransport, type WebSocketConstructor } from '@deadbolt/transport-websocket';
import { forwardTransport } from './forward-transport.js';
import { formatInt, interleaveRuns, jsonLines, median, printTable, rateLine, valueLine, type PreparedBench, type RateLine, type ValueLine } from './harness.js';
import { AT_REST_KEY, captureOverrides, frameCapture, logicalBytes, openPair, receiveRun, sendRun, take, type CapturedPair } from './storage-pair.js';

const args = new Set(process.argv.slice(2));
const json = args.has('--json');
const quick = args.has('--quick');
const log = (s: string) => process.stderr.write(`${s}\n`);
/** Messages per timed run. */
const RUN = quick ? 20 : 400;
const HISTORY = quick ? 50 : 1000;

const dir = mkdtempSync(join(tmpdir(), 'deadbolt-bench-storage-'));
let files = 0;

interface AdapterKind {
  readonly name: string;
  /** A fresh store, the store under any wrapper (what is really stored), and the SQLite file if there is one. */
  open(): { storage: StorageAdapter; inner: StorageAdapter; file?: string };
}

const sqlite = (): { storage: StorageAdapter; inner: StorageAdapter; file: string } => {
  const file = join(dir, `s${files++}.db`);
  const storage = createSqliteStorage({ path: file });
  return { storage, inner: storage, file };
};
const memory = (): { storage: StorageAdapter; inner: StorageAdapter } => {
  const storage = createMemoryStorage();
  return { storage, inner: storage };
};
const atRest = <T extends { storage: StorageAdapter }>(s: T): T => ({ ...s, storage: createEncryptedStorage(s.storage, { key: AT_REST_KEY }) });
const ADAPTERS: readonly AdapterKind[] = [
  { name: 'memory', open: memory },
  { name: 'sqlite', open: sqlite },
  { name: 'memory + at rest', open: () => atRest(memory()) },
  { name: 'sqlite + at rest', open: () => atRest(sqlite()) },
];

/**
 * The WebSocket transport with two switches (storage-pair.ts `FrameCapture`): `capture`
 * keeps sent frames instead of sending them, and `handler` exposes the frame handler the
 * client registered.
 */
function benchTransport(wsUrl: string) {
  const inner = createWebSocketTransport({ url: wsUrl, WebSocket: WebSocket as unknown as WebSocketConstructor });
  const state = frameCapture();
  return { transport: forwardTransport(inner, captureOverrides(inner, state)), state };
}

interface Pair extends CapturedPair {
  readonly kind: AdapterKind;
  readonly bobFile: string | undefined;
}

async function startPair(relay: Relay, kind: AdapterKind, n: number): Promise<Pair> {
  const a = kind.open();
  const b = kind.open();
  const aliceT = benchTransport(relay.wsUrl);
  const bobT = benchTransport(relay.wsUrl);
  // A confirmed session both ways, over the relay; then the network is taken out.
  const { alice, bob } = await openPair(n, { storage: a.storage, transport: aliceT.transport }, { storage: b.storage, transport: bobT.transport });
  aliceT.state.capture = true;
  return { kind, alice, bob, aliceT, bobT, bobStored: b.inner, bobFile: b.file, seq: 0 };
}

/** The SQLite file's size once its write-ahead log is folded in (checkpointed from a second connection). */
const fileBytes = (file: string | undefined): number => {
  if (file === undefined) return 0;
  const db = new Database(file);
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
  return statSync(file).size;
};

async function main(): Promise<void> {
  const relay = await createRelay({ host: '127.0.0.1', port: 0, store: createMemoryRelayStore(), logger: silentRelayLogger, limits: LOOSE_TEST_LIMITS });
  const pairs: Pair[] = [];
  try {
    for (const [i, kind] of ADAPTERS.entries()) {
      log(`bench:storage: setting up ${kind.name}`);
      pairs.push(await startPair(relay, kind, i));
    }
    // Warm-up: one run of each, untimed.
    for (const pair of pairs) {
      await sendRun(pair, Math.min(RUN, 50));
      await receiveRun(pair, take(pair), 'bench:storage');
    }

    // Timed runs, adapters in turn. Each run: Alice sends RUN messages (timed: send), then
    // Bob receives them (timed: receive).
    const sendTimes = new Map<Pair, number[]>();
    const receiveTimes = new Map<Pair, number[]>();
    const benches: PreparedBench[] = pairs.map((pair) => ({
      name: pair.kind.name,
      async run() {
        const sendMs = await sendRun(pair, RUN);
        const receiveMs = await receiveRun(pair, take(pair), 'bench:storage');
        (sendTimes.get(pair) ?? sendTimes.set(pair, []).get(pair)!).push(sendMs);
        (receiveTimes.get(pair) ?? receiveTimes.set(pair, []).get(pair)!).push(receiveMs);
        return { ops: RUN, elapsed: receiveMs };
      },
    }));
    log(`bench:storage: timing ${RUN} messages per run, 3 runs per adapter`);
    await interleaveRuns(benches, { runs: 3 });

    // Sizes: one session record; then HISTORY more messages and the history's growth.
    const sizes = new Map<Pair, { session: number; historyPer1000: number; filePer1000: number }>();
    for (const pair of pairs) {
      const session = await logicalBytes(pair.bobStored, ['session', pair.alice.address.userId]);
      const before = await logicalBytes(pair.bobStored, ['msg']);
      const fileBefore = fileBytes(pair.bobFile);
      await sendRun(pair, HISTORY);
      await receiveRun(pair, take(pair), 'bench:storage');
      const after = await logicalBytes(pair.bobStored, ['msg']);
      const fileAfter = fileBytes(pair.bobFile);
      sizes.set(pair, { session, historyPer1000: ((after - before) * 1000) / HISTORY, filePer1000: ((fileAfter - fileBefore) * 1000) / HISTORY });
    }

    const rate = (times: number[] | undefined): number => (RUN * 1000) / median(times ?? [Infinity]);
    const base = pairs[0]!;
    const baseReceive = { name: 'memory receive', perSecond: rate(receiveTimes.get(base)) };
    const baseSend = { name: 'memory send', perSecond: rate(sendTimes.get(base)) };
    const lines: (RateLine | ValueLine)[] = [];
    const rows: string[][] = [];
    for (const pair of pairs) {
      const slug = pair.kind.name.replace(/[^a-z]+/g, '-');
      const receive = rate(receiveTimes.get(pair));
      const send = rate(sendTimes.get(pair));
      const size = sizes.get(pair)!;
      lines.push(rateLine(`storage/${slug}/receive-1024B`, receive, baseReceive));
      lines.push(rateLine(`storage/${slug}/send-1024B`, send, baseSend));
      lines.push(valueLine(`storage/${slug}/session-record`, size.session, 'bytes'));
      lines.push(valueLine(`storage/${slug}/history-per-1000-messages`, Math.round(size.historyPer1000), 'bytes'));
      if (pair.bobFile !== undefined) lines.push(valueLine(`storage/${slug}/sqlite-file-per-1000-messages`, Math.round(size.filePer1000), 'bytes'));
      rows.push([
        pair.kind.name,
        formatInt(receive),
        (receive / baseReceive.perSecond).toFixed(2),
        formatInt(send),
        (send / baseSend.perSecond).toFixed(2),
        formatInt(size.session),
        formatInt(size.historyPer1000),
        pair.bobFile === undefined ? '-' : formatInt(size.filePer1000),
      ]);
    }
    if (json) {
      process.stdout.write(jsonLines(lines));
    } else {
      console.log(`Client-level 1 KiB messages, ${RUN} per run, median of 3 (receive = decrypt + persist + event, before the ack)\n`);
      console.log(
        printTable(['adapter', 'receive/s', 'x memory', 'send/s', 'x memory', 'session record B', 'history B / 1,000 msgs', 'SQLite file B / 1,000'], rows),
      );
      console.log('\nSQLite: WAL, synchronous = FULL (every batch waits for the disk). "at rest" = createEncryptedStorage (§7.5).');
      if (quick) console.log('--quick: numbers are meaningless');
    }
  } finally {
    for (const pair of pairs) {
      await pair.alice.close();
      await pair.bob.close();
    }
    await relay.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
