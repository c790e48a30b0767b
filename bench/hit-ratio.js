// Hit ratio over time through membership changes (issue 7): a 3→4 scale-up and a member restart
// with warm-up off and on, and one of 4 members killed with 1 and 2 replicas.
//
// Each scenario runs on fresh memcached members on 127.0.31.x, found through DNS (the bench's
// DNS server, refreshInterval 1000 ms), behind Keyv (so values carry Keyv's envelope with
// `expires`, which a warm-up copy keeps). The load is an application's cache-aside read path at
// a fixed rate: get a random key of the filled set; on a miss, count it and set the value again
// (as the app would after reading its database). Each op counts in the 500 ms bucket it started
// in, from `beforeMs` before the change to `afterMs` after it.
import Keyv from 'keyv';
import { MemcachedStore } from '../dist/lib/index.js';
import { commonFreePort, progress, sleep, startMemcached } from './support.js';

const HOSTS = ['127.0.31.1', '127.0.31.2', '127.0.31.3', '127.0.31.4'];
const REFRESH_INTERVAL = 1000;
/** Warm-up "on": the default for the default refreshInterval (30 s), long enough for the window. */
const WARMUP_ON = 60_000;
/** Bucket width; `beforeMs` and `afterMs` are multiples of it, so a bucket never spans 0 s. */
const BUCKET_MS = 500;
const TICK_MS = 10;
/** Reads beyond this many in flight are dropped and counted (the members are too slow). */
const MAX_IN_FLIGHT = 1000;
const quiet = { log() {}, warn() {}, error() {}, debug() {}, verbose() {} };

/** The six series: which change, which setting, and the store options that make it. */
export const HIT_RATIO_SERIES = [
  {
    id: 'scale-off',
    change: 'scale-up',
    label: '3 → 4 members, warm-up off',
    options: { warmupPeriod: 0 },
  },
  {
    id: 'scale-on',
    change: 'scale-up',
    label: '3 → 4 members, warm-up on',
    options: { warmupPeriod: WARMUP_ON },
  },
  {
    id: 'restart-off',
    change: 'restart',
    label: '1 of 4 restarted empty, warm-up off',
    options: { warmupPeriod: 0 },
  },
  {
    id: 'restart-on',
    change: 'restart',
    label: '1 of 4 restarted empty, warm-up on',
    options: { warmupPeriod: WARMUP_ON },
  },
  {
    id: 'kill-r1',
    change: 'kill',
    label: '1 of 4 killed, replicas: 1',
    options: { warmupPeriod: 0, replicas: 1 },
  },
  {
    id: 'kill-r2',
    change: 'kill',
    label: '1 of 4 killed, replicas: 2',
    options: { warmupPeriod: 0, replicas: 2 },
  },
];

export const CHANGES = {
  'scale-up': 'DNS goes from 3 to 4 members (the 4th empty) at 0 s',
  restart: 'one of 4 members SIGKILLed at 0 s and restarted empty (same address, still in DNS)',
  kill: 'one of 4 members SIGKILLed at 0 s (still in DNS, never back)',
};

/**
 * Runs every series; returns `{ settings, series: [{ ...series, buckets, events, dropped }] }`
 * where `buckets[i] = { t (s, bucket start from the change), hits, misses }` and
 * `events[i] = { at (s from the change), text }` (what the store reported, and the restart).
 */
export async function hitRatioFigures({ dns, quick }) {
  // The restart comes more than a second after the ejection: memcached's `uptime` counts whole
  // seconds, and a member that may not have restarted is taken back with a new generation (every
  // key then misses). The restarted member is probed back every `retryTimeout` (default 30 s).
  const settings = quick
    ? { keys: 2000, rate: 2000, beforeMs: 500, afterMs: 2000, restartDelayMs: 1300 }
    : { keys: 40_000, rate: 2000, beforeMs: 2000, afterMs: 15_000, restartDelayMs: 3000 };
  settings.retryTimeout = quick ? 500 : 2000;
  settings.refreshInterval = REFRESH_INTERVAL;
  settings.bucketMs = BUCKET_MS;
  settings.warmupOn = WARMUP_ON;
  const series = [];
  for (const spec of HIT_RATIO_SERIES) {
    progress(`hit ratio: ${spec.label}`);
    // A port per series: the last series' members may still hold theirs while they die.
    const port = await commonFreePort(HOSTS);
    series.push({ ...spec, ...(await runSeries(dns, port, spec, settings)) });
  }
  return { settings, series };
}

