import { readdirSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// The layers of lib/ as CONTRIBUTING.md's "Where things live" lists them, held against every
// import in lib/: a file imports from its own folder and from folders listed below it, never
// from one above, and no files import each other in a circle. Specs and fixtures are held to the
// same rule (a test sits with the layer it tests); they alone may also import test/support/.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAP_HEADING = '## Where things live';

/** How the package names itself (tsconfig paths, vitest aliases): an import of it is an arrow too. */
const SELF: Record<string, string> = {
  'nestjs-k8s': 'lib/index.ts',
  'nestjs-k8s/health': 'lib/health/index.ts',
  'nestjs-k8s/prometheus': 'lib/metrics/index.ts',
};

/** Every file's imports of lib/ files, by file (paths from the repo root); `outside`: the rest. */
interface Graph {
  readonly imports: Map<string, string[]>;
  readonly outside: Map<string, string[]>;
}

/** The folders of the map, top first (`lib/`, `lib/health/`, …), read from CONTRIBUTING.md. */
function readMap(markdown: string): string[] {
  const start = markdown.indexOf(`\n${MAP_HEADING}\n`);
  if (start < 0) throw new Error(`CONTRIBUTING.md has no "${MAP_HEADING}" section`);
  const end = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^- `(lib\/(?:[\w-]+\/)*)`/gm)].map((match) => match[1]);
}

function libFiles(dir = 'lib'): string[] {
  return readdirSync(posix.join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = posix.join(dir, entry.name);
    if (entry.isDirectory()) return libFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

const readSource = (file: string): string => readFileSync(posix.join(ROOT, file), 'utf8');

function readGraph(files: readonly string[], read = readSource): Graph {
  const known = new Set(files);
  const imports = new Map<string, string[]>();
  const outside = new Map<string, string[]>();
  for (const file of files) {
    const source = read(file);
    // Static and dynamic imports and re-exports, type-only ones included; comments and strings
    // are not imports.
    const specifiers = ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
    const inLib: string[] = [];
    const elsewhere: string[] = [];
    for (const specifier of specifiers) {
      let target = SELF[specifier];
      if (target === undefined) {
        if (!specifier.startsWith('.')) continue; // a package or node: module
        target = posix.join(posix.dirname(file), specifier).replace(/\.js$/, '.ts');
      }
      if (known.has(target)) inLib.push(target);
      else elsewhere.push(target);
    }
    imports.set(file, [...new Set(inLib)]);
    outside.set(file, [...new Set(elsewhere)]);
  }
  return { imports, outside };
}

const folderOf = (file: string): string => `${posix.dirname(file)}/`;
const isTest = (file: string): boolean => /\.(spec|fixture)\.ts$/.test(file);

/** What breaks the map's rules, one line each (empty when nothing does). */
function layerProblems(graph: Graph, map: readonly string[]): string[] {
  const problems: string[] = [];
  const rank = new Map(map.map((folder, i) => [folder, i]));
  const folders = new Set([...graph.imports.keys()].map(folderOf));
  for (const folder of map.filter((f, i) => map.indexOf(f) !== i)) {
    problems.push(`${folder} has two lines in the map`);
  }
  for (const folder of folders) {
    if (!rank.has(folder)) problems.push(`${folder} has no line in the map`);
  }
  for (const folder of map) {
    if (!folders.has(folder)) problems.push(`the map lists ${folder}, which holds no .ts file`);
  }
  for (const [file, targets] of graph.imports) {
    const own = rank.get(folderOf(file));
    for (const target of targets) {
      const theirs = rank.get(folderOf(target));
      if (own === undefined || theirs === undefined || theirs >= own) continue;
      problems.push(
        `${file} imports ${target}: ${folderOf(target)} is above ${folderOf(file)} in the map`,
      );
    }
  }
  for (const [file, targets] of graph.outside) {
    for (const target of targets) {
      if (isTest(file) && target.startsWith('test/support/')) continue;
      problems.push(`${file} imports ${target}, which is not a file of lib/`);
    }
  }
  for (const circle of circles(graph.imports)) {
    problems.push(`import circle among ${circle.join(', ')}`);
  }
  return problems;
}

/** Files that import each other in a loop (Tarjan's strongly connected components), sorted. */
function circles(imports: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (file: string): void => {
    index.set(file, index.size);
    low.set(file, index.get(file)!);
    stack.push(file);
    onStack.add(file);
    for (const target of imports.get(file) ?? []) {
      if (!index.has(target)) {
        visit(target);
        low.set(file, Math.min(low.get(file)!, low.get(target)!));
      } else if (onStack.has(target)) {
        low.set(file, Math.min(low.get(file)!, index.get(target)!));
      }
    }
    if (low.get(file) !== index.get(file)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== file);
    if (component.length > 1 || imports.get(file)?.includes(file)) found.push(component.sort());
  };
  for (const file of imports.keys()) if (!index.has(file)) visit(file);
  return found;
}

const map = readMap(readSource('CONTRIBUTING.md'));
const files = libFiles();

describe('the layers of lib/ (CONTRIBUTING.md, "Where things live")', () => {
  it('lists every folder of lib/ once, top first, and imports only go down it', () => {
    expect(map[0]).toBe('lib/');
    expect(layerProblems(readGraph(files), map)).toEqual([]);
  });

  it('sees an upward import of any kind, a circle, a stray import and a folder not in the map', () => {
    // Today's lib/, with lines a careless edit could add.
    const pool = 'lib/memcached/pool/memcached-pool.ts';
    const ring = 'lib/memcached/ring/hash-ring.ts';
    const store = 'lib/memcached/store/memcached.store.ts';
    const added: Record<string, string> = {
      [pool]: `import type { MemcachedStore } from '../store/memcached.store.js';`,
      // A comment is no import; a dynamic import of the package is one (of lib/index.ts).
      [ring]: `// import { CacheService } from '../../cache/cache.service.js';
        export const later = () => import('nestjs-k8s');`,
      [store]: `export { sleep } from '../../../test/support/wait-for.js';`,
    };
    const stray = 'lib/new-folder/thing.ts';
    const read = (file: string): string =>
      file === stray ? '' : `${readSource(file)}\n${added[file] ?? ''}`;

    const problems = layerProblems(readGraph([...files, stray], read), map);
    expect(problems).toHaveLength(5);
    expect(problems).toEqual(
      expect.arrayContaining([
        'lib/new-folder/ has no line in the map',
        `${pool} imports ${store}: lib/memcached/store/ is above lib/memcached/pool/ in the map`,
        `${ring} imports lib/index.ts: lib/ is above lib/memcached/ring/ in the map`,
        `${store} imports test/support/wait-for.ts, which is not a file of lib/`,
        // index -> store -> pool -> ring -> index, and pool -> store: one circle.
        expect.stringMatching(
          /^import circle among (?=.*lib\/index\.ts)(?=.*hash-ring\.ts)(?=.*memcached-pool\.ts)(?=.*memcached\.store\.ts)/,
        ),
      ]),
    );
  });
});
