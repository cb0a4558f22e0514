/**
 * `pnpm bench:group`: the group protocol (docs/protocol.md §12), 1 KiB plaintexts,
 * Deadbolt (node:crypto provider) against libsignal-client's Sender Keys in the same run.
 *
 * ```
 * pnpm bench:group            # the tables (about a minute on 2 cores)
 * pnpm bench:group --json     # one JSON object per line on stdout (progress on stderr)
 * pnpm bench:group --quick    # tiny iteration counts (a smoke run; the numbers mean nothing)
 * pnpm bench:group --cpu-time # time each run by its process's CPU time (robust on a busy machine)
 * ```
 *
 * Figures:
 * 1. the sender's cost of one group message at 2, 100 and 1,000 members, steady state
 *    (`engine.send` over memory storage), and the 1,000 / 2 cost ratio (target <= 1.2);
 * 2. one group message encrypted and decrypted, one sender and one receiver, steady state:
 *    Deadbolt (engine and manager layers) against libsignal's `groupEncrypt` /
 *    `groupDecrypt` with a serialising and an object store (target >= 1.2x), beside the
 *    raw primitives of the same work (same provider, same run);
 * 3. removing one member of a 100-member group: the pairwise messages and bytes that
 *    follow (the signed change, then every remaining sender's new key), counted at the
 *    engine's `sendPairwise`.
 *
 * Targets are reported (PASS / BELOW); the exit code is 0 either way. Each library runs in
 * its own child process (group-isolation.ts); this process warms both up, then takes 3
 * rounds of timed runs, one benchmark at a time, and reports the medians.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';

import { LIBSIGNAL_VERSION, PLAINTEXT_LENGTH } from './config.js';
import { REMOVAL_MEMBERS, ROUND_TRIP_TARGET, SEND_SCALING_TARGET, SEND_SIZES } from './group-config.js';
import { startGroupSuite } from './group-isolation.js';
import {
  GROUP_PRIMITIVES,
  groupPrimitiveBenchName,
  groupPrimitiveLabels,
  roundTripBaseline,
  sendBaseline,
  type GroupPrimitiveRates,
} from './group-primitives.js';
import { formatInt, printTable, rateLine, valueLine, type Measurement, type PreparedBench, type RateLine, type ValueLine } from './harness.js';
import { contentionNote, fmtRate, log, parseArgs, writeJson, writeTable } from './script.js';
import { infoReader, prepareSuite, timedRounds } from './suite-rounds.js';

const HELP = `Usage: pnpm bench:group [--json] [--quick] [--cpu-time]

  --json    one JSON object per line on stdout:
              {"name","perSecond","baseline","baselinePerSecond","ratio","primitiveBaseline","primitivePerSecond","primitiveRatio"}
              {"name","value","unit"} for times, cost ratios, sizes and message counts
            ratio = perSecond / baselinePerSecond; primitiveRatio = perSecond / primitivePerSecond
  --quick   tiny iteration counts (smoke run; numbers are meaningless)
  --cpu-time  time each run by the CPU time its library's process used (user + system)
            instead of the wall clock: what other processes take from the machine is then
            not counted (their cache and memory traffic still is)
`;

function fmtUs(perSecond: number): string {
  return (1e6 / perSecond).toFixed(1);
}

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** Figure 2's comparisons: each Deadbolt layer against each libsignal store. */
const ROUND_TRIPS = [
  { id: 'group/enc-dec/engine', deadbolt: 'engine', libsignal: 'serialized' },
  { id: 'group/enc-dec/engine/vs-libsignal-objects', deadbolt: 'engine', libsignal: 'objects' },
  { id: 'group/enc-dec/manager', deadbolt: 'manager', libsignal: 'serialized' },
  { id: 'group/enc-dec/manager/vs-libsignal-objects', deadbolt: 'manager', libsignal: 'objects' },
] as const;

const DEADBOLT_LAYER = {
  engine: 'engine.send + engine.receiveGroupMessage',
  manager: 'groups.encrypt + groups.decrypt',
} as const;

