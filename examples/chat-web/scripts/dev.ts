/**
 * `pnpm --filter @deadbolt/chat-web dev`: a relay on loopback and the Vite dev server for
 * the app, in one process.
 *
 * ```
 * dev [--port 5173] [--relay-port 8787] [--memory | --db .dev/relay.db]
 * ```
 *
 * The relay allows exactly the dev server's origins (browsers' pages from any other origin
 * are refused), and the app is told its address through `VITE_DEADBOLT_RELAY_URL`. It runs
 * in development mode, like `deadbolt-relay`: a user id is pinned to the first account key
 * that registers it. By default it keeps its state in `.dev/relay.db` (SQLite), so users
 * whose devices live in IndexedDB find each other again after a restart; `--memory` keeps
 * nothing.
 *
 * @module
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createServer } from 'vite';
import { createJsonRelayLogger, createMemoryRelayStore, createRelay, createSqliteRelayStore } from '@deadbolt/relay';

const APP_DIR = fileURLToPath(new URL('..', import.meta.url));

const USAGE = `Usage: pnpm --filter @deadbolt/chat-web dev [options]

  --port <n>          the app's dev server port (default 5173)
  --relay-port <n>    the relay's port (default 8787; 0 = any free port)
  --db <path>         the relay's SQLite database (default .dev/relay.db, in examples/chat-web)
  --memory            keep the relay's state in memory instead (lost on exit)
  -h, --help          this text
`;

function port(value: string | undefined, fallback: number, name: string): number {
  const n = Number(value ?? fallback);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name} must be a port number, not ${value}`);
  return n;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const { values } = parseArgs({
    // `pnpm dev -- --port 5174` passes the `--` through.
    args: args[0] === '--' ? args.slice(1) : args,
    options: {
      port: { type: 'string' },
      'relay-port': { type: 'string' },
      db: { type: 'string' },
      memory: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const appPort = port(values.port, 5173, '--port');
  const relayPort = port(values['relay-port'], 8787, '--relay-port');
  const dbPath = resolve(APP_DIR, values.db ?? '.dev/relay.db');
  if (!values.memory) mkdirSync(dirname(dbPath), { recursive: true });

  // The dev server's origin must be known before the relay starts (its allowed origins),
  // so the port is fixed (strictPort below) rather than picked by Vite.
  const origins = [`http://127.0.0.1:${appPort}`, `http://localhost:${appPort}`];
  const relay = await createRelay({
    store: values.memory ? createMemoryRelayStore() : createSqliteRelayStore({ path: dbPath }),
    host: '127.0.0.1',
    port: relayPort,
    allowedOrigins: origins,
    logger: createJsonRelayLogger({ level: 'warn' }),
    // The relay's own limits: a client start (a reload, a transport switch in Settings)
    // reads its own directory entry skipping the devices it knows, which takes no prekey
    // and so never meets the bundle-fetch limit.
  });

  process.env.VITE_DEADBOLT_RELAY_URL = relay.url;
  const server = await createServer({
    root: APP_DIR,
    configFile: join(APP_DIR, 'vite.config.ts'),
    server: { host: '127.0.0.1', port: appPort, strictPort: true },
  });
  try {
    await server.listen();
  } catch (e) {
    await relay.close();
    throw e;
  }

  process.stdout.write(
    [
      '',
      `  Deadbolt chat-web   http://127.0.0.1:${appPort}/`,
      `  relay               ${relay.url} (WebSocket ${relay.wsUrl}; store ${values.memory ? 'memory' : dbPath})`,
      '',
      '  Open the app in two browser profiles (or a normal and a private window) to be two users.',
      '  DEVELOPMENT MODE: the relay pins each user id to the first key that registers it.',
      '  Ctrl+C stops both.',
      '',
    ].join('\n') + '\n',
  );

  let stopping = false;
  const stop = (): void => {
    if (stopping) process.exit(1);
    stopping = true;
    void Promise.allSettled([server.close(), relay.close()]).then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((e: unknown) => {
  process.stderr.write(`chat-web dev: ${e instanceof Error ? e.message : String(e)}\n\n${USAGE}`);
  process.exit(1);
});
