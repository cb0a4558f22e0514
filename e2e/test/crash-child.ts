/**
 * The crash-consistency test's victim: Bob's client on SQLite storage. It receives
 * Alice's interleaved stream of 1:1 (`m-N`) and group (`g-N`) messages, replies to every
 * 5th of each (1:1 replies `re-N-pid`, group replies `gre-N-pid` in the group), and records
 * each reply only after the relay accepted it. Every application-level delivery (the
 * `message-received` and `group-message-received` events) is appended to a delivery log
 * as it happens, once per message id (see `firstTime`). The parent kills it with SIGKILL at random moments and starts it again on
 * the same database.
 *
 * argv: dbPath wsUrl sentLogPath deliveryLogPath mode(run|report|final) [expected1to1] [expectedGroup]
 *
 * - run: receive, reply, log; prints `started` once connected.
 * - report: once the 1:1 history holds `expected1to1` incoming messages and the group's
 *   history `expectedGroup`, prints `{ direct, group }` (incoming bodies, in history order).
 * - final: as report, and then sends `bye-direct` (1:1) and `bye-group` (group) and prints
 *   the report only once the relay accepted both.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { createClient } from '@deadbolt/core';
import { createSqliteStorage } from '@deadbolt/storage-sqlite';
import { createWebSocketTransport, type WebSocketConstructor } from '@deadbolt/transport-websocket';

const [dbPath, wsUrl, sentLog, deliveryLog, mode, expectedArg, expectedGroupArg] = process.argv.slice(2) as [string, string, string, string, string, string?, string?];
const client = await createClient({
  userId: 'bob',
  deviceId: 'crashy',
  storage: createSqliteStorage({ path: dbPath }),
  transport: createWebSocketTransport({ url: wsUrl, WebSocket: WebSocket as unknown as WebSocketConstructor, backoff: { initialMs: 10, maxMs: 200 } }),
  prekeyBatch: { oneTime: 3, pqOneTime: 2 },
});
const decode = (b: Uint8Array): string => new TextDecoder().decode(b);

// The application's own durable record of what it handled: the delivery log, one line
// `kind:body:id` per message, written synchronously (a SIGKILL cannot lose a write that
// returned; it can only land before it). An event the client flags `redelivered` (§11.4:
// committed, but the process died before the event was recorded as handled) may be one
// the log already holds: the app checks its `localId` (this device's id for the message,
// never the sender-chosen `id`), which is what makes it exactly once. An unflagged event
// whose localId is already in the log would be the SDK's fault: logged apart.
const handled = new Set(
  (existsSync(deliveryLog) ? readFileSync(deliveryLog, 'utf8') : '')
    .split('\n')
    .filter(Boolean)
    .map((line) => line.slice(line.lastIndexOf(':') + 1)),
);
/** True if the message is new to the application (and records it); false for a repeat. */
function firstTime(kind: '1' | 'g', m: { localId: string; body: Uint8Array; redelivered: boolean }): boolean {
  if (handled.has(m.localId)) {
    appendFileSync(`${deliveryLog}.repeats`, `${m.redelivered ? 'flagged' : 'UNFLAGGED'}:${kind}:${decode(m.body)}\n`);
    return false;
  }
  handled.add(m.localId);
  appendFileSync(deliveryLog, `${kind}:${decode(m.body)}:${m.localId}\n`);
  return true;
}
const fresh = { direct: new Set<string>(), group: new Set<string>() };
// Listeners before start(): redeliveries are emitted while it runs.
client.on('message-received', (m) => void (firstTime('1', m) && fresh.direct.add(m.localId)));
client.on('group-message-received', (m) => void (firstTime('g', m) && fresh.group.add(m.localId)));

if (mode === 'run') {
  client.on('message-received', (m) => {
    if (!fresh.direct.delete(m.localId)) return; // a repeat: already answered, if at all
    const n = Number(decode(m.body).slice(2));
    if (n % 5 === 0) {
      const reply = `re-${n}-${process.pid}`;
      client.send('alice', reply).then(
        () => appendFileSync(sentLog, `${reply}\n`),
        () => undefined, // killed or refused: never recorded as sent
      );
    }
  });
  client.on('group-message-received', (m) => {
    if (!fresh.group.delete(m.localId)) return;
    const n = Number(decode(m.body).slice(2));
    if (n % 5 === 0) {
      const reply = `gre-${n}-${process.pid}`;
      void client
        .group(m.groupId)
        .then((g) => g!.send(reply))
        .then(
          () => appendFileSync(sentLog, `${reply}\n`),
          () => undefined,
        );
    }
  });
  await client.start();
  process.stdout.write('started\n');
} else {
  // Report: once the histories hold what is expected, print them (event-driven).
  const expected = Number(expectedArg);
  const expectedGroup = Number(expectedGroupArg);
  const incoming = async (): Promise<{ direct: string[]; group: string[] }> => {
    const direct = (await client.history('alice', { limit: 1000 })).filter((m) => m.direction === 'incoming').map((m) => decode(m.body));
    const groups = await client.groups();
    const g = groups.length === 1 ? await client.group(groups[0]!.groupId) : undefined;
    const group = g ? (await g.history({ limit: 1000 })).filter((m) => m.direction === 'incoming').map((m) => decode(m.body)) : [];
    return { direct, group };
  };
  let done = false;
  // Not before start() finished: redeliveries come during start, and leaving then would
  // leave start's own work (publishing a pending prekey upload) for a later run.
  let ready = false;
  const finish = async (): Promise<void> => {
    if (done || !ready) return;
    const got = await incoming();
    if (done || got.direct.length < expected || got.group.length < expectedGroup) return;
    done = true;
    if (mode === 'final') {
      await client.send('alice', 'bye-direct');
      const groups = await client.groups();
      await (await client.group(groups[0]!.groupId))!.send('bye-group');
    }
    process.stdout.write(`${JSON.stringify(got)}\n`);
    await client.close();
    process.exit(0);
  };
  client.on('message-received', () => void finish());
  client.on('group-message-received', () => void finish());
  setTimeout(() => {
    void incoming().then((got) => {
      process.stdout.write(`${JSON.stringify(got)}\n`);
      process.exit(0);
    });
  }, 60_000).unref();
  await client.start();
  ready = true;
  await finish();
}
