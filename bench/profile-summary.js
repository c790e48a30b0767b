// Self time of a `.cpuprofile` by package and by function, as a share of all samples, and in
// µs per op when given the op count `bench/profile.js` printed (the whole profile divided by
// it: start-up and filling show up as their own functions, the hot ones are the op's):
//   node bench/profile-summary.js FILE [top functions, default 25] [ops]
import { readFileSync } from 'node:fs';

const [file, top = '25', ops] = process.argv.slice(2);
if (!file) throw new Error('usage: node bench/profile-summary.js FILE.cpuprofile [N] [ops]');
const profile = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));

/** Where a frame's code lives: a package, this project's dist, a node: module, or native. */
function packageOf(url) {
  if (url === '') return '(native, GC, idle)';
  const inModules = url.split('node_modules/')[1];
  if (inModules) {
    const parts = inModules.split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  if (url.includes('/dist/lib/')) return 'nestjs-k8s (dist)';
  if (url.includes('/bench/')) return 'bench';
  return url.startsWith('node:') ? 'node internals' : url;
}

const byFunction = new Map();
const byPackage = new Map();
let total = 0;
profile.samples.forEach((id, i) => {
  const us = profile.timeDeltas[i] ?? 0;
  total += us;
  const { functionName, url, lineNumber } = nodes.get(id);
  const where = url.includes('node_modules/')
    ? url.replace(/^.*node_modules\//, '')
    : url.replace(/^.*\/(dist|bench)\//, '$1/');
  const name = `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  const pkg = packageOf(url);
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
});

const show = (title, times, n) => {
  console.log(`-- ${title}`);
  for (const [name, us] of [...times].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    const perOp = ops ? `${(us / Number(ops)).toFixed(1).padStart(8)} µs/op  ` : '';
    console.log(`${((100 * us) / total).toFixed(1).padStart(5)} %  ${perOp}${name}`);
  }
};
show('self time by package', byPackage, 15);
show('self time by function', byFunction, Number(top));
