import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleApp, fences, typescriptBlocks } from '../support/doc-app.mjs';
import { compileDocsProject, writeDocsProject } from '../support/docs-project.js';
import { ROOT } from '../support/run-command.js';

// What users read stays true: the TypeScript blocks of the README and docs/ compile, as files of
// a CommonJS Nest app (`nest new`'s shape) and of an ESM one, against the package as installed;
// the example app they form is whole (`npm run test:compat` runs it); every link resolves,
// anchors included; and the README's links work where the package's page shows it, on the npm
// registry, which has the README but none of the files beside it. `dist/` is built by the global
// setup.

const DOCS = [
  'README.md',
  'CONTRIBUTING.md',
  'CHANGELOG.md',
  'SECURITY.md',
  'sample/k8s/README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

const read = (doc: string): string => readFileSync(join(ROOT, doc), 'utf8');
const pkg = JSON.parse(read('package.json')) as { repository: { url: string }; homepage: string };
/** The repository's web address, from package.json (`git+https://…/x.git` → `https://…/x`). */
const REPOSITORY = pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
/** A link into the repository's default branch: the file it names in this checkout. */
const REPOSITORY_FILE = new RegExp(
  `^${REPOSITORY.replace(/[.]/g, '\\.')}/(?:blob|tree)/main/(.+)$`,
);

/** GitHub's anchor for each heading of a Markdown text. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const [, heading] of fences(text).prose.matchAll(/^#{1,6}\s+(.+)$/gm)) {
    const base = heading
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

const links = (doc: string): string[] =>
  [...fences(read(doc)).prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]);

/** The file (and anchor) a link names in this checkout; undefined for a link outside it. */
function target(doc: string, link: string): { path: string; anchor?: string } | undefined {
  const [address, anchor] = link.split('#');
  const inRepository = REPOSITORY_FILE.exec(address)?.[1];
  if (inRepository) return { path: join(ROOT, inRepository), anchor };
  if (/^[a-z]+:/i.test(link)) return undefined;
  return { path: address ? join(dirname(join(ROOT, doc)), address) : join(ROOT, doc), anchor };
}

describe('documentation links', () => {
  it.each(DOCS)('every link of %s into the repository resolves', (doc) => {
    for (const link of links(doc)) {
      const found = target(doc, link);
      if (!found) continue;
      expect(existsSync(found.path), `${doc}: ${link}`).toBe(true);
      if (found.anchor && found.path.endsWith('.md')) {
        const known = anchors(readFileSync(found.path, 'utf8'));
        expect([...known], `${doc}: ${link}`).toContain(found.anchor);
      }
    }
  });

  it("the README's links are absolute: they work on the registry's page, which has no docs/", () => {
    const readme = links('README.md');
    expect(readme.length).toBeGreaterThan(10);
    for (const link of readme) {
      if (link.startsWith('#')) continue; // a heading of the README itself
      expect(link, 'a README link').toMatch(/^https:\/\//);
    }
    // The files the README points at are in the repository package.json names.
    expect(readme.filter((l) => REPOSITORY_FILE.test(l.split('#')[0])).length).toBeGreaterThan(10);
    expect(pkg.homepage).toBe(`${REPOSITORY}#readme`);
  });

  it.each(DOCS.filter((doc) => doc.startsWith('docs/')))(
    'the table of contents of %s, if it has one, lists every section',
    (doc) => {
      const text = read(doc);
      const listed = [...text.matchAll(/^\s*- \[[^\]]+\]\(#([^)]+)\)/gm)].map((m) => m[1]);
      if (listed.length === 0) return;
      // Every section and subsection (## and ###), by GitHub's anchor.
      for (const [, heading] of fences(text).prose.matchAll(/^#{2,3} (.+)$/gm)) {
        const [anchor] = anchors(`## ${heading}\n`);
        expect(listed, `${doc}: "${heading}" is not in its table of contents`).toContain(anchor);
      }
    },
  );

  it('the anchors follow GitHub (a check of the check)', () => {
    expect([...anchors('# A `b` c\n## Wiring: one call in `main.ts`\n## A `b` c\n')]).toEqual([
      'a-b-c',
      'wiring-one-call-in-maints',
      'a-b-c-1',
    ]);
  });
});

describe('the README', () => {
  const readme = read('README.md');

  it('is short', () => {
    // Counted without link targets: the absolute links add length nobody reads.
    const text = readme.replace(/\]\([^)\s]+\)/g, ']()');
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(12 * 1024);
  });

  it('gives, on its first screen, the commands that run the demo and the tests from a clone', () => {
    const firstScreen = readme.split('\n').slice(0, 60).join('\n');
    const [first] = fences(firstScreen).blocks.filter((b) => b.lang === 'sh');
    expect(first.code).toMatch(/^npm ci && npm run demo\b/m);
    expect(first.code).toMatch(/^npm test\b/m);
    const pkgScripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> })
      .scripts;
    expect(pkgScripts.demo).toBeDefined();
    // CI runs the same command: a line of .ci/run that is exactly `npm test` (or its `step`).
    expect(read('.ci/run')).toMatch(/^(step "[^"]*" )?npm test$/m);
    // And the install line comes right after.
    const commands = fences(readme).blocks.filter((b) => b.lang === 'sh');
    expect(commands[1].code).toMatch(/^npm install nestjs-k8s /);
  });
});

describe('the example app', () => {
  const app = exampleApp();

  it('is whole: an entry, one AppModule, the files it imports, ESM-valid relative imports', () => {
    expect([...app.keys()].sort()).toEqual([
      'src/app.module.ts',
      'src/database.options.ts',
      'src/health/health.module.ts',
      'src/items/item.entity.ts',
      'src/items/items.controller.ts',
      'src/main.ts',
      'src/migrations/1733200000000-create-items.ts',
    ]);
    for (const [path, code] of app) {
      for (const [, specifier] of code.matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
        // Node's ES modules need the extension; TypeScript maps `.js` to the `.ts` file.
        expect(specifier, `${path} imports ${specifier}`).toMatch(/\.js$/);
        const imported = join(dirname(path), specifier.replace(/\.js$/, '.ts'));
        expect([...app.keys()], `${path} imports ${specifier}`).toContain(imported);
      }
    }
    const modules = [...app.values()].join('\n').match(/export class AppModule\b/g);
    expect(modules).toHaveLength(1);
  });

  it('is everything the README shows: no README block outside it', () => {
    const blocks = typescriptBlocks().filter((b) => b.doc === 'README.md');
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    for (const block of blocks) expect(block.file, `README.md:${block.line}`).toBeDefined();
  });

  it('a file shown in two places that differ is an error (a check of the check)', () => {
    const root = mkdtempSync(join(tmpdir(), 'k8s-doc-app-'));
    try {
      mkdirSync(join(root, 'docs'));
      const block = (text: string) => '```ts\n// file: src/a.ts\n' + text + '\n```\n';
      writeFileSync(join(root, 'README.md'), block('export const a = 1;'));
      writeFileSync(join(root, 'docs/x.md'), block('export const a = 2;'));
      expect(() => exampleApp(root)).toThrow(
        /src\/a\.ts differs between README\.md:1 and docs\/x\.md:1/,
      );
      writeFileSync(join(root, 'docs/x.md'), block('export const a = 1;'));
      expect([...exampleApp(root).keys()]).toEqual(['src/a.ts']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('documentation code', () => {
  // Made when a test here runs: a filtered run skips this block's hooks.
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'k8s-docs-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // CommonJS: no "type" in package.json, as in an app made by Nest 11's `nest new`; ESM: a Nest 12
  // app with "type": "module", where relative imports need their `.js`.
  it.each(['commonjs', 'module'] as const)(
    'every TypeScript block of the README and docs/ compiles in a %s app',
    (type) => {
      const project = join(dir, type);
      const files = writeDocsProject(project, type);
      for (const block of typescriptBlocks()) {
        expect(block.code, `${block.doc}:${block.line} is a module`).toMatch(/^(import|export) /m);
      }
      expect(files.length).toBeGreaterThanOrEqual(15);
      const listed = compileDocsProject(project, files);
      // Every block was part of the program.
      for (const file of files) expect(listed).toContain(join(project, file));
    },
    180_000,
  );
});

describe('test:compat', () => {
  it('builds its apps from the documentation, with no app code of its own', () => {
    const combination = read('test/compat/combination.mjs');
    expect(combination).toMatch(/exampleApp\(\)/);
    expect(existsSync(join(ROOT, 'test/compat/app'))).toBe(false);
    // What it copies beside the docs' files: the tsconfig of each Nest line, nothing in src/.
    for (const template of readdirSync(join(ROOT, 'test/compat/templates'))) {
      const files = readdirSync(join(ROOT, 'test/compat/templates', template), { recursive: true });
      expect(
        files.map(String).filter((f) => f.endsWith('.ts')),
        template,
      ).toEqual([]);
    }
  });
});
