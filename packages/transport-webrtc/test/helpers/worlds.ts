/**
 * What the tests on the in-memory world (`fake-world.ts`) share: worlds closed after each
 * test, the default attempt bound as a manual timer, fresh connection ids for signals a
 * test writes by hand, and the scene the eviction tests start from. Test use only.
 */
import { afterEach, expect } from 'vitest';
import { direct, utf8, World, type Device } from './fake-world.js';
import { within } from './stack.js';

/** The default connectTimeoutMs, as a manual timer. */
export const CONNECT_MS = 10_000;

/** A random 16-byte connection id, for offers and answers a test writes by hand. */
export const freshId = (): Uint8Array => globalThis.crypto.getRandomValues(new Uint8Array(16));

/**
 * Registers an `afterEach` that closes every world made with the returned function in that
 * test. Call it at the top of a test file; with vitest's stacked hooks, an `afterEach`
 * the file registers after this one runs before the worlds close.
 */
export function worldsClosedAfterEach(): (...args: ConstructorParameters<typeof World>) => World {
  const worlds: World[] = [];
  afterEach(async () => {
    for (const w of worlds.splice(0)) await w.close();
  });
  return (...args) => {
    const w = new World(...args);
    worlds.push(w);
    return w;
  };
}

/** {@link bobAtMaxPeers}: the devices, and bob's clock. */
export interface AtMaxPeers {
  readonly bob: Device;
  /** Linked to bob first; bob has written to her since. */
  readonly carol: Device;
  /** Linked to bob a second after carol; bob never wrote to him: the link he wants least. */
  readonly dave: Device;
  /** Connected, no link: the next link bob wants. */
  readonly erin: Device;
  /** Moves bob's clock on. */
  later(ms: number): void;
}

/**
 * The eviction tests' starting point (in a world whose devices talked before): bob at
 * `maxPeers: 2` with both places taken by links peers initiated, carol's, then dave's a
 * second later, and then, a second later again, bob's own frame to carol, sent directly
 * (his own demand ranks the links: hostile review 5, finding 2).
 */
export async function bobAtMaxPeers(w: World): Promise<AtMaxPeers> {
  let clock = 1_000_000;
  const later = (ms: number): void => void (clock += ms);
  const bob = await w.device('bob', { maxPeers: 2, now: () => clock });
  const carol = await w.device('carol');
  const dave = await w.device('dave');
  const erin = await w.device('erin');
  expect(await within(carol.raw.preconnect(bob.address), 'carol’s link')).toBe(true);
  later(1000);
  expect(await within(dave.raw.preconnect(bob.address), 'dave’s link')).toBe(true);
  later(1000);
  await bob.transport.send([{ to: carol.address, frame: utf8('to carol'), contact: true }]);
  expect(direct(carol)).toEqual(['to carol']);
  return { bob, carol, dave, erin, later };
}
