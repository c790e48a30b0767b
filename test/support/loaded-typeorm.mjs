import { createRequire } from 'node:module';
import { basename, join } from 'node:path';

const require = createRequire(import.meta.url);

/**
 * The TypeORM copies this process has loaded, as `<directory in node_modules>@<version>`
 * (`typeorm@1.1.1`, `typeorm-0.3@0.3.31`). TypeORM's files are CommonJS in both lines, and
 * CommonJS modules land in `require.cache` even when imported from ES modules. Plain JS, so a
 * spawned command can import it too.
 */
export function loadedTypeormCopies() {
  const dirs = new Set();
  for (const file of Object.keys(require.cache)) {
    const dir = /^(.*[\\/]node_modules[\\/]typeorm(?:-[^\\/]+)?)[\\/]/.exec(file)?.[1];
    if (dir) dirs.add(dir);
  }
  return [...dirs].map((dir) => `${basename(dir)}@${require(join(dir, 'package.json')).version}`);
}
