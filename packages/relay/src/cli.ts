#!/usr/bin/env node
/**
 * `deadbolt-relay`: runs the reference relay with an SQLite store.
 *
 * ```
 * deadbolt-relay [--port 8080] [--host 127.0.0.1] [--db ./deadbolt-relay.db | --memory]
 *                [--relay-id deadbolt-relay] [--allowed-origin https://app.example ...]
 *                [--log-level info]
 * ```
 *
 * Every flag has an environment variable: `DEADBOLT_RELAY_PORT`, `DEADBOLT_RELAY_HOST`,
 * `DEADBOLT_RELAY_DB`, `DEADBOLT_RELAY_ID`, `DEADBOLT_RELAY_ALLOWED_ORIGINS`
 * (comma-separated), `DEADBOLT_RELAY_LOG_LEVEL`. Flags win.
 *
 * The CLI has no registration hook, so it always runs in development mode: a user id's
 * first account key is pinned on first use. A production relay embeds `createRelay` with
 * `verifyRegistration`.
 *
 * @module
 */
import { parseArgs } from 'node:util';
import { createJsonRelayLogger, type RelayLogLevel } from './logger.js';
import { createMemoryRelayStore } from './memory-store.js';
import { createRelay } from './relay.js';
import { createSqliteRelayStore } from './sqlite-store.js';

const USAGE = `Usage: deadbolt-relay [options]

  --port <n>              port to listen on (env DEADBOLT_RELAY_PORT; default 8080; 0 = any free port)
  --host <addr>           interface (env DEADBOLT_RELAY_HOST; default 127.0.0.1)
  --db <path>             SQLite database file (env DEADBOLT_RELAY_DB; default ./deadbolt-relay.db)
  --memory                keep everything in memory instead (lost on exit)
  --relay-id <id>         relay name devices sign for (env DEADBOLT_RELAY_ID; default deadbolt-relay)
  --allowed-origin <o>    browser origin allowed to connect; repeatable
                          (env DEADBOLT_RELAY_ALLOWED_ORIGINS, comma-separated; default none)
  --log-level <level>     debug | info | warn | error (env DEADBOLT_RELAY_LOG_LEVEL; default info)
  -h, --help              this text

The CLI always runs in DEVELOPMENT MODE (no registration hook): never expose it to the internet.
`;

async function main(): Promise<void> {
  const env = process.env;
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      db: { type: 'string' },
      memory: { type: 'boolean' },
      'relay-id': { type: 'string' },
      'allowed-origin': { type: 'string', multiple: true },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const port = Number(values.port ?? env.DEADBOLT_RELAY_PORT ?? '8080');
  const level = (values['log-level'] ?? env.DEADBOLT_RELAY_LOG_LEVEL ?? 'info') as RelayLogLevel;
  if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new Error(`unknown log level ${level}`);
  const origins = values['allowed-origin'] ?? (env.DEADBOLT_RELAY_ALLOWED_ORIGINS ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const dbPath = values.db ?? env.DEADBOLT_RELAY_DB ?? './deadbolt-relay.db';

  const store = values.memory ? createMemoryRelayStore() : createSqliteRelayStore({ path: dbPath });
  const relay = await createRelay({
    store,
    port,
    host: values.host ?? env.DEADBOLT_RELAY_HOST ?? '127.0.0.1',
    relayId: values['relay-id'] ?? env.DEADBOLT_RELAY_ID ?? 'deadbolt-relay',
    allowedOrigins: origins,
    logger: createJsonRelayLogger({ level }),
  });
  process.stderr.write(
    '\n  *** DEVELOPMENT MODE: no registration hook; account keys are pinned on first use. ***\n' +
      '  *** Never expose this relay to the internet.                                        ***\n\n',
  );
  process.stdout.write(`deadbolt-relay listening on ${relay.url} (WebSocket ${relay.wsUrl}; store ${values.memory ? 'memory' : dbPath})\n`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      process.stderr.write(`deadbolt-relay: ${signal} again, exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    relay.close().then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`deadbolt-relay: close failed: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((e: unknown) => {
  process.stderr.write(`deadbolt-relay: ${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
  process.exit(1);
});
