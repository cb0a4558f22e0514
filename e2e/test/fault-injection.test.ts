/**
 * SECURITY.md E32/E33 and F44 end to end: Alice (WebSocket) and Bob (HTTP polling)
 * exchange 1,000 messages while proxies between them and the relay drop, duplicate and
 * reorder traffic, and the relay (SQLite) is restarted once. Every message must arrive
 * exactly once, and the sessions must still work afterwards.
 */
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { expect, test } from 'vitest';
import { startFaultProxy } from './fault-proxy.js';
import { startClient, startRelay, tempDbPath, text } from './stack.js';

const TOTAL = 1000;
const RATES = { drop: 0.02, duplicate: 0.05, reorder: 0.1 };

test('1,000 messages through a lossy, duplicating, reordering network and a relay restart arrive exactly once', async () => {
  const dbPath = tempDbPath();
  let relay = await startRelay({ dbPath });
  const port = new URL(relay.url).port;
  const proxy = await startFaultProxy(relay.url, RATES, 20261123);
  const alice = await startClient('websocket', proxy, 'alice', 'phone');
  const bob = await startClient('http-polling', proxy, 'bob', 'laptop');
  try {
    const half = TOTAL / 2;
    const sendAll = async (from: typeof alice, to: string, prefix: string, start: number, end: number): Promise<void> => {
      // A few sends in flight at once, as a real app would. No retries here: a send that
      // rejects would be a new message; the transport must absorb the faults itself.
      const inFlight = new Set<Promise<void>>();
      for (let i = start; i < end; i++) {
        const p: Promise<void> = from.client
          .send(to, `${prefix}-${i}`)
          .then(() => undefined)
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
        if (inFlight.size >= 8) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    };

    // First half of each direction, then restart the relay on the same port and database.
    await Promise.all([sendAll(alice, 'bob', 'a', 0, half / 2), sendAll(bob, 'alice', 'b', 0, half / 2)]);
    await relay.close();
    relay = await startRelay({ dbPath, port: Number(port) });
    await Promise.all([sendAll(alice, 'bob', 'a', half / 2, half), sendAll(bob, 'alice', 'b', half / 2, half)]);

    await Promise.all([bob.waitForMessages(half, 120_000), alice.waitForMessages(half, 120_000)]);
    const expectExactlyOnce = (received: string[], prefix: string): void => {
      const counts = new Map<string, number>();
      for (const t of received) counts.set(t, (counts.get(t) ?? 0) + 1);
      for (let i = 0; i < half; i++) expect(counts.get(`${prefix}-${i}`), `${prefix}-${i}`).toBe(1);
      expect(received).toHaveLength(half);
    };
    expectExactlyOnce(bob.received.map(text), 'a');
    expectExactlyOnce(alice.received.map(text), 'b');
    expect((await bob.client.history('alice', { limit: 1000 })).filter((m) => m.direction === 'incoming')).toHaveLength(half);

    // The faults really happened.
    expect(proxy.stats.dropped).toBeGreaterThan(0);
    expect(proxy.stats.duplicated).toBeGreaterThan(0);
    expect(proxy.stats.reordered).toBeGreaterThan(0);
    console.log(`fault proxy: ${JSON.stringify(proxy.stats)}`);

    // And the sessions still work on a calm network.
    proxy.calm();
    await alice.client.send('bob', 'still here');
    await bob.waitForMessages(half + 1);
    expect(text(bob.received.at(-1)!)).toBe('still here');
  } finally {
    await alice.client.close();
    await bob.client.close();
    await proxy.close();
    await relay.close();
    rmSync(dirname(dbPath), { recursive: true, force: true });
  }
});
