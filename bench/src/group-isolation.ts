/**
 * Parent side of the group benchmark's process isolation: the same protocol as
 * isolation.ts (whose `serveSuite` the children run), with the children started from
 * `group-worker.ts`. `IsolatedSuite.start` always forks `worker.ts`; if it took the worker
 * module as a parameter, this file would reduce to that call.
 *
 * Why each library runs in its own process: see isolation.ts (libsignal's native code
 * slows allocation-heavy JavaScript that runs later in the same process).
 *
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PreparedBench, RunResult } from './harness.js';

type RequestBody = { readonly cmd: 'prepare' } | { readonly cmd: 'run'; readonly name: string } | { readonly cmd: 'info' } | { readonly cmd: 'cpu' };
type Reply = { readonly id: number } & ({ readonly ok: true; readonly result: unknown } | { readonly ok: false; readonly error: string });

/** The group suites. */
export type GroupSuiteName = 'group-deadbolt' | 'group-libsignal';

/** One child process running one group suite. */
export class GroupIsolatedSuite {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(
    readonly suite: GroupSuiteName,
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

  /** Starts `group-worker.ts` for `suite`; its stdout goes to the parent's stderr (`--json` stays clean). */
  static start(suite: GroupSuiteName, args: readonly string[]): GroupIsolatedSuite {
    const worker = fileURLToPath(new URL('./group-worker.ts', import.meta.url));
    const child = fork(worker, [suite, ...args], {
      execArgv: ['--conditions=@deadbolt/source', '--import', import.meta.resolve('tsx')],
      stdio: ['ignore', 2, 2, 'ipc'],
    });
    return new GroupIsolatedSuite(suite, child);
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
