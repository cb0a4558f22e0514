/**
 * Real Chromium (Debian's, through `@deadbolt/browser-harness`): two pages, two users,
 * talking (both ways) over a direct data channel with the browser's own WebRTC; one going offline
 * (messages fall back to the relay) and coming back (direct again), every message exactly
 * once; and a Node device (node-datachannel) talking directly to a Chromium one. The relay
 * stores what it carried, so each test also checks it never held a message sent while the
 * path was direct, nor any of the pages' session descriptions.
 */
import { describe, expect, test } from 'vitest';
import type { DeadboltWebRtcPage } from './browser/page.js';
import { useChromiumPages } from './helpers/chromium-pages.js';
import { startClient, text, type TestClient, type TestRelay } from './helpers/stack.js';

const { cleanup, relay, page, call, sendAll } = useChromiumPages<DeadboltWebRtcPage>(new URL('./browser/page.ts', import.meta.url), 'deadboltWebRtc');

/** Nothing the relay stored contains any of these descriptions' credentials or fingerprints. */
function expectNoDescriptionAt(r: TestRelay, descriptions: string[]): void {
  expect(descriptions.length).toBeGreaterThan(0);
  const stored = Buffer.concat(r.enqueued.map((e) => Buffer.from(e.frame)));
  for (const sdp of descriptions) {
    for (const m of sdp.matchAll(/^a=(?:ice-ufrag|ice-pwd|fingerprint:\S+) ?(\S+)$/gm)) {
      expect(stored.includes(Buffer.from(m[1]!)), 'a credential or fingerprint of a page in the relay store').toBe(false);
    }
  }
  expect(stored.includes(Buffer.from('a=candidate'))).toBe(false);
}

describe('real Chromium', () => {
  test('two pages talk over a direct data channel; one goes offline and messages fall back to the relay; it returns and the path is direct again; every message once', async () => {
    const r = await relay();
    const alice = await page();
    const bob = await page();
    await call(alice, 'start', { userId: 'alice', deviceId: 'browser', wsUrl: r.wsUrl });
    await call(bob, 'start', { userId: 'bob', deviceId: 'browser', wsUrl: r.wsUrl });
    const a = { userId: 'alice', deviceId: 'browser' };
    const b = { userId: 'bob', deviceId: 'browser' };

    const toBob: string[] = await sendAll(alice, 'bob', ['hello from chromium']);
    // A conversation both ways: each device answers the other's offers (a first message alone gets no link).
    const back: string[] = await sendAll(bob, 'alice', ['hello from bob']);
    expect(await call(alice, 'waitPath', 'bob', 'browser', 'direct')).toBe('matched');
    await call(bob, 'waitPath', 'alice', 'browser', 'direct');
    const storedBefore = r.enqueued.length;
    const direct = await sendAll(alice, 'bob', Array.from({ length: 10 }, (_, i) => `direct ${i}`));
    back.push(...(await sendAll(bob, 'alice', ['and back'])));
    toBob.push(...direct);
    expect(await call(bob, 'waitReceived', toBob)).toEqual(toBob.map(() => 1));
    expect(await call(alice, 'waitReceived', back)).toEqual([1, 1]);
    expect(r.enqueued.length - storedBefore, 'messages the relay stored while the path was direct').toBe(0);

    // Bob goes offline.
    await call(bob, 'stop');
    await call(alice, 'waitPath', 'bob', 'browser', 'relay');
    const fromBefore = r.count(a as never, b as never);
    const away = await sendAll(alice, 'bob', ['while away 1', 'while away 2', 'while away 3']);
    expect(r.count(a as never, b as never) - fromBefore).toBeGreaterThanOrEqual(3);
    toBob.push(...away);

    // Bob comes back: what waited arrives, and the path turns direct again.
    await call(bob, 'start', { userId: 'bob', deviceId: 'browser', wsUrl: r.wsUrl });
    expect(await call(bob, 'waitReceived', away)).toEqual([1, 1, 1]);
    // Bob writes again: his transport, new since the restart, answers alice's offers again (and offers itself).
    expect(await call(alice, 'waitReceived', await sendAll(bob, 'alice', ['i am back']))).toEqual([1]);
    const again = await sendAll(alice, 'bob', ['back again']);
    toBob.push(...again);
    await call(alice, 'waitPath', 'bob', 'browser', 'direct');
    await call(bob, 'waitPath', 'alice', 'browser', 'direct');
    const storedDirect = r.enqueued.length;
    const resumed = await sendAll(alice, 'bob', ['resumed 1', 'resumed 2']);
    toBob.push(...resumed);
    expect(await call(bob, 'waitReceived', [...again, ...resumed])).toEqual([1, 1, 1]);
    expect(r.enqueued.length - storedDirect, 'nothing stored once direct again').toBe(0);

    const history = await call(bob, 'history', 'alice');
    expect(history.filter((id) => toBob.includes(id)).sort()).toEqual([...toBob].sort());
    expect(new Set(history).size).toBe(history.length);
    expectNoDescriptionAt(r, [...(await call(alice, 'localDescriptions')), ...(await call(bob, 'localDescriptions'))]);
  });

  test('a Node device (node-datachannel) and a Chromium device connect directly', async () => {
    const r = await relay();
    const browserSide = await page();
    await call(browserSide, 'start', { userId: 'carol', deviceId: 'browser', wsUrl: r.wsUrl });
    const node: TestClient = await startClient(r, 'dave', 'node');
    cleanup(() => node.close());
    const carol = { userId: 'carol', deviceId: 'browser' } as TestClient['address'];

    const first = (await node.client.send('carol', 'hello from node')).id;
    expect(await call(browserSide, 'waitReceived', [first])).toEqual([1]);
    const reply = await sendAll(browserSide, 'dave', ['hello from chromium']); // both ways: offers are answered
    await node.until(() => reply.every((id) => node.received.some((m) => m.id === id)), 'the reply');
    await node.waitPath(carol, 'direct');
    expect(await call(browserSide, 'waitPath', 'dave', 'node', 'direct')).toBe('matched');
    // libdatachannel reports the fingerprint of the certificate Chromium presented.
    expect(node.paths.find((p) => p.path === 'direct')?.fingerprintCheck).toBe('matched');

    const storedBefore = r.enqueued.length;
    const toCarol: string[] = [];
    for (const body of ['n1', 'x'.repeat(50_000), 'n3']) toCarol.push((await node.client.send('carol', body)).id);
    const toDave = await sendAll(browserSide, 'dave', ['c1', 'c2']);
    expect(await call(browserSide, 'waitReceived', toCarol)).toEqual([1, 1, 1]);
    await node.until(() => toDave.every((id) => node.received.some((m) => m.id === id)), 'two messages from chromium');
    expect(node.received.filter((m) => toDave.includes(m.id)).map(text)).toEqual(['c1', 'c2']);
    expect(r.enqueued.length - storedBefore, 'messages the relay stored while the path was direct').toBe(0);
    expectNoDescriptionAt(r, await call(browserSide, 'localDescriptions'));
  });
});
