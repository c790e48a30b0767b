import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/run-command.js';

// What users read stays true: the TypeScript blocks of the README and docs/ compile, as files of
// a CommonJS Nest app (`nest new`'s shape) against the package as installed, and every relative
// link of the Markdown files resolves, anchors included. `dist/` is built by the global setup.

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
/** The documents whose TypeScript blocks are user code to compile. */
const COMPILED = DOCS.filter((d) => d === 'README.md' || d.startsWith('docs/'));

const read = (doc: string): string => readFileSync(join(ROOT, doc), 'utf8');

/** Fenced blocks with their language; the text outside them. */
function fences(text: string): { blocks: Array<{ lang: string; code: string }>; prose: string } {
  const blocks: Array<{ lang: string; code: string }> = [];
  const prose = text.replace(/^```(\S*)\n([\s\S]*?)^```$/gm, (_all, lang: string, code: string) => {
    blocks.push({ lang, code });
    return '';
  });
  return { blocks, prose };
}

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

describe('documentation links', () => {
  it.each(DOCS)('every relative link of %s resolves', (doc) => {
    const { prose } = fences(read(doc));
    const links = [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]);
    for (const link of links.filter((l) => !/^[a-z]+:/i.test(l))) {
      const [path, anchor] = link.split('#');
      const target = path ? join(dirname(join(ROOT, doc)), path) : join(ROOT, doc);
      expect(existsSync(target), `${doc}: ${link}`).toBe(true);
      if (anchor && target.endsWith('.md')) {
        const known = anchors(readFileSync(target, 'utf8'));
        expect([...known], `${doc}: ${link}`).toContain(anchor);
      }
    }
  });

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

  it('is short, and installs before any other command', () => {
    expect(Buffer.byteLength(readme)).toBeLessThanOrEqual(12 * 1024);
    const commands = fences(readme).blocks.filter((b) => b.lang === 'sh');
    expect(commands[0].code).toMatch(/^npm install nestjs-k8s /);
  });

  it('names the test command CI runs', () => {
    const pkg = JSON.parse(read('package.json'));
    expect(pkg.scripts.test).toBeDefined();
    expect(read('.ci/run')).toMatch(/\bnpm test$/m);
    expect(readme + read('CONTRIBUTING.md')).toContain('`npm test`');
  });
});

describe('documentation code', () => {
  const dir = mkdtempSync(join(tmpdir(), 'k8s-docs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('every TypeScript block of the README and docs/ compiles in a CommonJS app', () => {
    // An installed copy as a user has it: node_modules/nestjs-k8s plus its peers.
    const modules = join(dir, 'node_modules');
    mkdirSync(modules);
    for (const name of readdirSync(join(ROOT, 'node_modules'))) {
      symlinkSync(join(ROOT, 'node_modules', name), join(modules, name));
    }
    symlinkSync(ROOT, join(modules, 'nestjs-k8s'));
    // No "type": "module": the files are CommonJS, as in an app made by `nest new`.
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'docs', private: true }));

    const files: string[] = [];
    for (const doc of COMPILED) {
      const blocks = fences(read(doc)).blocks.filter((b) => b.lang === 'ts');
      blocks.forEach(({ code }, i) => {
        // `// file: x.ts` names a block that others of the same document import.
        const name = /^\/\/ file: (\S+\.ts)\n/.exec(code)?.[1] ?? `block-${i + 1}.ts`;
        const file = join(dir, doc.replace(/[/.]/g, '_'), name);
        expect(code, `${doc} block ${i + 1} is a module`).toMatch(/^(import|export) /m);
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, code);
        files.push(relative(dir, file));
      });
    }
    expect(files.length).toBeGreaterThanOrEqual(10);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'ES2022',
          strict: true,
          experimentalDecorators: true,
          emitDecoratorMetadata: true,
          skipLibCheck: true,
          types: ['node'],
          noEmit: true,
        },
        files,
      }),
    );
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    let output: string;
    try {
      output = execFileSync(process.execPath, [tsc, '-p', dir, '--listFilesOnly'], {
        cwd: dir,
        encoding: 'utf8',
      });
      execFileSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8' });
    } catch (error) {
      const { stdout } = error as { stdout?: string };
      throw new Error(`tsc found errors in the documentation's code:\n${stdout ?? String(error)}`);
    }
    // Every block was part of the program.
    for (const file of files) expect(output).toContain(join(dir, file));
  }, 180_000);
});
