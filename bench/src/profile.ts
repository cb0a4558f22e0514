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
import { createNodeCryptoProvider } from '@deadbolt/core';
import { ProtocolPair, Responder, SessionApiPair, makeDevice, setupOnce } from './deadbolt.js';
import { profileLoop } from './profile-loop.js';

const workload = process.argv[2] ?? 'ping-pong';
const seconds = Number(process.argv[3] ?? '5');
const output = process.argv[4] ?? `${workload}.cpuprofile`;
const crypto = createNodeCryptoProvider();
const plaintext = crypto.randomBytes(1024);

const loop = { workload, seconds, output };

switch (workload) {
  case 'steady':
  case 'ping-pong': {
    const p = await ProtocolPair.establish(crypto, plaintext);
    await profileLoop(workload === 'steady' ? () => p.steady(plaintext) : () => p.pingPong(plaintext), loop);
    break;
  }
  case 'api-steady':
  case 'api-ping-pong': {
    const p = await SessionApiPair.establish(crypto, plaintext);
    await profileLoop(workload === 'api-steady' ? () => p.steady(plaintext) : () => p.pingPong(plaintext), loop);
    break;
  }
  case 'setup': {
    const alice = await makeDevice(crypto, 'alice', 'phone');
    const bob = await Responder.create(crypto, await makeDevice(crypto, 'bob', 'laptop'));
    const pool = await bob.bundles(Math.ceil(600 * seconds));
    await profileLoop(() => setupOnce(crypto, alice, bob, pool.pop()!, plaintext), { ...loop, limit: pool.length });
    break;
  }
  default:
    throw new Error(`unknown workload ${workload}`);
}
