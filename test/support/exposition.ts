/**
 * Samples of a Prometheus text exposition (`/metrics`), keyed `name{label="value",…}` with the
 * labels sorted; a line that is not a sample or a comment throws.
 */
export function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    const labels = [...(match[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, name, value]) => `${name}="${value}"`)
      .sort();
    samples.set(`${match[1]}{${labels.join(',')}}`, Number(match[3]));
  }
  return samples;
}

/** The key {@link parseExposition} gives a sample of `name` with `labels`. */
export function sampleKey(name: string, labels: Record<string, string> = {}): string {
  const parts = Object.entries(labels)
    .map(([label, value]) => `${label}="${value}"`)
    .sort();
  return `${name}{${parts.join(',')}}`;
}

/** The metric names (sample names: a histogram's `_bucket`, `_sum`, `_count`) an exposition holds. */
export function exposedNames(text: string): Set<string> {
  return new Set([...parseExposition(text).keys()].map((key) => key.slice(0, key.indexOf('{'))));
}
