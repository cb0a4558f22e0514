/**
 * Process plumbing of `pnpm bench:stack`: the server processes (stack-server.ts) and the
 * requests this process sends them, CPU and event-loop accounting, CPU profiles of a
 * chosen stretch, and bounded waits.
 *
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

// --- bounded waits ---------------------------------------------------------------------------------

/** `promise`, or a rejection naming `what` after `ms` milliseconds. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`bench:stack: ${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Resolves once `done()` holds (checked every `everyMs`), or rejects after `ms`. */
export async function waitUntil(done: () => boolean, ms: number, what: string, everyMs = 5): Promise<void> {
  const end = performance.now() + ms;
  while (!done()) {
    if (performance.now() > end) throw new Error(`bench:stack: ${what} not done after ${ms} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// --- CPU and event-loop accounting -------------------------------------------------------------------

/** Calls into the relay's store so far (stack-server.ts counts them; the echo server has none). */
export interface StoreCounters {
  readonly enqueues: number;
  readonly acks: number;
  readonly fetches: number;
  /** Time inside fetch calls (they read synchronously), ms. */
  readonly fetchMs: number;
  /**
   * Event-loop turns in which at least one enqueue or ack was queued: the SQLite store
   * commits each such group in one transaction, so this counts its write commits.
   */
  readonly groups: number;
}

/** A process's CPU time and event-loop activity so far. */
export interface UsageSnapshot {
  readonly store?: StoreCounters;
  /** performance.now() of the process that took it (only differences are used). */
  readonly wallMs: number;
  /** User + system CPU time of the whole process (all its threads), ms. */
  readonly cpuMs: number;
  /** Event-loop active and idle time (performance.eventLoopUtilization), ms. */
  readonly loopActiveMs: number;
  readonly loopIdleMs: number;
}

export function usageSnapshot(store?: StoreCounters): UsageSnapshot {
  const cpu = process.cpuUsage();
  const elu = performance.eventLoopUtilization();
  return { wallMs: performance.now(), cpuMs: (cpu.user + cpu.system) / 1000, loopActiveMs: elu.active, loopIdleMs: elu.idle, ...(store ? { store: { ...store } } : {}) };
}

/** What a process did between two snapshots. */
export interface Usage {
  /** Cores used on average (CPU time ÷ wall time; GC and I/O threads included). */
  readonly cores: number;
  /** Fraction of the time its event loop (its only JavaScript thread) was busy. */
  readonly loopBusy: number;
  /** CPU time, ms. */
  readonly cpuMs: number;
  /** Wall time, ms. */
  readonly wallMs: number;
  /** Store calls in between (the relay only). */
  readonly store?: StoreCounters;
}

export function usageBetween(a: UsageSnapshot, b: UsageSnapshot): Usage {
  const wall = b.wallMs - a.wallMs;
  const active = b.loopActiveMs - a.loopActiveMs;
  const idle = b.loopIdleMs - a.loopIdleMs;
  const store =
    a.store && b.store
      ? {
          enqueues: b.store.enqueues - a.store.enqueues,
          acks: b.store.acks - a.store.acks,
          fetches: b.store.fetches - a.store.fetches,
          fetchMs: b.store.fetchMs - a.store.fetchMs,
          groups: b.store.groups - a.store.groups,
        }
      : undefined;
  return {
    cores: wall > 0 ? (b.cpuMs - a.cpuMs) / wall : 0,
    loopBusy: active + idle > 0 ? active / (active + idle) : 0,
    cpuMs: b.cpuMs - a.cpuMs,
    wallMs: wall,
    ...(store ? { store } : {}),
  };
}

// --- CPU profiles of a stretch --------------------------------------------------------------------

export interface ProfileHandle {
  /** Stops profiling and returns the profile (the `.cpuprofile` JSON of `node --cpu-prof`). */
  stop(): Promise<unknown>;
}

/** Starts V8's sampling profiler in this process (1 ms interval, as `--cpu-prof`). */
export async function startProfile(): Promise<ProfileHandle> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 1000 });
  await session.post('Profiler.start');
  return {
    async stop() {
      const { profile } = await session.post('Profiler.stop');
      await session.post('Profiler.disable');
      session.disconnect();
      return profile;
    },
  };
}

// --- server processes -------------------------------------------------------------------------------

/** A request to a server process. */
export type ServerRequest =
  | { readonly id: number; readonly type: 'stats' | 'usage' | 'profile-start'; readonly file?: undefined }
  | { readonly id: number; readonly type: 'profile-stop'; readonly file: string };

/** A server's memory (after a full GC) and its database's size (file + WAL + shared memory). */
export interface ServerStats {
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly dbBytes: number;
}

type Reply = { readonly id: number; readonly ok: boolean; readonly value: unknown };

const live = new Set<ChildProcess>();
// However this process ends, its server processes end with it.
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** A server process (stack-server.ts) and its address. */
export class ServerProcess {
  private nextId = 1;
  private readonly pending = new Map<number, (r: Reply) => void>();
  private exited = false;

  private constructor(
    readonly mode: 'echo' | 'relay',
    private readonly child: ChildProcess,
    readonly url: string,
    readonly wsUrl: string,
  ) {
    child.on('message', (m) => {
      const r = m as Reply;
      this.pending.get(r.id)?.(r);
      this.pending.delete(r.id);
    });
    child.once('exit', () => {
      this.exited = true;
      live.delete(child);
      for (const resolve of this.pending.values()) resolve({ id: 0, ok: false, value: `${mode} server exited` });
      this.pending.clear();
    });
  }

  /** Forks a server and waits (at most `timeoutMs`) for its address. */
  static async start(mode: 'echo' | 'relay', dbPath?: string, timeoutMs = 30_000): Promise<ServerProcess> {
    const script = fileURLToPath(new URL('./stack-server.ts', import.meta.url));
    const child = fork(script, dbPath ? [mode, dbPath] : [mode], {
      execArgv: ['--conditions=@deadbolt/source', '--import', 'tsx', '--expose-gc'],
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    live.add(child);
    const ready = new Promise<ServerProcess>((resolve, reject) => {
      let buf = '';
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        try {
          const a = JSON.parse(buf.slice(0, nl)) as { url: string; wsUrl: string };
          resolve(new ServerProcess(mode, child, a.url, a.wsUrl));
        } catch (e) {
          reject(e as Error);
        }
      });
      child.once('exit', (code) => reject(new Error(`bench:stack: the ${mode} server exited (code ${code}) before it listened`)));
    });
    try {
      return await withTimeout(ready, timeoutMs, `starting the ${mode} server`);
    } catch (e) {
      child.kill('SIGKILL');
      throw e;
    }
  }

  private request(type: ServerRequest['type'], file: string | undefined, timeoutMs: number): Promise<unknown> {
    if (this.exited) return Promise.reject(new Error(`bench:stack: the ${this.mode} server has exited`));
    const id = this.nextId++;
    const reply = new Promise<Reply>((resolve) => this.pending.set(id, resolve));
    this.child.send({ id, type, ...(file !== undefined ? { file } : {}) });
    return withTimeout(reply, timeoutMs, `the ${this.mode} server's answer to ${type}`).then((r) => {
      if (!r.ok) throw new Error(`bench:stack: ${this.mode} server: ${String(r.value)}`);
      return r.value;
    });
  }

  stats(): Promise<ServerStats> {
    return this.request('stats', undefined, 30_000) as Promise<ServerStats>;
  }

  usage(): Promise<UsageSnapshot> {
    return this.request('usage', undefined, 10_000) as Promise<UsageSnapshot>;
  }

  async profileStart(): Promise<void> {
    await this.request('profile-start', undefined, 10_000);
  }

  async profileStop(file: string): Promise<void> {
    await this.request('profile-stop', file, 30_000);
  }

  /** Asks the server to close (it exits when this process disconnects); kills it after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) this.child.disconnect();
    else this.child.kill('SIGTERM');
    await withTimeout(gone, graceMs, `stopping the ${this.mode} server`).catch(async () => {
      this.child.kill('SIGKILL');
      await withTimeout(gone, 2000, `killing the ${this.mode} server`).catch(() => undefined);
    });
  }
}
