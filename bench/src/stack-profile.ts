/**
 * Summaries of the CPU profiles `pnpm bench:stack --profile=DIR` takes of the relay and of
 * the client process: where the samples fall by component (a package, a folder of
 * `@deadbolt/core`, a Node subsystem; native code counts for the component that called
 * it), and the top functions by self and inclusive time. `src/cpuprofile-top.ts` reads
 * the same files.
 *
 * @module
 */
import { relative } from 'node:path';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly hitCount?: number;
  readonly children?: readonly number[];
}
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
}

/** The component a script URL belongs to. */
export function component(url: string): string {
  const u = url.replace(/^file:\/\//, '');
  let m = /\/packages\/([^/]+)\/src\/(?:([^/]+)\/)?([^/]+)\.ts$/.exec(u);
  if (m) {
    const [, pkg, dir, file] = m;
    if (pkg === 'relay') return file === 'sqlite-store' ? 'relay/sqlite-store' : 'relay';
    return `${pkg}/${dir ?? file}`;
  }
  m = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)\//.exec(u);
  if (m) return m[1]!;
  m = /^node:(?:internal\/)?([^/]+)/.exec(u);
  if (m) return `node:${m[1]}`;
  if (u.includes('/bench/src/')) return 'bench';
  return u || '(no script)';
}

function label(f: CallFrame): string {
  const url = f.url.replace(/^file:\/\//, '');
  // tsx compiles each file to one line: the column is then what tells functions apart.
  const where = url ? `${url.startsWith('/') ? relative(process.cwd(), url) : url}:${f.lineNumber + 1}:${f.columnNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
}

export interface ProfileSummary {
  /** Sampled milliseconds in all. */
  readonly totalMs: number;
  /** Of which idle (the event loop waiting). */
  readonly idleMs: number;
  /** Busy samples by component, ms, largest first (GC and "(program)" as their own). */
  readonly components: readonly (readonly [string, number])[];
  readonly topSelf: readonly (readonly [string, number])[];
  readonly topInclusive: readonly (readonly [string, number])[];
}

export function summarize(profile: CpuProfile, top = 12): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const hits = profile.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0);
  const msPerHit = hits > 0 ? (profile.endTime - profile.startTime) / 1000 / hits : 0;
  const comp = new Map<string, number>();
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let idle = 0;
  const add = (m: Map<string, number>, k: string, v: number): void => void m.set(k, (m.get(k) ?? 0) + v);

  // Depth first; a function counts once in its inclusive total however deep it recurses.
  const walk = (id: number, inherited: string, onStack: Map<string, number>): number => {
    const n = byId.get(id)!;
    const f = n.callFrame;
    const name = label(f);
    const h = n.hitCount ?? 0;
    let c: string;
    if (f.functionName === '(idle)') c = '(idle)';
    else if (f.functionName === '(garbage collector)') c = '(garbage collector)';
    else if (f.functionName === '(program)') c = '(program: native, not attributed)';
    else if (f.url) c = component(f.url);
    else c = inherited;
    if (c === '(idle)') idle += h;
    else add(comp, f.url || c.startsWith('(') ? c : `${c} (native)`, h);
    add(self, name, h);
    onStack.set(name, (onStack.get(name) ?? 0) + 1);
    let sum = h;
    for (const child of n.children ?? []) sum += walk(child, f.url ? c : inherited, onStack);
    const depth = onStack.get(name)!;
    if (depth === 1) add(total, name, sum);
    if (depth === 1) onStack.delete(name);
    else onStack.set(name, depth - 1);
    return sum;
  };
  const root = profile.nodes[0];
  if (root) walk(root.id, '(root)', new Map());
  const ms = (entries: Iterable<[string, number]>): [string, number][] => [...entries].map(([k, v]) => [k, v * msPerHit]);
  const sorted = (m: Map<string, number>, skip: (k: string) => boolean): [string, number][] =>
    ms(m)
      .filter(([k]) => !skip(k))
      .sort((a, b) => b[1] - a[1]);
  const notBusy = (k: string): boolean => k === '(idle)' || k.startsWith('(root)') || k.startsWith('(program)');
  return {
    totalMs: hits * msPerHit,
    idleMs: idle * msPerHit,
    components: sorted(comp, () => false),
    topSelf: sorted(self, (k) => notBusy(k)).slice(0, top),
    topInclusive: sorted(total, (k) => notBusy(k) || k.startsWith('(anonymous) node:') || k.startsWith('processTicksAndRejections') || k.startsWith('listOnTimeout') || k.startsWith('processTimers')).slice(0, top),
  };
}

/** A plain-text rendering of a summary. */
export function formatSummary(title: string, s: ProfileSummary, componentsShown = 14): string {
  const busy = s.totalMs - s.idleMs;
  const pct = (v: number, of: number): string => `${((100 * v) / of).toFixed(1)}%`.padStart(6);
  const out = [
    `${title}: ${(s.totalMs / 1000).toFixed(1)} s sampled, event loop busy ${pct(busy, s.totalMs).trim()} (idle ${pct(s.idleMs, s.totalMs).trim()})`,
    '  busy time by component (share of busy samples):',
    ...s.components.slice(0, componentsShown).map(([k, v]) => `    ${pct(v, busy)}  ${k}`),
    '  top functions, self time (share of busy samples):',
    ...s.topSelf.map(([k, v]) => `    ${pct(v, busy)}  ${k}`),
    '  top functions, inclusive time (share of busy samples):',
    ...s.topInclusive.map(([k, v]) => `    ${pct(v, busy)}  ${k}`),
  ];
  return out.join('\n');
}
