import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { blockPath, typescriptBlocks } from './doc-app.mjs';
import { ROOT } from './run-command.js';

/**
 * A project made of the documentation's TypeScript blocks (the example app's files and every
 * snippet, where `blockPath` puts them), in `dir`, against the package as a user has it installed:
 * node_modules/nestjs-k8s is this checkout (its built dist/), the peers are the repository's.
 * `type`: the package.json type, `commonjs` as in Nest 11's `nest new` or `module` as in a Nest 12
 * ESM app. Returns the files written, relative to `dir`.
 */
export function writeDocsProject(dir: string, type: 'commonjs' | 'module'): string[] {
  const modules = join(dir, 'node_modules');
  mkdirSync(modules, { recursive: true });
  for (const name of readdirSync(join(ROOT, 'node_modules'))) {
    symlinkSync(join(ROOT, 'node_modules', name), join(modules, name));
  }
  symlinkSync(ROOT, join(modules, 'nestjs-k8s'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'docs', private: true, type }));
  const files: string[] = [];
  for (const block of typescriptBlocks()) {
    const path = blockPath(block);
    if (files.includes(path)) continue; // an example app file shown twice (the same text)
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), block.code);
    files.push(path);
  }
  return files;
}

/**
 * Compiles the project's `files` with tsc (`module: nodenext`, strict, Nest's decorator
 * settings): into dist/ with `emit`, else a check only. Returns tsc's list of the program's files;
 * throws with tsc's errors.
 */
export function compileDocsProject(dir: string, files: string[], { emit = false } = {}): string {
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
        ...(emit ? { outDir: 'dist', rootDir: 'src' } : { noEmit: true }),
      },
      files,
    }),
  );
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  try {
    const listed = execFileSync(process.execPath, [tsc, '-p', dir, '--listFilesOnly'], {
      cwd: dir,
      encoding: 'utf8',
    });
    execFileSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8' });
    return listed;
  } catch (error) {
    const { stdout } = error as { stdout?: string };
    throw new Error(`tsc found errors in the documentation's code:\n${stdout ?? String(error)}`);
  }
}
