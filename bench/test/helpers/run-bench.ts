/**
 * Runs one bench script the way its `pnpm` script does (`node --conditions=@deadbolt/source
 * --import tsx src/<script>`), with `--quick --json`, and returns its stdout's JSON lines,
 * for the smoke tests (which check every line's shape, never a speed).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const benchDir = fileURLToPath(new URL('../..', import.meta.url));

/** The `--json` lines of `src/<script> --quick --json`, parsed; `timeoutMs` (if given) kills a script that runs longer. */
export async function runQuickJson(script: string, timeoutMs?: number): Promise<Record<string, unknown>[]> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--conditions=@deadbolt/source', '--import', 'tsx', `src/${script}`, '--quick', '--json'], {
    cwd: benchDir,
    maxBuffer: 16 * 1024 * 1024,
    ...(timeoutMs !== undefined ? { timeout: timeoutMs } : {}),
  });
  return stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