async function runSeries(dns, port, spec, settings) {
  const members = await Promise.all(HOSTS.map((host) => startMemcached(host, port)));
  const name = `${spec.id}.hit-ratio.bench`;
  const initial = spec.change === 'scale-up' ? members.slice(0, 3) : members;
  dns.setA(
    name,
    initial.map((m) => m.host),
  );
  const store = new MemcachedStore({
    host: name,
    port,
    dnsServers: [dns.address],
    refreshInterval: REFRESH_INTERVAL,
    retryTimeout: settings.retryTimeout,
    logger: quiet,
    ...spec.options,
  });
  const keyv = new Keyv({ store, namespace: 'hr' });
  keyv.on('error', () => undefined);
  try {
    await store.ready();
    const keys = Array.from({ length: settings.keys }, (_, i) => `item:${i}`);
    const value = 'h'.repeat(100);
    for (let i = 0; i < keys.length; i += 200) {
      await Promise.all(keys.slice(i, i + 200).map((key) => keyv.set(key, value)));
    }

    let changeAt = Infinity;
    const events = [];
    const since = () => (performance.now() - changeAt) / 1000;
    store.on('members', (list, diff) => {
      if (Number.isFinite(changeAt) && (diff.added.length || diff.removed.length)) {
        events.push({ at: since(), text: `${list.length} members in DNS` });
      }
    });
    store.on('eject', () => events.push({ at: since(), text: 'ejected' }));
    store.on('readmit', (_member, keptData) =>
      events.push({ at: since(), text: keptData ? 're-admitted (new generation)' : 're-admitted' }),
    );

    const victim = members[3];
    const change = async () => {
      if (spec.change === 'scale-up') {
        dns.setA(
          name,
          members.map((m) => m.host),
        );
        return;
      }
      victim.kill();
      if (spec.change === 'restart') {
        await sleep(settings.restartDelayMs);
        members[3] = await startMemcached(victim.host, port);
        events.push({ at: since(), text: 'restarted' });
      }
    };

    const bucketCount = Math.ceil((settings.beforeMs + settings.afterMs) / BUCKET_MS);
    const buckets = Array.from({ length: bucketCount }, (_, i) => ({
      t: (i * BUCKET_MS - settings.beforeMs) / 1000,
      hits: 0,
      misses: 0,
    }));
    const perTick = (settings.rate * TICK_MS) / 1000;
    const start = performance.now();
    const plannedChange = start + settings.beforeMs;
    const end = plannedChange + settings.afterMs;
    let inFlight = 0;
    let dropped = 0;
    let changing;
    const read = async (key, startedAt) => {
      inFlight++;
      try {
        const found = (await keyv.get(key)) !== undefined;
        // Before the change, buckets count from the planned time; after it, from the real one.
        const offset = Number.isFinite(changeAt) ? startedAt - changeAt : startedAt - plannedChange;
        const bucket = buckets[Math.floor((offset + settings.beforeMs) / BUCKET_MS)];
        if (bucket) {
          if (found) bucket.hits++;
          else bucket.misses++;
        }
        if (!found) await keyv.set(key, value);
      } finally {
        inFlight--;
      }
    };
    const pending = new Set();
    for (let tick = 0; ; tick++) {
      const due = start + tick * TICK_MS;
      let now = performance.now();
      if (due > now) {
        await sleep(due - now);
        now = performance.now();
      }
      if (now >= end) break;
      if (changing === undefined && now >= plannedChange) {
        changeAt = now;
        changing = change();
      }
      for (let j = 0; j < perTick; j++) {
        if (inFlight >= MAX_IN_FLIGHT) {
          dropped++;
          continue;
        }
        const op = read(keys[Math.floor(Math.random() * keys.length)], now);
        pending.add(op);
        op.finally(() => pending.delete(op));
      }
    }
    await Promise.all(pending);
    await changing;
    return { buckets, events, dropped };
  } finally {
    await store.disconnect();
    for (const member of members) member.kill();
  }
}

/** `+1.2 s: ejected; +3.0 s: restarted` */
export const formatEvents = (events) =>
  events.map((e) => `${e.at >= 0 ? '+' : ''}${e.at.toFixed(1)} s: ${e.text}`).join('; ');

/** hits ÷ (hits + misses) over buckets starting in [fromS, toS) seconds after the change. */
export function ratioBetween(buckets, fromS, toS) {
  let hits = 0;
  let total = 0;
  for (const b of buckets) {
    if (b.t >= fromS && b.t < toS) {
      hits += b.hits;
      total += b.hits + b.misses;
    }
  }
  return total === 0 ? NaN : hits / total;
}

const ratioOf = (b) => (b.hits + b.misses === 0 ? NaN : b.hits / (b.hits + b.misses));

/** Lowest ratio of a bucket after the change. */
export function lowestAfter(buckets) {
  return Math.min(...buckets.filter((b) => b.t >= 0).map(ratioOf));
}

const COLORS = { off: '#c0392b', on: '#1f6fb2' };
const PANELS = [
  { change: 'scale-up', title: '3 → 4 members', off: 'scale-off', on: 'scale-on' },
  { change: 'restart', title: '1 of 4 restarted empty', off: 'restart-off', on: 'restart-on' },
  { change: 'kill', title: '1 of 4 killed', off: 'kill-r1', on: 'kill-r2' },
];
const LEGEND = {
  'scale-up': ['warm-up off', 'warm-up on'],
  restart: ['warm-up off', 'warm-up on'],
  kill: ['replicas: 1', 'replicas: 2'],
};

