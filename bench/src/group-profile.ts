/**
 * Profiles one Deadbolt workload of the group benchmark: the fixture is set up (and the
 * sender key distributed) first, then the V8 CPU profiler runs only around the timed loop,
 * so the profile holds nothing but the workload. The loop stays within one sender key (at
 * most 9,000 ops), so no rotation happens inside it.
 *
 * ```
 * cd bench
 * node --conditions=@deadbolt/source --import tsx src/group-profile.ts engine 5 /tmp/group-engine.cpuprofile
 * node --import tsx src/cpuprofile-top.ts /tmp/group-engine.cpuprofile
 * ```
 *
 * Workloads: send-2, send-100, send-1000 (engine.send at that group size), engine
 * (engine.send + engine.receiveGroupMessage), manager (groups.encrypt + groups.decrypt).
 * Then the duration in seconds (default 5) and the output file (default
 * `group-<workload>.cpuprofile`).
 *
 * @module
 */
import { PLAINTEXT_LENGTH } from './config.js';
import { MESSAGES_PER_KEY, PairFixture, SenderFixture, benchCrypto } from './group-deadbolt.js';
import { profileLoop } from './profile-loop.js';

const workload = process.argv[2] ?? 'engine';
const seconds = Number(process.argv[3] ?? '5');
const output = process.argv[4] ?? `group-${workload}.cpuprofile`;
const crypto = benchCrypto();
const plaintext = crypto.randomBytes(PLAINTEXT_LENGTH);

/**
 * Profiles `op` for `seconds` or until one sender key is nearly used up (9,000 ops),
 * whichever comes first: the key is rotated (untimed, unprofiled) before the loop so that
 * no rotation happens inside it.
 */
async function profiled(op: () => Promise<unknown>, ensureHeadroom: (n: number) => Promise<void>): Promise<void> {
  const warmup = 2000;
  const limit = MESSAGES_PER_KEY - 1000;
  await ensureHeadroom(warmup);
  for (let i = 0; i < warmup; i++) await op();
  await ensureHeadroom(limit);
  await profileLoop(op, { workload, seconds, output, limit });
}

const sizes: Record<string, number> = { 'send-2': 2, 'send-100': 100, 'send-1000': 1000 };
if (workload in sizes) {
  const f = await SenderFixture.create(crypto, sizes[workload]!, plaintext);
  await profiled(() => f.send(), (n) => f.ensureHeadroom(n));
} else if (workload === 'engine' || workload === 'manager') {
  const p = await PairFixture.create(crypto, plaintext);
  await profiled(workload === 'engine' ? () => p.engineRoundTrip() : () => p.managerRoundTrip(), (n) => p.ensureHeadroom(n));
} else {
  throw new Error(`unknown workload ${workload}`);
}
