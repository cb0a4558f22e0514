/**
 * A child process for `cross-process-lock.test.ts`: opens the store at argv[2] and runs
 * argv[3] read-modify-write increments (after printing `ready` and reading a line from stdin) of one counter, each inside `exclusive`, with a
 * yield to the event loop between the read and the write (where a missing lock lets the
 * other process in). With argv[4] === 'hold', instead takes the lock, reports `held`, and
 * waits forever inside it (the test kills it there); with 'hold-file', holds a write lock
 * on the database file itself for argv[3] ms.
 */
import { createSqliteStorage } from '../src/index.js';

const [path, countArg, mode] = process.argv.slice(2);
const storage = mode === 'hold-file' ? undefined! : createSqliteStorage({ path: path as string });
const key = ['counter'];
const read = async (): Promise<number> => {
  const bytes = await storage.get(key);
  return bytes === undefined ? 0 : new DataView(bytes.buffer).getUint32(0);
};
const exclusive = <T>(fn: () => Promise<T>): Promise<T> => storage.exclusive!(fn);

if (mode === 'hold-file') {
  // Holds a write lock on the database file itself (as a process in the middle of opening
  // or writing it does), then lets go after argv[3] ms.
  const Database = (await import('better-sqlite3')).default;
  const raw = new Database(path as string);
  raw.exec('BEGIN EXCLUSIVE');
  process.stdout.write('held\n');
  setTimeout(() => {
    raw.exec('COMMIT');
    raw.close();
    process.exit(0);
  }, Number(countArg));
} else if (mode === 'hold') {
  await exclusive(async () => {
    process.stdout.write('held\n');
    // Never settles; the interval keeps the process alive (a bare pending promise would
    // let Node exit). The parent kills this process here.
    await new Promise(() => setInterval(() => {}, 60_000));
  });
} else {
  // Start together: report ready, then wait for the parent's go-ahead on stdin.
  process.stdout.write('ready\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  process.stdin.pause();
  for (let i = 0; i < Number(countArg); i++) {
    await exclusive(async () => {
      const current = await read();
      await new Promise((resolve) => setImmediate(resolve));
      const next = new Uint8Array(4);
      new DataView(next.buffer).setUint32(0, current + 1);
      await storage.batch([{ type: 'put', key, value: next }]);
    });
  }
  await storage.close();
  process.stdout.write('done\n');
}