const escapeXml = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A line chart of every series, one panel per change; a hand-written SVG document. */
export function renderHitRatioSvg({ series, settings }, title) {
  const byId = new Map(series.map((s) => [s.id, s]));
  const panelW = 300;
  const panelH = 220;
  const margin = { left: 46, right: 12, top: 48, bottom: 54 };
  const width = PANELS.length * (panelW + margin.left + margin.right);
  const height = panelH + margin.top + margin.bottom;
  const all = series.flatMap((s) => s.buckets.map(ratioOf)).filter(Number.isFinite);
  // The y axis starts at the lowest 10 % step below every point (at most 0 %).
  const yMin = Math.max(0, Math.floor(Math.min(1, ...all) * 10) / 10 - 0.1);
  const tMin = -settings.beforeMs / 1000;
  const tMax = settings.afterMs / 1000;
  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  out.push(
    `<text x="${width / 2}" y="16" text-anchor="middle" font-size="13">${escapeXml(title)}</text>`,
  );
  PANELS.forEach((panel, p) => {
    const x0 = p * (panelW + margin.left + margin.right) + margin.left;
    const y0 = margin.top;
    const x = (t) => x0 + ((t - tMin) / (tMax - tMin)) * panelW;
    const y = (r) => y0 + (1 - (r - yMin) / (1 - yMin)) * panelH;
    out.push(
      `<text x="${x0 + panelW / 2}" y="${y0 - 14}" text-anchor="middle" font-weight="bold">${escapeXml(panel.title)}</text>`,
    );
    for (let r = yMin; r <= 1.0001; r += 0.1) {
      out.push(
        `<line x1="${x0}" x2="${x0 + panelW}" y1="${y(r).toFixed(1)}" y2="${y(r).toFixed(1)}" stroke="#ddd"/>`,
        `<text x="${x0 - 4}" y="${(y(r) + 4).toFixed(1)}" text-anchor="end">${Math.round(r * 100)} %</text>`,
      );
    }
    const step = tMax - tMin > 8 ? 5 : 1;
    for (let t = Math.ceil(tMin / step) * step; t <= tMax; t += step) {
      out.push(
        `<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${y0 + panelH}" y2="${y0 + panelH + 4}" stroke="#444"/>`,
        `<text x="${x(t).toFixed(1)}" y="${y0 + panelH + 16}" text-anchor="middle">${t} s</text>`,
      );
    }
    out.push(
      `<rect x="${x0}" y="${y0}" width="${panelW}" height="${panelH}" fill="none" stroke="#444"/>`,
      `<line x1="${x(0).toFixed(1)}" x2="${x(0).toFixed(1)}" y1="${y0}" y2="${y0 + panelH}" stroke="#888" stroke-dasharray="4 3"/>`,
      `<text x="${x0 + panelW / 2}" y="${y0 + panelH + 30}" text-anchor="middle">time from the change (${settings.bucketMs} ms buckets)</text>`,
    );
    // When the ring changed in the "on" series (the "off" one differs by timer jitter only).
    const marks = byId.get(panel.on)?.events.filter((e) => e.at >= 0.05 && e.at <= tMax) ?? [];
    marks.forEach((e, m) => {
      out.push(
        `<line x1="${x(e.at).toFixed(1)}" x2="${x(e.at).toFixed(1)}" y1="${y0}" y2="${y0 + panelH}" stroke="#999" stroke-dasharray="1 3"/>`,
        `<text x="${(x(e.at) + 3).toFixed(1)}" y="${y0 + panelH - 6 - 12 * m}" fill="#666" font-size="10">${escapeXml(e.text)}</text>`,
      );
    });
    [
      ['off', panel.off],
      ['on', panel.on],
    ].forEach(([kind, id], k) => {
      const s = byId.get(id);
      if (!s) return;
      const points = s.buckets
        .map((b) => [b.t + settings.bucketMs / 2000, ratioOf(b)])
        .filter(([, r]) => Number.isFinite(r))
        .map(([t, r]) => `${x(t).toFixed(1)},${y(r).toFixed(1)}`);
      out.push(
        `<polyline points="${points.join(' ')}" fill="none" stroke="${COLORS[kind]}" stroke-width="2"${kind === 'off' ? ' stroke-dasharray="6 3"' : ''}/>`,
      );
      const ly = y0 + panelH + 44;
      const lx = x0 + k * (panelW / 2);
      out.push(
        `<line x1="${lx}" x2="${lx + 20}" y1="${ly - 4}" y2="${ly - 4}" stroke="${COLORS[kind]}" stroke-width="2"${kind === 'off' ? ' stroke-dasharray="6 3"' : ''}/>`,
        `<text x="${lx + 24}" y="${ly}">${escapeXml(LEGEND[panel.change][k])}</text>`,
      );
    });
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
