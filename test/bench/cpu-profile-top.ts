/**
 * Where a tvsync command spent its time: the functions with the most self time (and the files with
 * the most), and tvsync's own functions by total time, in a V8 CPU profile as written by
 * `npm run bench -- --cpu-prof DIR`. Idle time is the main thread waiting (for answers, mostly).
 *
 *   node dist/test/bench/cpu-profile-top.js DIR/CPU.….cpuprofile [N]
 */
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface Hotspot {
  name: string;
  selfMs: number;
  share: number;
}

/**
 * Self time per function and per file (node_modules collapsed to the package), and the total time
 * (self + callees) of tvsync's own functions (dist/shared), largest first.
 */
export function hotspots(profile: CpuProfile): { functions: Hotspot[]; files: Hotspot[]; ownTotal: Hotspot[]; totalMs: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const functions = new Map<string, number>();
  const files = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    total += us;
    const file = shortFile(frame.url);
    const fn = `${frame.functionName || '(anonymous)'} ${file}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
    functions.set(fn, (functions.get(fn) ?? 0) + us);
    files.set(file || frame.functionName, (files.get(file || frame.functionName) ?? 0) + us);
  }
  // Total time of a function: its own samples and its callees', counted once per call stack
  // (a recursive function is not counted twice).
  const ownTotal = new Map<string, number>();
  const walk = (id: number, onStack: Set<string>): number => {
    const node = byId.get(id)!;
    let us = selfUs.get(id) ?? 0;
    const frame = node.callFrame;
    const own = frame.url.includes('/dist/shared/') ? `${frame.functionName || '(anonymous)'} ${shortFile(frame.url)}:${frame.lineNumber + 1}` : null;
    const counted = own !== null && !onStack.has(own);
    if (counted) onStack.add(own);
    for (const child of node.children ?? []) us += walk(child, onStack);
    if (counted) {
      onStack.delete(own);
      ownTotal.set(own, (ownTotal.get(own) ?? 0) + us);
    }
    return us;
  };
  const root = profile.nodes[0];
  if (root) walk(root.id, new Set());
  const ranked = (m: Map<string, number>) =>
    [...m].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ name, selfMs: us / 1000, share: total ? us / total : 0 }));
  return { functions: ranked(functions), files: ranked(files), ownTotal: ranked(ownTotal), totalMs: total / 1000 };
}

function shortFile(url: string): string {
  if (!url) return '';
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + 'node_modules/'.length).split('/');
    return `${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]} (package)`;
  }
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + '/dist/'.length);
  return url.startsWith('node:') ? url : path.basename(url);
}

if (require.main === module) {
  const [file, count] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node dist/test/bench/cpu-profile-top.js FILE.cpuprofile [N]\n');
    process.exit(2);
  }
  const top = Number(count ?? 15);
  const { functions, files, ownTotal, totalMs } = hotspots(JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile);
  const line = (h: Hotspot) => `${h.selfMs.toFixed(0).padStart(8)} ms ${(h.share * 100).toFixed(1).padStart(5)} %  ${h.name}`;
  process.stdout.write(`${(totalMs / 1000).toFixed(2)} s sampled\n\nself time by function:\n${functions.slice(0, top).map(line).join('\n')}\n\nself time by file or package:\n${files.slice(0, top).map(line).join('\n')}\n\ntotal time (with callees) of tvsync's functions:\n${ownTotal.slice(0, top).map(line).join('\n')}\n`);
}
