/**
 * Where swarm's own files are at run time: the thread entry points (dist/workers/*.js), the
 * native helper (dist/native/) and package.json. Found by looking up from the running module,
 * because that module may be its own file (dist/lib/...) or part of the bundled command
 * (dist/bin/swarm.js, see package.json's build).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

function find(relative: string, from: string): URL {
  let base = new URL('./', from);
  for (let up = 0; up < 4; up++) {
    const candidate = new URL(relative, base);
    if (existsSync(fileURLToPath(candidate))) return candidate;
    base = new URL('../', base);
  }
  return new URL(relative, new URL('../', from));
}

/** A thread entry point, e.g. `workerUrl('chunk-task.js')`. */
export function workerUrl(file: string): URL {
  return find(`workers/${file}`, import.meta.url);
}

/** The native helper built by `npm run build` (lib/native), if it was: dist/native/swarm_native.node. */
export function nativeAddonUrl(): URL {
  return find('native/swarm_native.node', import.meta.url);
}

/** The package's package.json (for its version). */
export function packageJsonUrl(): URL {
  return find('package.json', new URL('../', import.meta.url).href);
}
