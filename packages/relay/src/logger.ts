/**
 * Structured logging. The relay logs events and small fields only: never payload bytes,
 * frames, tokens, challenges, signatures or keys (SECURITY.md F43). Addresses appear
 * only at `debug` level.
 *
 * @module
 */

/** Log levels, least to most severe. */
export type RelayLogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Field values are primitives only, so bytes cannot be logged by accident. */
export type RelayLogFields = Readonly<Record<string, string | number | boolean | undefined>>;

/**
 * Receives the relay's log events: `level`, a kebab-case `event` name
 * (`relay-started`, `auth-failed`, ...) and fields.
 */
export type RelayLogger = (level: RelayLogLevel, event: string, fields: RelayLogFields) => void;

const RANK: Record<RelayLogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Options of {@link createJsonRelayLogger}. */
export interface JsonRelayLoggerOptions {
  /** The least severe level written (default `info`). */
  readonly level?: RelayLogLevel;
  /** Where lines go (default: standard error). */
  readonly write?: (line: string) => void;
  readonly now?: () => number;
}

/**
 * A logger writing one JSON object per line.
 *
 * @example
 * ```ts
 * const relay = await createRelay({ logger: createJsonRelayLogger({ level: 'debug' }) });
 * ```
 */
export function createJsonRelayLogger(options: JsonRelayLoggerOptions = {}): RelayLogger {
  const min = RANK[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const now = options.now ?? Date.now;
  return (level, event, fields) => {
    if (RANK[level] < min) return;
    write(JSON.stringify({ time: new Date(now()).toISOString(), level, event, ...fields }));
  };
}

/** A logger that drops everything. */
export const silentRelayLogger: RelayLogger = () => {};
