/**
 * The Deadbolt demo: a real relay (SQLite, on a free loopback port) and three clients,
 * two on WebSocket and one on HTTP long-polling, exchanging end-to-end encrypted
 * messages. It prints the conversation as the users see it, then everything the relay
 * actually stored: the operator's whole view, which holds no plaintext and no private key.
 *
 * Run: `pnpm demo`. It ends by itself with exit status 0.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { createClient, formatSafetyNumber, type Client, type StoredMessage } from '@deadbolt/core';
import { createRelay, createSqliteRelayStore } from '@deadbolt/relay';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import { createHttpPollingTransport } from '@deadbolt/transport-http-polling';
import { createWebSocketTransport, type WebSocketConstructor } from '@deadbolt/transport-websocket';

const line = (s = ''): void => console.log(s);
const dim = (s: string): string => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);
const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

function preview(value: unknown): string {
  if (value instanceof Uint8Array) {
    const hex = Buffer.from(value.subarray(0, 16)).toString('hex');
    return `<${value.length} bytes ${hex}${value.length > 16 ? '…' : ''}>`;
  }
  return JSON.stringify(value);
}

/** Resolves when `client` has received `count` messages (event-driven, no polling). */
function expectMessages(client: Client, count: number): Promise<StoredMessage[]> {
  const got: StoredMessage[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${client.address.userId} got ${got.length}/${count} messages`)), 30_000);
    client.on('message-received', (m) => {
      got.push(m);
      if (got.length === count) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'deadbolt-demo-'));
  const dbPath = join(dir, 'relay.db');
  const relay = await createRelay({ store: createSqliteRelayStore({ path: dbPath }), host: '127.0.0.1', port: 0, logger: () => undefined });
  line(bold(`relay listening on ${relay.url} (SQLite at ${dbPath}), development mode`));

  const ws = (url: string) => createWebSocketTransport({ url, WebSocket: WebSocket as unknown as WebSocketConstructor });
  const alice = await createClient({ userId: 'alice', deviceId: 'phone', storage: createMemoryStorage(), transport: ws(relay.wsUrl) });
  const bob = await createClient({ userId: 'bob', deviceId: 'laptop', storage: createMemoryStorage(), transport: createHttpPollingTransport({ url: relay.url }) });
  const carol = await createClient({ userId: 'carol', deviceId: 'tablet', storage: createMemoryStorage(), transport: ws(relay.wsUrl) });
  const clients = [alice, bob, carol];
  for (const c of clients) await c.start();
  line(`alice (WebSocket), bob (HTTP long-polling) and carol (WebSocket) registered and published prekeys`);
  line();

  const script: [Client, string, string][] = [
    [alice, 'bob', 'Hi Bob! This is end-to-end encrypted: the relay only stores ciphertext.'],
    [bob, 'alice', 'Hi Alice. I am on HTTP long-polling, you are on a WebSocket. Same protocol.'],
    [carol, 'alice', 'Alice, are we still on for Friday?'],
    [alice, 'carol', 'Yes! 7pm.'],
    [alice, 'bob', 'Every reply turns the Double Ratchet, so old keys are gone.'],
  ];
  line(bold('The conversation, as the users see it'));
  for (const [sender, to, text] of script) {
    const recipient = clients.find((c) => c.address.userId === to)!;
    const arrived = expectMessages(recipient, 1);
    await sender.send(to, text);
    const [m] = await arrived;
    line(`  ${sender.address.userId} -> ${to}: ${new TextDecoder().decode(m!.body)}`);
  }
  const a = await alice.safetyNumber('bob');
  const b = await bob.safetyNumber('alice');
  line();
  line(`  safety number alice<->bob: ${formatSafetyNumber(a.digits)}`);
  line(`  (bob sees the same: ${a.digits === b.digits ? 'yes' : 'NO'})`);
  if (a.digits !== b.digits) process.exitCode = 1;

  // Keep one message undelivered, so the mailbox table shows what the relay holds.
  await carol.close();
  await alice.send('carol', 'See you Friday (carol is offline: this waits in her mailbox).');
  line();

  line(bold('What the relay stored (its entire database)'));
  const db = new Database(dbPath, { readonly: true });
  const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as { name: string }[];
  for (const { name } of tables) {
    const rows = db.prepare(`SELECT * FROM "${name}"`).all() as Record<string, unknown>[];
    line(`  ${name} (${rows.length} rows)`);
    for (const row of rows.slice(0, 4)) line(dim(`    ${Object.entries(row).map(([k, v]) => `${k}=${preview(v)}`).join('  ')}`));
    if (rows.length > 4) line(dim(`    … ${rows.length - 4} more`));
  }
  db.close();
  line();
  line('The relay holds public keys, routing metadata and padded ciphertext. No plaintext, no private key.');

  for (const c of [alice, bob]) await c.close();
  await relay.close();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
