/**
 * The exclusive lock between real processes (storage contract invariant 11, SECURITY.md
 * D26): two processes sharing one file never interleave their locked sections, and a
 * process killed while holding the lock does not leave the store locked.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { isDeadboltError } from '@deadbolt/spec';
import { createSqliteStorage } from '../src/index.js';

const CHILD = fileURLToPath(new URL('./lock-child.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'deadbolt-sqlite-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function child(args: string[]): { proc: ChildProcess; line: (text: string) => Promise<void>; exit: Promise<number | null> } {
  const proc = spawn(process.execPath, ['--conditions=@deadbolt/source', '--import', 'tsx', CHILD, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  proc.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    for (const w of waiters.splice(0)) if (out.includes(w.text)) w.resolve();
    else waiters.push(w);
  });
  proc.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exit = new Promise<number | null>((resolve) =>
    proc.on('exit', (code) => {
      if (code !== 0 && code !== null) process.stderr.write(err);
      resolve(code);
    }),
  );
  return {
    proc,
    exit,
    line: (text) =>
      new Promise<void>((resolve, reject) => {
        if (out.includes(text)) return resolve();
        waiters.push({ text, resolve });
        void exit.then(() => reject(new Error(`child exited before printing ${text}: ${err}`)));
      }),
  };
}

const counter = async (path: string): Promise<number> => {
  const storage = createSqliteStorage({ path });
  const bytes = await storage.get(['counter']);
  await storage.close();
  return bytes === undefined ? 0 : new DataView(bytes.buffer).getUint32(0);
};

describe('storage-sqlite exclusive lock across processes (SECURITY.md D26)', () => {
  test('two processes run 2 x 200 locked read-modify-write increments: none is lost', async () => {
    const path = join(dir, 'shared.db');
    const a = child([path, '200']);
    const b = child([path, '200']);
    await Promise.all([a.line('ready'), b.line('ready')]);
    a.proc.stdin!.write('go\n');
    b.proc.stdin!.write('go\n');
    expect(await Promise.all([a.exit, b.exit])).toEqual([0, 0]);
    expect(await counter(path)).toBe(400);
  }, 60_000);

  test('opening a database another process holds locked waits for it (busy timeout) instead of failing', async () => {
    const path = join(dir, 'opening.db');
    const holder = child([path, '300', 'hold-file']);
    await holder.line('held');
    // Synchronous inside: waits up to the busy timeout (5 s) for the holder's 300 ms.
    const storage = createSqliteStorage({ path });
    await storage.batch([{ type: 'put', key: ['k'], value: Uint8Array.of(1) }]);
    expect(await storage.get(['k'])).toEqual(Uint8Array.of(1));
    await storage.close();
    expect(await holder.exit).toBe(0);
  }, 60_000);

  test('a process killed while holding the lock releases it; a waiter times out with STORAGE_BUSY while it is held', async () => {
    const path = join(dir, 'killed.db');
    const holder = child([path, '0', 'hold']);
    await holder.line('held');
    const storage = createSqliteStorage({ path, lockTimeoutMs: 100 });
    const busy = await storage.exclusive!(async () => 'ran').catch((e: unknown) => e);
    expect(isDeadboltError(busy, 'STORAGE_BUSY'), String(busy)).toBe(true);
    holder.proc.kill('SIGKILL');
    await holder.exit;
    expect(await storage.exclusive!(async () => 'ran')).toBe('ran');
    await storage.close();
  }, 60_000);
});
