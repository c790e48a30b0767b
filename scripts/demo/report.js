// The table the demo prints after each step, from the app's own counters (GET /cache/stats)
// and each member's `stats`.
//
//   member       address             process  in the app  items   share  hit ratio  errors
//   memcached-0  127.0.20.1:40001    up       on ring       312   33.1%      92.0%       0
//
// items: entries the member holds (memcached `stats` curr_items, old ones included);
// share: of this step's cache lookups (measured after the change settled), the part the app
// routed to the member; hit ratio: of those lookups; errors: failed cache operations on the
// member during the whole step, change included (a failed cache operation is a miss, never a
// failed request).

/** Printed once before the first table. */
export const LEGEND = [
  'items: entries the member holds (its `stats` curr_items); share: of the cache lookups after',
  'the step settled, the part the app sent to the member; hit ratio: of those lookups; errors:',
  'failed cache operations during the step (each one a miss: requests never fail for them).',
].join('\n');

const ZERO = { hits: 0, misses: 0, errors: 0 };

/** Per-member counters of a `/cache/stats` answer, by `host:port`. */
function counters(stats) {
  return new Map((stats.pool?.members ?? []).map((m) => [m.member, m]));
}

/**
 * What happened to each member between two `/cache/stats` answers. A member that left and came
 * back starts its counters from zero: counters lower than before mean that.
 */
function delta(before, after) {
  const a = counters(after);
  const b = counters(before);
  const result = new Map();
  for (const [id, now] of a) {
    let then = b.get(id) ?? ZERO;
    if (now.hits < then.hits || now.misses < then.misses || now.errors < then.errors) then = ZERO;
    result.set(id, {
      hits: now.hits - then.hits,
      misses: now.misses - then.misses,
      errors: now.errors - then.errors,
    });
  }
  return result;
}

const percent = (part, whole) => (whole === 0 ? '—' : `${((100 * part) / whole).toFixed(1)}%`);

/** Print the end of one step: what the app did, the table and the request counts. */
export function printStep(step) {
  const { pods, atStart, beforeTraffic, atEnd, items, result } = step;
  const window = delta(beforeTraffic, atEnd);
  const change = delta(atStart, beforeTraffic);
  const ring = new Set(atEnd.pool?.ring ?? []);
  const known = new Set(atEnd.servers);

  const rows = pods.map((pod) => {
    const w = window.get(pod.id) ?? ZERO;
    return {
      member: pod.name,
      address: pod.id,
      process: pod.running ? 'up' : 'down',
      app: ring.has(pod.id) ? 'on ring' : known.has(pod.id) ? 'ejected' : 'not in DNS',
      items: items.get(pod.id)?.curr_items ?? '—',
      lookups: w.hits + w.misses,
      hits: w.hits,
      errors: w.errors + (change.get(pod.id)?.errors ?? 0),
    };
  });
  const lookups = rows.reduce((sum, r) => sum + r.lookups, 0);
  const hits = rows.reduce((sum, r) => sum + r.hits, 0);
  const errors = rows.reduce((sum, r) => sum + r.errors, 0);

  const header = [
    'member',
    'address',
    'process',
    'in the app',
    'items',
    'share',
    'hit ratio',
    'errors',
  ];
  const table = [
    header,
    ...rows.map((r) => [
      r.member,
      r.address,
      r.process,
      r.app,
      String(r.items),
      percent(r.lookups, lookups),
      percent(r.hits, r.lookups),
      String(r.errors),
    ]),
    ['total', '', '', '', '', percent(lookups, lookups), percent(hits, lookups), String(errors)],
  ];
  const widths = header.map((_, c) => Math.max(...table.map((row) => row[c].length)));
  // Text columns left-aligned, numbers right-aligned.
  const format = (row) =>
    row.map((cell, c) => (c < 4 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');

  console.log(`  ${step.note}`);
  for (const line of step.log) console.log(`  app log: ${line}`);
  console.log('');
  for (const row of table) console.log(`  ${format(row).trimEnd()}`);
  console.log(
    `  ${result.requests} requests, ${result.failed} failed · ${lookups} cache lookups, ` +
      `hit ratio ${percent(hits, lookups)}`,
  );
}
