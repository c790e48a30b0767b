import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './run-command.js';

// What the sample really reads and serves, taken from its sources: the manifest and chart tests
// hold sample/k8s and sample/helm to it, so a rename on either side fails a test.

/** Every .ts file of the sample (not tests), with its text. */
export function sampleSources(): Array<{ file: string; text: string }> {
  const out: Array<{ file: string; text: string }> = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts')) {
        out.push({ file: relative(ROOT, path), text: readFileSync(path, 'utf8') });
      }
    }
  };
  walk(join(ROOT, 'sample'));
  return out;
}

/**
 * Environment variables the sample reads: `process.env.X`, `env.X`, `env['X']`, and names handed
 * with the environment to a helper (`ms(env, 'X', …)`).
 */
export function envNamesRead(): Set<string> {
  const names = new Set<string>();
  const patterns = [/\benv\.([A-Z][A-Z0-9_]*)\b/g, /\benv(?:\[|,\s*)['"]([A-Z][A-Z0-9_]*)['"]/g];
  for (const { text } of sampleSources()) {
    for (const pattern of patterns) for (const match of text.matchAll(pattern)) names.add(match[1]);
  }
  return names;
}

/** GET paths the sample's controllers serve, from their `@Controller` and `@Get` decorators. */
export function getRoutes(): Set<string> {
  const routes = new Set<string>();
  for (const { text } of sampleSources()) {
    for (const controller of text.matchAll(/@Controller\(\s*(?:'([^']*)')?\s*\)/g)) {
      // The @Get decorators up to the next controller of the same file belong to this one.
      const start = controller.index + controller[0].length;
      const next = text.indexOf('@Controller(', start);
      const body = text.slice(start, next < 0 ? undefined : next);
      for (const get of body.matchAll(/@Get\(\s*(?:'([^']*)')?\s*\)/g)) {
        routes.add('/' + [controller[1], get[1]].filter(Boolean).join('/'));
      }
    }
  }
  return routes;
}