const LIBSIGNAL_STORE = {
  serialized: `libsignal-client ${LIBSIGNAL_VERSION}: groupEncrypt + serialize + groupDecrypt, SenderKeyRecord serialized on every save, deserialized on every load`,
  objects: `libsignal-client ${LIBSIGNAL_VERSION}: groupEncrypt + serialize + groupDecrypt, SenderKeyRecord objects held in memory`,
} as const;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const { json, quick } = parseArgs(argv, HELP, (a) => a === '--cpu-time');
  const cpuTime = argv.includes('--cpu-time');
  const clock = cpuTime ? 'CPU time of each library\'s process' : 'wall clock';
  const started = performance.now();
  log(`Deadbolt groups (node:crypto provider) vs @signalapp/libsignal-client ${LIBSIGNAL_VERSION} Sender Keys, ${PLAINTEXT_LENGTH} B plaintexts, Node ${process.version}; clock: ${clock}`);

  const workerArgs = [...(quick ? ['--quick'] : []), ...(cpuTime ? ['--cpu-time'] : [])];
  const deadbolt = startGroupSuite('group-deadbolt', workerArgs);
  const libsignal = startGroupSuite('group-libsignal', workerArgs);
  try {
    log(`setting up Deadbolt groups of ${SEND_SIZES.join(', ')} members and warming up (its own process)...`);
    const dBench = await prepareSuite(deadbolt, 'bench:group');
    log('warming up libsignal (its own process)...');
    const lBench = await prepareSuite(libsignal, 'bench:group');

    // --- 3 rounds: the primitives, the sends, then the round trips alternating libraries --------------
    const order: PreparedBench[] = [
      ...GROUP_PRIMITIVES.map((p) => dBench(groupPrimitiveBenchName(p))),
      ...SEND_SIZES.map((n) => dBench(`deadbolt group/send/${n}`)),
      dBench('deadbolt group/enc-dec/engine'),
      lBench('libsignal group/enc-dec/serialized'),
      dBench('deadbolt group/enc-dec/manager'),
      lBench('libsignal group/enc-dec/objects'),
    ];
    const { get, contention } = await timedRounds(order, [deadbolt, libsignal], 'bench:group', log);
    const note = contentionNote(
      contention,
      'while measuring',
      cpuTime
        ? ' — the machine was contended; runs were timed by CPU time, which leaves out descheduled time but not the slowdown of shared caches'
        : ' — WARNING: the machine was contended; rerun on a quiet machine (or with --cpu-time)',
    );
    log(note);

    const prims = Object.fromEntries(GROUP_PRIMITIVES.map((p) => [p, get(groupPrimitiveBenchName(p))])) as GroupPrimitiveRates;
    const sendPrim = sendBaseline(prims);
    const rtPrim = roundTripBaseline(prims);

    log(`measuring the removal of one member of ${REMOVAL_MEMBERS} (every device real; counts, no timing)...`);
    const dInfo = infoReader(await deadbolt.info(), 'bench:group');
    const lInfo = infoReader(await libsignal.info(), 'bench:group');
    const shapes = { paddedLength: dInfo('paddedLength'), adLength: dInfo('adLength'), signedLength: dInfo('signedLength') };

    // --- 1. sender cost by group size ------------------------------------------------------------------
    const sends = SEND_SIZES.map((n) => ({ n, m: get(`deadbolt group/send/${n}`) }));
    const base = sends[0]!;
    const largest = sends[sends.length - 1]!;
    const scaling = base.m.perSecond / largest.m.perSecond; // cost(1,000) / cost(2)
    const runsOf = (m: Measurement): string => m.runs.map(fmtRate).join(', ');
    for (const s of sends) log(`  send, ${s.n} members: ${fmtUs(s.m.perSecond)} µs (${fmtRate(s.m.perSecond)}/s; runs ${runsOf(s.m)})`);

    // --- 2. encrypt + decrypt --------------------------------------------------------------------------
    const dRate = { engine: get('deadbolt group/enc-dec/engine'), manager: get('deadbolt group/enc-dec/manager') };
    const lRate = { serialized: get('libsignal group/enc-dec/serialized'), objects: get('libsignal group/enc-dec/objects') };
    for (const [k, m] of Object.entries(dRate)) log(`  enc+dec, Deadbolt ${k}: ${fmtRate(m.perSecond)}/s (runs ${runsOf(m)})`);
    for (const [k, m] of Object.entries(lRate)) log(`  enc+dec, libsignal ${k}: ${fmtRate(m.perSecond)}/s (runs ${runsOf(m)})`);

    // --- 3. removal ------------------------------------------------------------------------------------
    const removal = {
      members: dInfo('removalMembers'),
      informed: dInfo('removalDevicesInformed'),
      senders: dInfo('removalRotatingSenders'),
      change: { messages: dInfo('removalChangeMessages'), payload: dInfo('removalChangePayloadBytes'), pairwise: dInfo('removalChangePairwiseBytes') },
      rotation: { messages: dInfo('removalRotationMessages'), payload: dInfo('removalRotationPayloadBytes'), pairwise: dInfo('removalRotationPairwiseBytes') },
      triggers: dInfo('removalTriggerMessages'),
      triggerBytes: dInfo('removalTriggerMessageBytes'),
      fanOut: dInfo('removalFanOutCopies'),
    };
    const total = {
      messages: removal.change.messages + removal.rotation.messages,
      payload: removal.change.payload + removal.rotation.payload,
      pairwise: removal.change.pairwise + removal.rotation.pairwise,
    };

    // --- output ----------------------------------------------------------------------------------------
    const lines: (RateLine | ValueLine)[] = [];
    for (const s of sends) {
      lines.push(rateLine(`group/send/${s.n}`, s.m.perSecond, { name: `group/send/${base.n} (Deadbolt, this run)`, perSecond: base.m.perSecond }, sendPrim));
      lines.push(valueLine(`group/send/${s.n}/time`, round(1e6 / s.m.perSecond, 2), 'us'));
    }
    lines.push(valueLine(`group/send/cost-ratio-${largest.n}-vs-${base.n}`, round(scaling, 3), 'x'));
    for (const r of ROUND_TRIPS) {
      lines.push(rateLine(r.id, dRate[r.deadbolt].perSecond, { name: LIBSIGNAL_STORE[r.libsignal], perSecond: lRate[r.libsignal].perSecond }, rtPrim));
    }
    lines.push(
      valueLine('size/group-message/deadbolt', dInfo('messageLength'), 'bytes'),
      valueLine('size/group-message/libsignal', lInfo('messageLength'), 'bytes'),
      valueLine('size/sender-key-distribution/deadbolt', dInfo('distributionLength'), 'bytes'),
      valueLine('size/sender-key-distribution/libsignal', lInfo('distributionLength'), 'bytes'),
      valueLine('group/remove/members', removal.members, 'members'),
      valueLine('group/remove/rotating-senders', removal.senders, 'devices'),
    );
    for (const [part, t] of [
      ['change', removal.change],
      ['rotation', removal.rotation],
      ['total', total],
    ] as const) {
      lines.push(
        valueLine(`group/remove/${part}/messages`, t.messages, 'messages'),
        valueLine(`group/remove/${part}/payload-bytes`, t.payload, 'bytes'),
        valueLine(`group/remove/${part}/pairwise-bytes`, t.pairwise, 'bytes'),
      );
    }

    if (json) {
      writeJson(lines, started);
      return;
    }

    const out: string[] = [];
    const mark = (ok: boolean): string => (ok ? 'PASS' : 'BELOW');
    out.push('');
    out.push(`1. Sender cost of one ${PLAINTEXT_LENGTH} B group message by group size — steady state, median of 3 interleaved runs, ${clock}`);
    out.push('');
    out.push(
      printTable(
        ['members', 'sends/s', 'µs per send', `cost × ${base.n} members`, 'target', 'mark', 'primitives µs', 'ratio to primitives'],
        sends.map((s) => {
          const cost = base.m.perSecond / s.m.perSecond;
          const isLargest = s === largest;
          return [
            formatInt(s.n),
            fmtRate(s.m.perSecond),
            fmtUs(s.m.perSecond),
            `${cost.toFixed(2)}x`,
            isLargest ? `<=${SEND_SCALING_TARGET}x` : '-',
            isLargest ? mark(scaling <= SEND_SCALING_TARGET) : '-',
            fmtUs(sendPrim.perSecond),
            `${(sendPrim.perSecond / s.m.perSecond).toFixed(2)}x cost`,
          ];
        }),
        ['r', 'r', 'r', 'r', 'l', 'l', 'r', 'r'],
      ),
    );
    out.push('');
    out.push(`One send = engine.send(groupId, ${PLAINTEXT_LENGTH} B) on a real device over @deadbolt/storage-memory: the group manager's encrypt`);
    out.push('(reads the meta and own-key records and checks their checksums, one chain step, message keys, pad, seal, one Ed25519');
    out.push('signature, writes the advanced chain in one batch before returning) and the fan-out addressing (the list of every other');
    out.push('device of the head, cached per head: the only per-recipient work). It produces the one ciphertext the relay fans out;');
    out.push('the upload and the fan-out themselves are not included. The other members are certificates only; the sender key was');
    out.push('distributed before the runs, every timed send is checked to make no pairwise send, and a key about to reach 10,000');
    out.push('messages is rotated (and distributed) untimed between runs.');
    out.push(`Primitives: ${sendPrim.name}. ratio to primitives = cost per send ÷ that.`);
    out.push('');

    out.push(`2. Group ${PLAINTEXT_LENGTH} B encrypt + decrypt, one sender and one receiver, steady state — ops/s, ${clock} (one op = one message encrypted and decrypted)`);
    out.push('');
    out.push(
      printTable(
        ['Deadbolt layer', 'Deadbolt/s', 'libsignal store', 'libsignal/s', 'ratio', 'target', 'mark', 'primitives/s', 'ratio to primitives', 'ceiling'],
        ROUND_TRIPS.map((r) => {
          const d = dRate[r.deadbolt].perSecond;
          const l = lRate[r.libsignal].perSecond;
          return [
            DEADBOLT_LAYER[r.deadbolt],
            fmtRate(d),
            r.libsignal === 'serialized' ? 'record serialized per save/load' : 'record objects in memory',
            fmtRate(l),
            `${(d / l).toFixed(2)}x`,
            `>=${ROUND_TRIP_TARGET}x lib`,
            d / l >= ROUND_TRIP_TARGET ? 'PASS' : rtPrim.perSecond / l < ROUND_TRIP_TARGET ? 'BELOW (ceiling too)' : 'BELOW',
            fmtRate(rtPrim.perSecond),
            `${(rtPrim.perSecond / d).toFixed(2)}x cost`,
            `${(rtPrim.perSecond / l).toFixed(2)}x`,
          ];
        }),
        ['l', 'r', 'l', 'r', 'r', 'l', 'l', 'r', 'r', 'r'],
      ),
    );
    out.push('');
    out.push('ceiling = primitives/s ÷ libsignal/s: the ratio an implementation doing nothing but the primitives below would reach;');
    out.push('"BELOW (ceiling too)": the target is out of reach with these primitives on this machine, whatever the code around them does.');
    out.push('Deadbolt: two real devices, each with its own @deadbolt/storage-memory store (state persisted after every message, with');
    out.push('checksummed record envelopes), a two-member group, the sender key distributed and installed. "engine" = the group engine');
    out.push('(its queue, fan-out addressing, held-message logic on the receive side); "manager" = the layer below. libsignal: its');
    out.push('Sender Keys (SenderKeyDistributionMessage.create and processSenderKeyDistributionMessage before the runs; groupEncrypt,');
    out.push('serialize, groupDecrypt per op) with JS SenderKeyStores, each library in its own process.');
    out.push(`Primitives: ${rtPrim.name}.`);
    out.push('');
    out.push(
      printTable(
        ['size (bytes)', 'Deadbolt', 'libsignal'],
        [
          [`group message, ${PLAINTEXT_LENGTH} B plaintext`, String(dInfo('messageLength')), String(lInfo('messageLength'))],
          ['sender-key distribution', String(dInfo('distributionLength')), String(lInfo('distributionLength'))],
        ],
      ),
    );
    out.push('');
    const labels = groupPrimitiveLabels(shapes);
    out.push(
      printTable(
        ['primitive (node:crypto provider)', 'ops/s', 'µs'],
        GROUP_PRIMITIVES.map((p) => [labels[p], fmtRate(prims[p].perSecond), fmtUs(prims[p].perSecond)]),
      ),
    );
    out.push('');

    out.push(`3. Removing one member of a ${formatInt(removal.members)}-member group (one device each): pairwise traffic that follows`);
    out.push('');
    out.push(
      printTable(
        ['pairwise messages', 'count', 'payload bytes', 'pairwise ciphertext bytes'],
        [
          [`signed change, to every other device (${removal.informed - 1} remaining + the removed one)`, formatInt(removal.change.messages), formatInt(removal.change.payload), formatInt(removal.change.pairwise)],
          [
            `new sender keys: ${removal.senders} remaining senders × ${removal.senders - 1} other devices`,
            formatInt(removal.rotation.messages),
            formatInt(removal.rotation.payload),
            formatInt(removal.rotation.pairwise),
          ],
          ['total', formatInt(total.messages), formatInt(total.payload), formatInt(total.pairwise)],
        ],
        ['l', 'r', 'r', 'r'],
      ),
    );
    out.push('');
    out.push('Counted at every device engine\'s sendPairwise callback (every device real: memory store, group manager, engine), from the');
    out.push('admin\'s engine.removeMember until every remaining device has sent once more (each such send rotates its key, §12.7.3).');
    out.push('payload = the group payload handed to sendPairwise; pairwise ciphertext = that payload encrypted with the session');
    out.push('manager\'s encrypt on an established session (a steady RatchetMessage: padded to its bucket, header, commitment, tag;');
    out.push('one real session stands in for every pair, the length depending only on the payload\'s). No client framing and no relay');
    out.push(`envelope: the client does not carry group payloads yet. Not included: the ${removal.triggers} group messages whose sends rotated`);
    out.push(`the keys (${formatInt(removal.triggerBytes)} bytes uploaded, ${formatInt(removal.fanOut)} copies fanned out by the relay): they would be sent anyway.`);
    out.push('Checked: no new key goes to the removed device, which cannot decrypt what follows; a remaining device decrypts it all.');
    writeTable(out, note, started, quick);
  } finally {
    deadbolt.close();
    libsignal.close();
  }
}

await main();
