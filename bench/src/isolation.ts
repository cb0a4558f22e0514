/**
 * Process isolation for benchmarks: each library runs in its own child process, and the
 * parent takes their timed runs round-robin over IPC, one process working at a time.
 *
 * Why: measured on this machine, running libsignal-client's native code in a process
 * leaves that process slower for everything allocation-heavy that runs afterwards
 * (Deadbolt's steady messages lost about 30%, HMAC and small allocations 7-11%, pure
 * arithmetic nothing), and the effect lasts. In one process the order of the figures
 * would decide the ratios; in two processes each library is measured undisturbed by the
 * other, and interleaving still puts both in the same stretches of time.
 *
 * The child runs `worker.ts` with a suite name; a suite builds its benchmarks
 * ({@link Suite}); the parent drives it through {@link IsolatedSuite}.
 *
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ownCpuMs, prepareBench, type OpBench, type PoolBench, type PreparedBench, type RunResult } from './harness.js';

/** What one child process measures. */
export interface Suite {
  /** Every benchmark, by unique name. */
  readonly benches: readonly (OpBench | PoolBench<unknown>)[];
  /** Non-rate figures (sizes, shapes), read after the runs. */
  info(): Promise<Record<string, number>>;
}

/** Options every suite receives. */
export interface SuiteOptions {
  readonly quick: boolean;
}

type RequestBody = { readonly cmd: 'prepare' } | { readonly cmd: 'run'; readonly name: string } | { readonly cmd: 'info' } | { readonly cmd: 'cpu' };
type Request = { readonly id: number } & RequestBody;
type Reply = { readonly id: number } & ({ readonly ok: true; readonly result: unknown } | { readonly ok: false; readonly error: string });

/** Child side: builds the suite on `prepare`, then serves `run` and `info` requests one at a time. */
export function serveSuite(build: (options: SuiteOptions) => Promise<Suite>, options: SuiteOptions): void {
  let suite: Suite | undefined;
  const prepared = new Map<string, PreparedBench>();
  const send = (reply: Reply): void => void process.send!(reply);
  process.on('disconnect', () => process.exit(0));
  process.on('message', (message) => {
    const req = message as Request;
    void (async () => {
      try {
        let result: unknown;
        if (req.cmd === 'prepare') {
          suite = await build(options);
          for (const b of suite.benches) prepared.set(b.name, await prepareBench(b));
          result = [...prepared.keys()];
        } else if (req.cmd === 'run') {
          const b = prepared.get(req.name);
          if (!b) throw new Error(`no benchmark ${req.name}`);
          result = await b.run();
        } else if (req.cmd === 'cpu') {
          result = ownCpuMs();
        } else {
          if (!suite) throw new Error('not prepared');
          result = await suite.info();
        }
        send({ id: req.id, ok: true, result });
      } catch (e) {
        send({ id: req.id, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      }
    })();
  });
}

/** Parent side: one child process running one suite. */
export class IsolatedSuite {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(
    readonly suite: string,
    private readonly child: ChildProcess,
  ) {
    child.on('message', (message) => {
      const reply = message as Reply;
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (reply.ok) p.resolve(reply.result);
      else p.reject(new Error(`${suite} worker: ${reply.error}`));
    });
    child.on('exit', (code, signal) => {
      for (const p of this.pending.values()) p.reject(new Error(`${suite} worker exited (code ${code}, signal ${signal})`));
      this.pending.clear();
    });
  }

  /**
   * Starts `worker` (default `worker.ts`; the group bench passes `group-worker.ts`) for
   * `suite` in a child process that loads TypeScript sources the way `pnpm bench` does.
   * Its stdout goes to the parent's stderr, so that `--json` output stays clean.
   */
  static start(suite: string, args: readonly string[], worker: URL = new URL('./worker.ts', import.meta.url)): IsolatedSuite {
    const child = fork(fileURLToPath(worker), [suite, ...args], {
      execArgv: ['--conditions=@deadbolt/source', '--import', import.meta.resolve('tsx')],
      stdio: ['ignore', 2, 2, 'ipc'],
    });
    return new IsolatedSuite(suite, child);
  }

  private call(request: RequestBody): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ ...request, id });
    });
  }

  /** Builds and warms up every benchmark in the child; returns them, ready for timed runs. */
  async prepare(): Promise<PreparedBench[]> {
    const names = (await this.call({ cmd: 'prepare' })) as string[];
    return names.map((name) => ({ name, run: async () => (await this.call({ cmd: 'run', name })) as RunResult }));
  }

  /** The suite's non-rate figures. */
  async info(): Promise<Record<string, number>> {
    return (await this.call({ cmd: 'info' })) as Record<string, number>;
  }

  /** The child's CPU time so far (user + system), in milliseconds. */
  async cpuMs(): Promise<number> {
    return (await this.call({ cmd: 'cpu' })) as number;
  }

  /** Lets the child exit. */
  close(): void {
    if (this.child.connected) this.child.disconnect();
  }
}
