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
 * @module
 */
import { performance } from 'node:perf_hooks';
import { createNodeCryptoProvider, paddedLength } from '@deadbolt/core';
import {
  formatInt,
  jsonLines,
  measure,
  measurePool,
  printTable,
  rateLine,
  valueLine,
  type Measurement,
  type RateLine,
  type ValueLine,
} from './harness.js';
import { ProtocolPair, Responder, SessionApiPair, makeDevice, setupOnce } from './deadbolt.js';
import { LIBSIGNAL_VERSION, LibsignalPair, LibsignalSetups, ObjectSessionStore, SerializedSessionStore } from './libsignal.js';
import { measurePrimitives, pingPongBaseline, setupBaseline, steadyBaseline, type PrimitiveBaseline } from './primitives.js';

const PLAINTEXT_LENGTH = 1024;

interface Config {
  /** Minimum duration of each of the 3 timed runs of a figure. */
  readonly figureMs: number;
  /** The same for each primitive. */
  readonly primitiveMs: number;
  /** Set-ups: warm-up inputs, and bounds on the inputs generated per run. */
  readonly setupWarmup: number;
  readonly setupMinPerRun: number;
  readonly setupMaxPerRun: number;
}

const FULL: Config = { figureMs: 1000, primitiveMs: 250, setupWarmup: 40, setupMinPerRun: 50, setupMaxPerRun: 3000 };
const QUICK: Config = { figureMs: 5, primitiveMs: 2, setupWarmup: 2, setupMinPerRun: 2, setupMaxPerRun: 3 };

const HELP = `Usage: pnpm bench [--json] [--quick]

  --json    one JSON object per line on stdout:
              {"name","perSecond","baseline","baselinePerSecond","ratio"[,"primitiveBaseline","primitivePerSecond","primitiveRatio"]}
              {"name","value","unit"} for sizes
            ratio = perSecond / baselinePerSecond; primitiveRatio = perSecond / primitivePerSecond
  --quick   tiny iteration counts (smoke run; numbers are meaningless)
`;

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

function parseArgs(argv: readonly string[]): { json: boolean; quick: boolean } {
  let json = false;
  let quick = false;
  for (const a of argv) {
    if (a === '--json') json = true;
    else if (a === '--quick') quick = true;
    else if (a === '--help' || a === '-h') {
      process.stdout.write(HELP);
      process.exit(0);
    } else if (a !== '--') {
      process.stderr.write(`unknown argument ${a}\n${HELP}`);
      process.exit(2);
    }
  }
  return { json, quick };
}

function fmtRate(x: number): string {
  return x >= 100 ? formatInt(x) : x.toFixed(1);
}

function checkLength(n: number): void {
  if (n !== PLAINTEXT_LENGTH) throw new Error(`bench: decrypted ${n} bytes, expected ${PLAINTEXT_LENGTH}`);
}

