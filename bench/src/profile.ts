/**
 * Profiles one Deadbolt workload of the benchmark: the conversation is established (and,
 * for set-ups, the bundles generated) first, then the V8 CPU profiler runs only around
 * the timed loop, so the profile holds nothing but the workload.
 *
 * ```
 * cd bench
 * node --conditions=@deadbolt/source --import tsx src/profile.ts ping-pong 5 /tmp/ping-pong.cpuprofile
 * node --import tsx src/cpuprofile-top.ts /tmp/ping-pong.cpuprofile
 * ```
 *
 * Workloads: steady, ping-pong, setup, api-steady, api-ping-pong. Then the duration in
 * seconds (default 5) and the output file (default `<workload>.cpuprofile`).
 *
 * @module
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { createNodeCryptoProvider } from '@deadbolt/core';
import { ProtocolPair, Responder, SessionApiPair, makeDevice, setupOnce } from './deadbolt.js';

const workload = process.argv[2] ?? 'ping-pong';
const seconds = Number(process.argv[3] ?? '5');
const output = process.argv[4] ?? `${workload}.cpuprofile`;
const crypto = createNodeCryptoProvider();
const plaintext = crypto.randomBytes(1024);

async function profiled(op: () => Promise<unknown>, limit = Number.POSITIVE_INFINITY): Promise<void> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  let n = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end && n < limit) {
    await op();
    n++;
  }
  const elapsed = (performance.now() - start) / 1000;
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  writeFileSync(output, JSON.stringify(profile));
  process.stderr.write(`${workload}: ${n} ops in ${elapsed.toFixed(1)} s (${Math.round(n / elapsed)}/s with the profiler on) -> ${output}\n`);
}

switch (workload) {
  case 'steady':
  case 'ping-pong': {
    const p = await ProtocolPair.establish(crypto, plaintext);
    await profiled(workload === 'steady' ? () => p.steady(plaintext) : () => p.pingPong(plaintext));
    break;
  }
  case 'api-steady':
  case 'api-ping-pong': {
    const p = await SessionApiPair.establish(crypto, plaintext);
    await profiled(workload === 'api-steady' ? () => p.steady(plaintext) : () => p.pingPong(plaintext));
    break;
  }
  case 'setup': {
    const alice = await makeDevice(crypto, 'alice', 'phone');
    const bob = await Responder.create(crypto, await makeDevice(crypto, 'bob', 'laptop'));
    const pool = await bob.bundles(Math.ceil(600 * seconds));
    await profiled(() => setupOnce(crypto, alice, bob, pool.pop()!, plaintext), pool.length);
    break;
  }
  default:
    throw new Error(`unknown workload ${workload}`);
}
