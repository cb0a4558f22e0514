/**
 * `pnpm bench`: Deadbolt against libsignal-client, 1 KiB plaintexts, both measured in the
 * same run with the node:crypto provider.
 *
 * ```
 * pnpm bench                 # the table (about a minute on 2 cores)
 * pnpm bench --json          # one JSON object per line on stdout (progress on stderr)
 * pnpm bench --quick         # tiny iteration counts (a smoke run; the numbers mean nothing)
 * ```
 *
 * Figures:
 * 1. protocol level, state in memory: (a) steady one-direction messages, (b) ping-pong
 *    (a DH ratchet step on every message), (c) session set-up, both sides;
 * 2. through the session API, state persisted after every message: steady and ping-pong;
 * 3. sizes: the stored session record, and a steady message's overhead.
 *
 * Targets are reported (PASS / BELOW); the exit code is 0 either way.
 *
 * Each library runs in its own child process (isolation.ts explains why); this process
 * only drives them: it warms both up, then takes 3 rounds of timed runs, one benchmark at
 * a time, alternating Deadbolt and libsignal figure by figure, and reports the medians.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';

import { printTable, rateLine, valueLine, type Measurement, type PreparedBench, type RateLine, type ValueLine } from './harness.js';
import { IsolatedSuite } from './isolation.js';
import { LIBSIGNAL_VERSION, PLAINTEXT_LENGTH, sizeSamples } from './config.js';
import {
  PRIMITIVES,
  PRIMITIVE_LABELS,
  pingPongBaseline,
  primitiveBenchName,
  setupBaseline,
  steadyBaseline,
  type PrimitiveBaseline,
  type PrimitiveRates,
} from './primitives.js';
import { contentionNote, fmtRate, log, parseArgs, writeJson, writeTable } from './script.js';
import { infoReader, prepareSuite, timedRounds } from './suite-rounds.js';

const HELP = `Usage: pnpm bench [--json] [--quick]

  --json    one JSON object per line on stdout:
              {"name","perSecond","baseline","baselinePerSecond","ratio"[,"primitiveBaseline","primitivePerSecond","primitiveRatio"]}
              {"name","value","unit"} for sizes
            ratio = perSecond / baselinePerSecond; primitiveRatio = perSecond / primitivePerSecond
  --quick   tiny iteration counts (smoke run; numbers are meaningless)
`;

/** A size over several samples. */
interface SizeStat {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

interface Figure {
  readonly id: string;
  readonly label: string;
  readonly deadbolt: Measurement;
  readonly libsignal: Measurement;
  readonly baselineName: string;
  readonly primitive?: PrimitiveBaseline;
  /** Minimum Deadbolt/libsignal ratio. */
  readonly targetRatio?: number;
  /** Maximum cost as a multiple of the primitive baseline. */
  readonly targetPrimitiveCost?: number;
}

/** The figures, in the order they are measured and printed. */
const FIGURES = ['protocol/steady', 'protocol/ping-pong', 'protocol/setup', 'session-api/steady', 'session-api/ping-pong'] as const;

async function main(): Promise<void> {
  const { json, quick } = parseArgs(process.argv.slice(2), HELP);
  const started = performance.now();
  log(`Deadbolt (node:crypto provider) vs @signalapp/libsignal-client ${LIBSIGNAL_VERSION}, ${PLAINTEXT_LENGTH} B plaintexts, Node ${process.version}`);

  // --- one child process per library; warm-ups one process at a time ---------------------------------
  const workerArgs = quick ? ['--quick'] : [];
  const deadbolt = IsolatedSuite.start('deadbolt', workerArgs);
  const libsignal = IsolatedSuite.start('libsignal', workerArgs);
  try {
    log('warming up Deadbolt (its own process)...');
    const dBench = await prepareSuite(deadbolt, 'bench');
    log('warming up libsignal (its own process)...');
    const lBench = await prepareSuite(libsignal, 'bench');

    // --- 3 rounds: the primitives, then each figure's Deadbolt and libsignal runs ----------------------
    const order: PreparedBench[] = [
      ...PRIMITIVES.map((p) => dBench(primitiveBenchName(p))),
      ...FIGURES.flatMap((f) => [dBench(`deadbolt ${f}`), lBench(`libsignal ${f}`)]),
    ];
    const { get, contention } = await timedRounds(order, [deadbolt, libsignal], 'bench', log);
    const note = contentionNote(contention, 'while measuring');
    log(note);

    const prims = Object.fromEntries(PRIMITIVES.map((p) => [p, get(primitiveBenchName(p))])) as PrimitiveRates;

    const memBaseline = `libsignal-client ${LIBSIGNAL_VERSION}, SessionRecord objects held in memory`;
    const serBaseline = `libsignal-client ${LIBSIGNAL_VERSION}, SessionRecord serialized on every save, deserialized on every load`;
    const figure = (id: (typeof FIGURES)[number], label: string, rest: Omit<Figure, 'id' | 'label' | 'deadbolt' | 'libsignal'>): Figure => {
      const f = { id, label, deadbolt: get(`deadbolt ${id}`), libsignal: get(`libsignal ${id}`), ...rest };
      log(`  ${label}: Deadbolt ${fmtRate(f.deadbolt.perSecond)}/s, libsignal ${fmtRate(f.libsignal.perSecond)}/s`);
      return f;
    };
    const figures: Figure[] = [
      figure('protocol/steady', '1a protocol, steady (enc+dec)', {
        baselineName: memBaseline,
        primitive: steadyBaseline(prims),
        targetRatio: 3,
        targetPrimitiveCost: 1.5,
      }),
      figure('protocol/ping-pong', '1b protocol, ping-pong (DH step)', { baselineName: memBaseline, primitive: pingPongBaseline(prims), targetRatio: 1.5 }),
      figure('protocol/setup', '1c protocol, session set-up (both sides)', {
        baselineName: `libsignal-client ${LIBSIGNAL_VERSION}: processPreKeyBundle + signalEncrypt + signalDecryptPreKey (Kyber), in-memory stores`,
        primitive: setupBaseline(prims),
        targetRatio: 1,
      }),
      figure('session-api/steady', '2a session API, steady', { baselineName: serBaseline, primitive: steadyBaseline(prims), targetRatio: 2 }),
      figure('session-api/ping-pong', '2b session API, ping-pong', { baselineName: serBaseline, primitive: pingPongBaseline(prims), targetRatio: 2 }),
    ];

    // --- 3. sizes ---------------------------------------------------------------------------------------
    const dInfo = infoReader(await deadbolt.info(), 'bench');
    const lInfo = infoReader(await libsignal.info(), 'bench');
    const padded = dInfo('paddedLength');
    const sizeSampleCount = sizeSamples(quick);
    const lPadded = (Math.floor(PLAINTEXT_LENGTH / 16) + 1) * 16; // AES-256-CBC with PKCS#7 padding
    /** A size of both libraries: median, min and max over the samples, minus `subtract`. */
    const size = (key: string, subtract: { deadbolt: number; libsignal: number } = { deadbolt: 0, libsignal: 0 }): Record<'deadbolt' | 'libsignal', SizeStat> => ({
      deadbolt: { median: dInfo(key) - subtract.deadbolt, min: dInfo(`${key}Min`) - subtract.deadbolt, max: dInfo(`${key}Max`) - subtract.deadbolt },
      libsignal: { median: lInfo(key) - subtract.libsignal, min: lInfo(`${key}Min`) - subtract.libsignal, max: lInfo(`${key}Max`) - subtract.libsignal },
    });
    const sizeRows: { id: string; label: string; stat: Record<'deadbolt' | 'libsignal', SizeStat> }[] = [
      { id: 'session-record/initiator', label: 'session record, initiator', stat: size('recordInitiator') },
      { id: 'session-record/responder', label: 'session record, responder', stat: size('recordResponder') },
      { id: 'message-wire', label: 'steady message on the wire', stat: size('steadyWireLength') },
      { id: 'message-overhead', label: 'steady message overhead', stat: size('steadyWireLength', { deadbolt: padded, libsignal: lPadded }) },
    ];

    // --- output -------------------------------------------------------------------------------------
    const lines: (RateLine | ValueLine)[] = figures.map((f) =>
      rateLine(f.id, f.deadbolt.perSecond, { name: f.baselineName, perSecond: f.libsignal.perSecond }, f.primitive),
    );
    for (const row of sizeRows) {
      for (const lib of ['deadbolt', 'libsignal'] as const) {
        const st = row.stat[lib];
        lines.push(valueLine(`size/${row.id}/${lib}`, st.median, 'bytes'));
        if (st.min !== st.max) lines.push(valueLine(`size/${row.id}/${lib}/min`, st.min, 'bytes'), valueLine(`size/${row.id}/${lib}/max`, st.max, 'bytes'));
      }
    }

    if (json) {
      writeJson(lines, started);
      return;
    }

    const rows = figures.map((f) => {
      const ratio = f.deadbolt.perSecond / f.libsignal.perSecond;
      const cost = f.primitive ? f.primitive.perSecond / f.deadbolt.perSecond : undefined;
      const targets: string[] = [];
      const marks: string[] = [];
      // The best ratio any implementation over these primitives could reach here: its raw
      // primitives alone, with no other cost, against libsignal (both measured in this run).
      const ceiling = f.primitive ? f.primitive.perSecond / f.libsignal.perSecond : undefined;
      if (f.targetRatio !== undefined) {
        targets.push(`>=${f.targetRatio}x lib`);
        marks.push(ratio >= f.targetRatio ? 'PASS' : ceiling !== undefined && ceiling < f.targetRatio ? 'BELOW (ceiling too)' : 'BELOW');
      }
      if (f.targetPrimitiveCost !== undefined && cost !== undefined) {
        targets.push(`<=${f.targetPrimitiveCost}x prim`);
        marks.push(cost <= f.targetPrimitiveCost ? 'PASS' : 'BELOW');
      }
      return [
        f.label,
        fmtRate(f.deadbolt.perSecond),
        fmtRate(f.libsignal.perSecond),
        `${ratio.toFixed(2)}x`,
        targets.join(', ') || '-',
        marks.join(', ') || '-',
        f.primitive ? fmtRate(f.primitive.perSecond) : '-',
        cost !== undefined ? `${cost.toFixed(2)}x cost` : '-',
        ceiling !== undefined ? `${ceiling.toFixed(2)}x` : '-',
      ];
    });
    const out: string[] = [];
    out.push('');
    out.push(`Deadbolt vs libsignal-client ${LIBSIGNAL_VERSION} — ${PLAINTEXT_LENGTH} B plaintexts, median of 3 interleaved runs, ops/s (one op = one message encrypted and decrypted, or one set-up)`);
    out.push('');
    out.push(
      printTable(
        ['figure', 'Deadbolt/s', 'libsignal/s', 'ratio', 'target', 'mark', 'primitives/s', 'ratio to primitives', 'ceiling'],
        rows,
        ['l', 'r', 'r', 'r', 'l', 'l', 'r', 'r', 'r'],
      ),
    );
    out.push('');
    out.push('ratio = Deadbolt/s ÷ libsignal/s. ratio to primitives = Deadbolt cost per op ÷ the summed cost of its raw primitives');
    out.push('(the same node:crypto provider, this run; 1.00x = nothing but primitives). ceiling = primitives/s ÷ libsignal/s: the ratio');
    out.push('an implementation doing nothing but those primitives would reach; "BELOW (ceiling too)": the target is out of reach');
    out.push('with these primitives on this machine, whatever the code around them does. Primitive baselines:');
    for (const f of figures) if (f.primitive) out.push(`  ${f.id}: ${f.primitive.name}`);
    out.push('');
    const cell = (st: SizeStat): string => (st.min === st.max ? String(st.median) : `${st.median} (${st.min}-${st.max})`);
    out.push(
      printTable(
        ['size (bytes): median (min-max)', 'Deadbolt', 'libsignal', 'ratio'],
        sizeRows.map((r) => [r.label, cell(r.stat.deadbolt), cell(r.stat.libsignal), (r.stat.deadbolt.median / r.stat.libsignal.median).toFixed(2)]),
      ),
    );
    out.push('');
    out.push('Session record: Deadbolt = the stored value under ["session", user, device] in the memory storage (envelope and checksum');
    out.push(`included); libsignal = SessionRecord.serialize().length; sampled after each of ${sizeSampleCount} session-API ping-pong`);
    out.push('messages (after the timed runs). libsignal\'s record holds its SPQR (sparse post-quantum ratchet) state and some of its');
    out.push('messages an SPQR chunk, so its sizes move with that ratchet\'s phase.');
    out.push(`Overhead: Deadbolt = wire length − ${padded} (1 KiB padded to its bucket); libsignal = serialized SignalMessage length −`);
    out.push(`${lPadded} (1 KiB under AES-256-CBC with PKCS#7 padding; libsignal adds no padding of its own).`);
    out.push('');
    out.push(
      printTable(
        ['primitive (node:crypto provider)', 'ops/s'],
        PRIMITIVES.map((p) => [PRIMITIVE_LABELS[p], fmtRate(prims[p].perSecond)]),
      ),
    );
    writeTable(out, note, started, quick);
  } finally {
    deadbolt.close();
    libsignal.close();
  }
}

await main();
