// The documentation's TypeScript, as files. Every `ts` block of the README and docs/ is user code:
// a block whose first line is `// file: src/<path>` is that file of the example app
// (docs/example-app.md holds all of them; other pages repeat some, word for word), any other block
// is a snippet beside it. `npm run test:compat` builds its apps from `exampleApp()`;
// test/e2e/docs.e2e-spec.ts compiles every block. Plain JS, so test/compat/*.mjs can import it.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** `// file: src/…` on a block's first line names the example app's file it is. */
const FILE_LINE = /^\/\/ file: (src\/[\w./-]+\.ts)\n/;

/** The documents whose TypeScript blocks are user code: the README and docs/*.md. */
export function codeDocuments(root = ROOT) {
  const docs = readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`);
  return ['README.md', ...docs];
}

/**
 * The fenced blocks of a Markdown text (`lang`, `code`, `line`: the line of the opening fence)
 * and the prose outside them.
 */
export function fences(text) {
  const blocks = [];
  const prose = text.replace(/^```(\S*)\n([\s\S]*?)^```$/gm, (all, lang, code, offset) => {
    blocks.push({ lang, code, line: text.slice(0, offset).split('\n').length });
    return '';
  });
  return { blocks, prose };
}

/**
 * Every TypeScript block of the code documents: `{ doc, index, line, code, file }`, where `file`
 * is the example app's path the block is (`undefined` for a snippet) and `index` counts the
 * document's `ts` blocks from 1.
 */
export function typescriptBlocks(root = ROOT) {
  return codeDocuments(root).flatMap((doc) =>
    fences(readFileSync(join(root, doc), 'utf8'))
      .blocks.filter((block) => block.lang === 'ts')
      .map((block, i) => ({
        doc,
        index: i + 1,
        line: block.line,
        code: block.code,
        file: FILE_LINE.exec(block.code)?.[1],
      })),
  );
}

/**
 * Where a block goes in a project made of the documentation: the example app's file where its
 * first line says, a snippet beside them in `src/` (so that its relative imports reach the app's
 * files) as `src/<document>-<index>.ts`, e.g. `src/docs-cache-3.ts`.
 */
export function blockPath(block) {
  return (
    block.file ?? `src/${block.doc.replace(/\.md$/, '').replace(/\W/g, '-')}-${block.index}.ts`
  );
}

/**
 * The example app as the documentation writes it: a Map of `src/<path>` to its code. A file shown
 * in several places must read the same everywhere; otherwise this throws, naming the places.
 */
export function exampleApp(root = ROOT) {
  const files = new Map();
  const shownAt = new Map();
  for (const block of typescriptBlocks(root).filter((b) => b.file)) {
    const where = `${block.doc}:${block.line}`;
    const known = files.get(block.file);
    if (known !== undefined && known !== block.code) {
      throw new Error(
        `${block.file} differs between ${shownAt.get(block.file)} and ${where}: ` +
          'a file of the example app must read the same wherever it is shown',
      );
    }
    files.set(block.file, block.code);
    shownAt.set(block.file, where);
  }
  return files;
}
