/**
 * `pnpm --filter @deadbolt/bench bench:storage-browser`: the IndexedDB figure of the
 * storage bench, measured in real Chromium, beside the memory adapter in the same page.
 *
 * ```
 * pnpm --filter @deadbolt/bench bench:storage-browser            # the table
 * pnpm --filter @deadbolt/bench bench:storage-browser --json     # one JSON object per line on stdout (progress on stderr)
 * pnpm --filter @deadbolt/bench bench:storage-browser --quick    # tiny figures: a smoke run, the numbers mean nothing
 * ```
 *
 * The method is storage-main.ts's, moved into a browser page (storage-browser-page.ts):
 * for each adapter (memory, IndexedDB, and both again under encryption at rest), two real
 * clients in the page (`createClient` with the browser's WebCrypto provider, the WebSocket
 * transport over the browser's own `WebSocket`) get a confirmed session through the
 * reference relay, which runs here in Node on loopback. Then the network is taken out of
 * the measurement: the sender's transport captures its frames instead of sending them,
 * and the captured frames are handed straight to the recipient's frame handler, one at a
 * time, as its transport would.
 *
 * 1. **receive**: the recipient's handler per 1 KiB message: decrypt, persist the ratchet
 *    step and the message in history (one IndexedDB transaction), emit the event; the
 *    handler resolving is when the transport would acknowledge.
 * 2. **send**: the sender's `send` per message: encrypt, persist, hand the frame over.
 * 3. **stored bytes**: the logical bytes (key segments and values, as the backend holds
 *    them: sealed under encryption at rest) of one session record and of 1,000 messages of
 *    history. For IndexedDB that is what the object store holds; Chromium's files on disk
 *    (LevelDB, compressed, compacted later) are not what is measured.
 *
 * IndexedDB runs as shipped: every batch is one `readwrite` transaction with
 * `durability: 'strict'`, so each resolves only once Chromium has flushed it to disk.
 * Timing is taken inside the page (`performance.now()`); each figure is the median of 3
 * runs, adapters taking their runs in turn (harness.ts `interleaveRuns`), so the memory
 * baseline saw the same machine.
 *
 * @module
 */
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { launchChromium, newPage, serveBundle } from '@deadbolt/browser-harness';
import { createMemoryRelayStore, createRelay, silentRelayLogger } from '@deadbolt/relay';
import { LOOSE_TEST_LIMITS } from '@deadbolt/relay/testing';
import type { Page } from 'playwright-core';
import { formatInt, interleaveRuns, jsonLines, median, printTable, rateLine, valueLine, type PreparedBench, type RateLine, type ValueLine } from './harness.js';
import type { BenchPage } from './storage-browser-page.js';

const args = new Set(process.argv.slice(2));
const json = args.has('--json');
const quick = args.has('--quick');
const log = (s: string) => process.stderr.write(`${s}\n`);
/** Messages per timed run. */
const RUN = quick ? 10 : 200;
const HISTORY = quick ? 20 : 1000;
const WARM_UP = quick ? 5 : 50;

/** Calls `deadboltBench[method](...args)` in the page. */
function call<K extends keyof BenchPage>(page: Page, method: K, ...a: Parameters<BenchPage[K]>): Promise<Awaited<ReturnType<BenchPage[K]>>> {
  return page.evaluate(
    ([m, x]) => {
      const api = (globalThis as unknown as { deadboltBench: Record<string, (...y: unknown[]) => unknown> }).deadboltBench;
      return api[m]!(...x);
    },
    [method as string, a as unknown[]] as const,
  ) as Promise<Awaited<ReturnType<BenchPage[K]>>>;
}

const slugOf = (name: string): string => name.replace(/[^a-z]+/g, '-');

/** `2 get + 1 batch + 1 exclusive`: the storage calls of one message, kinds that occur only. */
function describeCalls(c: Record<string, number>): string {
  const parts = Object.entries(c)
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => `${Number.isInteger(n) ? n : n.toFixed(2)} ${kind}`);
  return parts.length > 0 ? parts.join(' + ') : 'none';
}

