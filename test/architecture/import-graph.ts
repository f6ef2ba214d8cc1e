// The import graph of src/: every static, side-effect and dynamic relative import of every
// non-test file, resolved to files, grouped by top-level folder (src/<folder>/…; files at src/
// itself are the shared root: errors.ts, exit-codes.ts,
// x509-reflect.ts). Type-only imports count too: a cycle of
// types is still a cycle a reader has to hold in their head, and it becomes a runtime cycle with
// the first value import.
import { readFileSync, globSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// 1: `import … from` / `export … from`; 2: `import('…')`; 3: `import '…'` (side effect only).
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]|(?:^|\n)\s*import\s+['"](\.[^'"]+)['"]/g;

/** One import: `from` and `to` are paths relative to the repository root. */
export interface ImportEdge { from: string; to: string; dynamic: boolean }

export interface ImportGraph {
  /** src/ file → the src/ files it imports. */
  files: Map<string, Set<string>>;
  /** src/ folder → the other src/ folders its files import. */
  folders: Map<string, Set<string>>;
  /** Every import of a src/ file, also those that leave src/ (bench/, test/). */
  edges: ImportEdge[];
}

export const folderOf = (file: string): string => { const parts = file.split('/'); return parts.length > 2 ? parts[1]! : '(root)'; };

/** The top-level folders of src/ (src/<folder>/), whether or not they hold an index.ts. */
export function srcFolders(): string[] {
  return [...new Set(globSync('src/*/**/*.ts', { cwd: ROOT }).map(folderOf))].sort();
}

export function importGraph(): ImportGraph {
  const files = new Map<string, Set<string>>();
  const folders = new Map<string, Set<string>>();
  const edges: ImportEdge[] = [];
  for (const f of globSync('src/**/*.ts', { cwd: ROOT })) {
    if (f.endsWith('.test.ts')) continue;
    const src = readFileSync(join(ROOT, f), 'utf8');
    const out = new Set<string>();
    for (const m of src.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      const target = relative(ROOT, normalize(join(ROOT, dirname(f), spec)));
      edges.push({ from: f, to: target, dynamic: m[2] !== undefined });
      if (!target.startsWith('src/')) continue;
      out.add(target);
      const a = folderOf(f); const b = folderOf(target);
      if (a !== b) { if (!folders.has(a)) folders.set(a, new Set()); folders.get(a)!.add(b); }
    }
    files.set(f, out);
  }
  return { files, folders, edges };
}

/** Strongly connected components with more than one member (Tarjan): the cycles. */
export function cycles(g: Map<string, Set<string>>): string[][] {
  let index = 0;
  const idx = new Map<string, number>(); const low = new Map<string, number>();
  const stack: string[] = []; const on = new Set<string>(); const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index); low.set(v, index); index++; stack.push(v); on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const c: string[] = [];
      let w: string;
      do { w = stack.pop()!; on.delete(w); c.push(w); } while (w !== v);
      if (c.length > 1) out.push(c.sort());
    }
  };
  for (const v of g.keys()) if (!idx.has(v)) visit(v);
  return out;
}
