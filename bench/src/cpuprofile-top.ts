/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): the top functions by self time
 * and by total (inclusive) time, as percentages of all samples.
 *
 * ```
 * node --import tsx src/cpuprofile-top.ts [--top=N] profile.cpuprofile...
 * ```
 *
 * Given several files (`--cpu-prof` writes one per thread, and tsx's loader has its own),
 * it summarises the one with the most samples: the main thread.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly hitCount?: number;
  readonly children?: readonly number[];
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
}

const args = process.argv.slice(2);
const count = Number(args.find((a) => a.startsWith('--top='))?.slice(6) ?? '30');
const files = args.filter((a) => !a.startsWith('--'));
if (files.length === 0) throw new Error('usage: cpuprofile-top.ts [--top=N] <file.cpuprofile>...');
const samples = (p: Profile): number => p.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0);
const [file, profile] = files
  .map((f) => [f, JSON.parse(readFileSync(f, 'utf8')) as Profile] as const)
  .reduce((best, next) => (samples(next[1]) > samples(best[1]) ? next : best));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));

function label(f: CallFrame): string {
  const url = f.url.replace(/^file:\/\//, '');
  const where = url ? `${url.startsWith('/') ? relative(process.cwd(), url) : url}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
}

const self = new Map<string, number>();
const total = new Map<string, number>();
let all = 0;

// Depth-first from the root, with the set of functions on the current stack, so that a
// recursive function's samples are counted once in its total.
function walk(id: number, onStack: Map<string, number>): number {
  const node = byId.get(id)!;
  const name = label(node.callFrame);
  const hits = node.hitCount ?? 0;
  all += hits;
  self.set(name, (self.get(name) ?? 0) + hits);
  onStack.set(name, (onStack.get(name) ?? 0) + 1);
  let subtree = hits;
  for (const c of node.children ?? []) subtree += walk(c, onStack);
  const depth = onStack.get(name)! - 1;
  if (depth === 0) {
    onStack.delete(name);
    total.set(name, (total.get(name) ?? 0) + subtree);
  } else onStack.set(name, depth);
  return subtree;
}
walk(profile.nodes[0]!.id, new Map());

const pct = (x: number): string => `${((100 * x) / all).toFixed(1).padStart(5)}%`;
const top = (m: Map<string, number>): [string, number][] => [...m].sort((a, b) => b[1] - a[1]).slice(0, count);
process.stdout.write(`${file}: ${all} samples\n\nself time\n`);
for (const [name, n] of top(self)) process.stdout.write(`${pct(n)}  ${name}\n`);
process.stdout.write('\ntotal time (inclusive)\n');
for (const [name, n] of top(total)) process.stdout.write(`${pct(n)}  ${name}\n`);