async function main(): Promise<void> {
  const load0 = loadavg()[0]!;
  const [browser, server] = await Promise.all([
    launchChromium(),
    serveBundle({ entries: { bench: fileURLToPath(new URL('./storage-browser-page.ts', import.meta.url)) } }),
  ]);
  const relay = await createRelay({
    host: '127.0.0.1',
    port: 0,
    store: createMemoryRelayStore(),
    logger: silentRelayLogger,
    limits: LOOSE_TEST_LIMITS,
    allowedOrigins: [new URL(server.url).origin],
  });
  try {
    const page = await newPage(browser);
    await page.goto(server.url);
    await page.waitForFunction(() => (globalThis as { deadboltBench?: unknown }).deadboltBench !== undefined);
    const adapters = await call(page, 'adapters');
    for (const [i, name] of adapters.entries()) {
      log(`bench:storage-browser: setting up ${name}`);
      await call(page, 'setUp', name, relay.wsUrl, i);
    }
    // Warm-up: one run of each, untimed.
    for (const name of adapters) await call(page, 'run', name, WARM_UP);

    // Timed runs, adapters in turn. Each run: alice sends RUN messages (timed: send), then
    // bob receives them (timed: receive).
    const sendTimes = new Map<string, number[]>();
    const receiveTimes = new Map<string, number[]>();
    const callsPerMessage = new Map<string, string>();
    const benches: PreparedBench[] = adapters.map((name) => ({
      name,
      async run() {
        const r = await call(page, 'run', name, RUN);
        (sendTimes.get(name) ?? sendTimes.set(name, []).get(name)!).push(r.sendMs);
        (receiveTimes.get(name) ?? receiveTimes.set(name, []).get(name)!).push(r.receiveMs);
        callsPerMessage.set(name, `receive ${describeCalls(r.receiveCalls)}; send ${describeCalls(r.sendCalls)}`);
        return { ops: RUN, elapsed: r.receiveMs };
      },
    }));
    // The reference: bare IndexedDB strict transactions, in the same rounds.
    benches.push({ name: 'raw IndexedDB', run: async () => ({ ops: RUN, elapsed: (RUN * 1000) / (await call(page, 'rawIndexedDb', RUN)) }) });
    log(`bench:storage-browser: timing ${RUN} messages per run, 3 runs per adapter`);
    const measured = await interleaveRuns(benches, { runs: 3, onRound: (r) => log(`bench:storage-browser: round ${r} of 3`) });
    const rawPerSecond = measured.at(-1)!.perSecond;

    // Sizes: one session record; then HISTORY more messages and the history's growth.
    const sizes = new Map<string, { session: number; historyPer1000: number }>();
    for (const name of adapters) {
      log(`bench:storage-browser: ${HISTORY} messages of history over ${name}`);
      sizes.set(name, await call(page, 'sizes', name, HISTORY));
    }
    const version = browser.version();
    await call(page, 'close');
    await page.close();

    const rate = (times: number[] | undefined): number => (RUN * 1000) / median(times ?? [Infinity]);
    const base = adapters[0]!;
    const baseReceive = { name: `${base} receive`, perSecond: rate(receiveTimes.get(base)) };
    const baseSend = { name: `${base} send`, perSecond: rate(sendTimes.get(base)) };
    const lines: (RateLine | ValueLine)[] = [];
    const rows: string[][] = [];
    for (const name of adapters) {
      const slug = slugOf(name);
      const receive = rate(receiveTimes.get(name));
      const send = rate(sendTimes.get(name));
      const size = sizes.get(name)!;
      lines.push(rateLine(`storage-browser/${slug}/receive-1024B`, receive, baseReceive));
      lines.push(rateLine(`storage-browser/${slug}/send-1024B`, send, baseSend));
      lines.push(valueLine(`storage-browser/${slug}/session-record`, size.session, 'bytes'));
      lines.push(valueLine(`storage-browser/${slug}/history-per-1000-messages`, Math.round(size.historyPer1000), 'bytes'));
      rows.push([
        name,
        formatInt(receive),
        (receive / baseReceive.perSecond).toFixed(2),
        formatInt(send),
        (send / baseSend.perSecond).toFixed(2),
        formatInt(size.session),
        formatInt(size.historyPer1000),
      ]);
    }
    if (json) {
      process.stdout.write(jsonLines(lines));
    } else {
      console.log(`Chromium ${version}, client-level 1 KiB messages in one page, ${RUN} per run, median of 3 (receive = decrypt + persist + event, before the ack)\n`);
      console.log(printTable(['adapter', 'receive/s', 'x memory', 'send/s', 'x memory', 'session record B', 'history B / 1,000 msgs'], rows));
      console.log(`\nIndexedDB: one readwrite transaction per batch, durability 'strict'. "at rest" = createEncryptedStorage (§7.5).`);
      const perAdapter = new Set(callsPerMessage.values());
      if (perAdapter.size === 1) console.log(`Storage calls per message, every adapter: ${[...perAdapter][0]}.`);
      else for (const [name, text] of callsPerMessage) console.log(`Storage calls per message, ${name}: ${text}.`);
      console.log(`Reference: bare IndexedDB, one 1.7 KiB put per strict transaction, one after another: ${formatInt(rawPerSecond)}/s.`);
      console.log(`Load average ${load0.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after (2 cores).`);
      if (quick) console.log('--quick: numbers are meaningless');
    }
  } finally {
    await relay.close();
    await server.close();
    await browser.close();
  }
}

await main();
