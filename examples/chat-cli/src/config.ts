/**
 * Settings: command-line flags, an optional JSON config file (flags win), and the
 * profile this device keeps in its data directory (who it is, its contacts).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

export type TransportKind = 'websocket' | 'http';

export interface Settings {
  /** Directory holding this device's SQLite store and profile. */
  readonly data: string;
  /** The user to sign up as or link to (needed on the first run only). */
  readonly user: string | undefined;
  /** This device's id (first run only; a random `cli-xxxx` by default). */
  readonly device: string | undefined;
  readonly transport: TransportKind;
  /** The relay's HTTP address, for example http://127.0.0.1:8787. */
  readonly relay: string;
}

export const USAGE = `Usage: chat-cli --data <dir> [--user <id>] [--device <id>] [--transport websocket|http]
                [--relay <http://host:port>] [--config <file.json>]

  --data <dir>         this device's directory (SQLite store + profile); created if missing
  --user <id>          your user id (first run only: /signup or /link then uses it)
  --device <id>        this device's id (first run only; default cli-<random>)
  --transport <t>      websocket (default) or http (long-polling)
  --relay <url>        the relay (default http://127.0.0.1:8787)
  --config <file>      a JSON file with any of the keys above, e.g. {"relay": "...", "transport": "http"}
`;

/** Parses flags and the config file. Throws an Error with a readable message. */
export function loadSettings(argv: readonly string[]): Settings {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      data: { type: 'string' },
      user: { type: 'string' },
      device: { type: 'string' },
      transport: { type: 'string' },
      relay: { type: 'string' },
      config: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) throw new Error(USAGE);
  const file: Record<string, unknown> = values.config ? JSON.parse(readFileSync(values.config, 'utf8')) : {};
  const pick = (key: string): string | undefined => {
    const v = (values as Record<string, unknown>)[key] ?? file[key];
    if (v !== undefined && typeof v !== 'string') throw new Error(`${key} must be a string`);
    return v;
  };
  const data = pick('data');
  if (!data) throw new Error(`--data is required\n\n${USAGE}`);
  const transport = pick('transport') ?? 'websocket';
  if (transport !== 'websocket' && transport !== 'http') throw new Error(`--transport must be websocket or http, not ${transport}`);
  return { data: resolve(data), user: pick('user'), device: pick('device'), transport, relay: pick('relay') ?? 'http://127.0.0.1:8787' };
}

/** What the data directory remembers besides the store. */
export interface Profile {
  readonly userId: string;
  readonly deviceId: string;
  contacts: string[];
}

const profilePath = (dir: string): string => join(dir, 'profile.json');
export const storePath = (dir: string): string => {
  mkdirSync(dir, { recursive: true });
  return join(dir, 'deadbolt.db');
};

/** The profile, or undefined on the first run (no identity yet). */
export function readProfile(dir: string): Profile | undefined {
  return existsSync(profilePath(dir)) ? (JSON.parse(readFileSync(profilePath(dir), 'utf8')) as Profile) : undefined;
}

export function writeProfile(dir: string, profile: Profile): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(profilePath(dir), `${JSON.stringify(profile, null, 2)}\n`);
}

export const randomDeviceId = (): string => `cli-${randomBytes(2).toString('hex')}`;