async function main(): Promise<void> {
  const { json, quick } = parseArgs(process.argv.slice(2));
  const cfg = quick ? QUICK : FULL;
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  const started = performance.now();

  const crypto = createNodeCryptoProvider();
  const plaintext = new Uint8Array(crypto.randomBytes(PLAINTEXT_LENGTH)); // Uint8Array<ArrayBuffer>, for libsignal's types
  const padded = paddedLength(PLAINTEXT_LENGTH);

  // --- establish the conversations, and check that each decrypts ---------------------------------
  log(`Deadbolt (node:crypto provider) vs @signalapp/libsignal-client ${LIBSIGNAL_VERSION}, ${PLAINTEXT_LENGTH} B plaintexts, Node ${process.version}`);
  const dProto = await ProtocolPair.establish(crypto, plaintext);
  const lProto = await LibsignalPair.establish(() => new ObjectSessionStore(), plaintext);
  const dApi = await SessionApiPair.establish(crypto, plaintext);
  const lApi = await LibsignalPair.establish(() => new SerializedSessionStore(), plaintext);
  for (const p of [dProto, lProto, dApi, lApi]) {
    checkLength(await p.steady(plaintext));
    checkLength(await p.pingPong(plaintext));
    checkLength(await p.pingPong(plaintext));
  }

  // --- primitives ---------------------------------------------------------------------------------
  log('measuring primitives (node:crypto provider; ML-KEM from @noble/post-quantum)...');
  const prims = await measurePrimitives(crypto, { paddedLength: padded, adLength: dProto.adPrefixLength() + 42 }, cfg.primitiveMs, log);

  const figures: Figure[] = [];
  const pair = async (id: string, label: string, d: () => Promise<number>, l: () => Promise<number>, rest: Omit<Figure, 'id' | 'label' | 'deadbolt' | 'libsignal'>): Promise<void> => {
    log(`measuring ${label}...`);
    const deadbolt = await measure(`deadbolt ${id}`, async () => checkLength(await d()), { minMs: cfg.figureMs });
    const libsignal = await measure(`libsignal ${id}`, async () => checkLength(await l()), { minMs: cfg.figureMs });
    log(`  Deadbolt ${fmtRate(deadbolt.perSecond)}/s, libsignal ${fmtRate(libsignal.perSecond)}/s`);
    figures.push({ id, label, deadbolt, libsignal, ...rest });
  };

  // --- 1. protocol level --------------------------------------------------------------------------
  const memBaseline = `libsignal-client ${LIBSIGNAL_VERSION}, SessionRecord objects held in memory`;
  await pair('protocol/steady', '1a protocol, steady (enc+dec)', () => dProto.steady(plaintext), () => lProto.steady(plaintext), {
    baselineName: memBaseline,
    primitive: steadyBaseline(prims),
    targetRatio: 3,
    targetPrimitiveCost: 1.5,
  });
  await pair('protocol/ping-pong', '1b protocol, ping-pong (DH step)', () => dProto.pingPong(plaintext), () => lProto.pingPong(plaintext), {
    baselineName: memBaseline,
    primitive: pingPongBaseline(prims),
    targetRatio: 1.5,
  });

  log('measuring 1c protocol, session set-up (bundles pre-generated before each run)...');
  const initiator = await makeDevice(crypto, 'alice', 'phone');
  const responder = await Responder.create(crypto, await makeDevice(crypto, 'bob', 'laptop'));
  const poolOptions = { minMs: cfg.figureMs, warmupOps: cfg.setupWarmup, minOpsPerRun: cfg.setupMinPerRun, maxOpsPerRun: cfg.setupMaxPerRun };
  const dSetup = await measurePool(
    'deadbolt protocol/setup',
    (n) => responder.bundles(n),
    async (bundle) => checkLength((await setupOnce(crypto, initiator, responder, bundle, plaintext)).plaintext.length),
    poolOptions,
  );
  const setups = new LibsignalSetups();
  const lSetup = await measurePool(
    'libsignal protocol/setup',
    async (n) => setups.inputs(n),
    async (input) => checkLength(await setups.run(input, plaintext)),
    poolOptions,
  );
  log(`  Deadbolt ${fmtRate(dSetup.perSecond)}/s, libsignal ${fmtRate(lSetup.perSecond)}/s`);
  figures.push({
    id: 'protocol/setup',
    label: '1c protocol, session set-up (both sides)',
    deadbolt: dSetup,
    libsignal: lSetup,
    baselineName: `libsignal-client ${LIBSIGNAL_VERSION}: processPreKeyBundle + signalEncrypt + signalDecryptPreKey (Kyber), in-memory stores`,
    primitive: setupBaseline(prims),
    targetRatio: 1,
  });

  // --- 2. session API -----------------------------------------------------------------------------
  const serBaseline = `libsignal-client ${LIBSIGNAL_VERSION}, SessionRecord serialized on every save, deserialized on every load`;
  await pair('session-api/steady', '2a session API, steady', () => dApi.steady(plaintext), () => lApi.steady(plaintext), {
    baselineName: serBaseline,
    primitive: steadyBaseline(prims),
    targetRatio: 2,
  });
  await pair('session-api/ping-pong', '2b session API, ping-pong', () => dApi.pingPong(plaintext), () => lApi.pingPong(plaintext), {
    baselineName: serBaseline,
    primitive: pingPongBaseline(prims),
    targetRatio: 2,
  });

  // --- 3. sizes -----------------------------------------------------------------------------------
  const dRecord = await dApi.recordSizes();
  const lRecord = await lApi.recordSizes();
  const dWire = await dProto.steadyWireLength(plaintext);
  const lMessage = await lProto.steadyMessage(plaintext);
  const lPadded = (Math.floor(PLAINTEXT_LENGTH / 16) + 1) * 16; // AES-256-CBC with PKCS#7 padding
  const sizes = {
    recordInitiator: { deadbolt: dRecord.initiator, libsignal: lRecord.initiator },
    recordResponder: { deadbolt: dRecord.responder, libsignal: lRecord.responder },
    overhead: { deadbolt: dWire - padded, libsignal: lMessage.length - lPadded },
  };

  // --- output -------------------------------------------------------------------------------------
  const lines: (RateLine | ValueLine)[] = figures.map((f) =>
    rateLine(f.id, f.deadbolt.perSecond, { name: f.baselineName, perSecond: f.libsignal.perSecond }, f.primitive),
  );
  lines.push(
    valueLine('size/session-record/initiator/deadbolt', sizes.recordInitiator.deadbolt, 'bytes'),
    valueLine('size/session-record/initiator/libsignal', sizes.recordInitiator.libsignal, 'bytes'),
    valueLine('size/session-record/responder/deadbolt', sizes.recordResponder.deadbolt, 'bytes'),
    valueLine('size/session-record/responder/libsignal', sizes.recordResponder.libsignal, 'bytes'),
    valueLine('size/message-overhead/deadbolt', sizes.overhead.deadbolt, 'bytes'),
    valueLine('size/message-overhead/libsignal', sizes.overhead.libsignal, 'bytes'),
    valueLine('size/message-wire/deadbolt', dWire, 'bytes'),
    valueLine('size/message-wire/libsignal', lMessage.length, 'bytes'),
  );

  if (json) {
    process.stdout.write(jsonLines(lines));
    log(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return;
  }

  const rows = figures.map((f) => {
    const ratio = f.deadbolt.perSecond / f.libsignal.perSecond;
    const cost = f.primitive ? f.primitive.perSecond / f.deadbolt.perSecond : undefined;
    const targets: string[] = [];
    const marks: string[] = [];
    if (f.targetRatio !== undefined) {
      targets.push(`>=${f.targetRatio}x lib`);
      marks.push(ratio >= f.targetRatio ? 'PASS' : 'BELOW');
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
    ];
  });
  const out: string[] = [];
  out.push('');
  out.push(`Deadbolt vs libsignal-client ${LIBSIGNAL_VERSION} — ${PLAINTEXT_LENGTH} B plaintexts, median of 3 runs, ops/s (one op = one message encrypted and decrypted, or one set-up)`);
  out.push('');
  out.push(
    printTable(
      ['figure', 'Deadbolt/s', 'libsignal/s', 'ratio', 'target', 'mark', 'primitives/s', 'ratio to primitives'],
      rows,
      ['l', 'r', 'r', 'r', 'l', 'l', 'r', 'r'],
    ),
  );
  out.push('');
  out.push('ratio = Deadbolt/s ÷ libsignal/s. ratio to primitives = Deadbolt cost per op ÷ the summed cost of its raw primitives');
  out.push('(the same node:crypto provider, this run; 1.00x = nothing but primitives). Primitive baselines:');
  for (const f of figures) if (f.primitive) out.push(`  ${f.id}: ${f.primitive.name}`);
  out.push('');
  out.push(
    printTable(
      ['size (bytes)', 'Deadbolt', 'libsignal', 'ratio'],
      [
        ['session record, initiator', String(sizes.recordInitiator.deadbolt), String(sizes.recordInitiator.libsignal), (sizes.recordInitiator.deadbolt / sizes.recordInitiator.libsignal).toFixed(2)],
        ['session record, responder', String(sizes.recordResponder.deadbolt), String(sizes.recordResponder.libsignal), (sizes.recordResponder.deadbolt / sizes.recordResponder.libsignal).toFixed(2)],
        ['steady message on the wire', String(dWire), String(lMessage.length), (dWire / lMessage.length).toFixed(2)],
        ['steady message overhead', String(sizes.overhead.deadbolt), String(sizes.overhead.libsignal), (sizes.overhead.deadbolt / sizes.overhead.libsignal).toFixed(2)],
      ],
    ),
  );
  out.push('');
  out.push('Session record: Deadbolt = the stored value under ["session", user, device] in the memory storage (envelope and checksum');
  out.push('included); libsignal = SessionRecord.serialize().length; both taken after the session-API ping-pong run.');
  out.push(`Overhead: Deadbolt = wire length − ${padded} (1 KiB padded to its bucket); libsignal = serialized SignalMessage length −`);
  out.push(`${lPadded} (1 KiB under AES-256-CBC with PKCS#7 padding; libsignal adds no padding of its own).`);
  out.push('');
  out.push(
    printTable(
      ['primitive (node:crypto provider)', 'ops/s'],
      Object.values(prims).map((m: Measurement) => [m.name, fmtRate(m.perSecond)]),
    ),
  );
  out.push('');
  out.push(`total ${((performance.now() - started) / 1000).toFixed(1)} s${quick ? ' (--quick: numbers are meaningless)' : ''}`);
  process.stdout.write(out.join('\n') + '\n');
}

await main();
