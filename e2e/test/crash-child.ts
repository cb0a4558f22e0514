/**
 * The crash-consistency test's victim: Bob's client on SQLite storage. It receives
 * Alice's stream, replies to every 5th message, and records each reply only after the
 * relay accepted it. The parent kills it with SIGKILL at random moments and starts it
 * again on the same database.
 *
 * argv: dbPath wsUrl sentLogPath mode(run|report) [expected]
 */
import { appendFileSync } from 'node:fs';
import WebSocket from 'ws';
import { createClient } from '@deadbolt/core';
import { createSqliteStorage } from '@deadbolt/storage-sqlite';
import { createWebSocketTransport, type WebSocketConstructor } from '@deadbolt/transport-websocket';

const [dbPath, wsUrl, sentLog, mode, expectedArg] = process.argv.slice(2) as [string, string, string, string, string?];
const client = await createClient({
  userId: 'bob',
  deviceId: 'crashy',
  storage: createSqliteStorage({ path: dbPath }),
  transport: createWebSocketTransport({ url: wsUrl, WebSocket: WebSocket as unknown as WebSocketConstructor, backoff: { initialMs: 10, maxMs: 200 } }),
  prekeyBatch: { oneTime: 3, pqOneTime: 2 },
});

if (mode === 'run') {
  client.on('message-received', (m) => {
    const text = new TextDecoder().decode(m.body);
    const n = Number(text.slice(2));
    if (n % 5 === 0) {
      const reply = `re-${n}-${process.pid}`;
      client.send('alice', reply).then(
        () => appendFileSync(sentLog, `${reply}\n`),
        () => undefined, // killed or refused: never recorded as sent
      );
    }
  });
  await client.start();
  process.stdout.write('started\n');
} else {
  // Report: once history holds `expected` incoming messages, print them (event-driven).
  const expected = Number(expectedArg);
  const incoming = async (): Promise<string[]> =>
    (await client.history('alice', { limit: 1000 })).filter((m) => m.direction === 'incoming').map((m) => new TextDecoder().decode(m.body));
  let done = false;
  const finish = async (): Promise<void> => {
    if (done) return;
    const got = await incoming();
    if (got.length < expected) return;
    done = true;
    process.stdout.write(`${JSON.stringify(got)}\n`);
    await client.close();
    process.exit(0);
  };
  client.on('message-received', () => void finish());
  setTimeout(() => {
    void incoming().then((got) => {
      process.stdout.write(`${JSON.stringify(got)}\n`);
      process.exit(0);
    });
  }, 60_000).unref();
  await client.start();
  await finish();
}
