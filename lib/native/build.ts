/**
 * Build step of the native helper (sendfile.c): `node-gyp rebuild` in lib/native, then the module
 * copied to dist/native/swarm_native.node, where the code looks for it (paths.ts). A machine
 * without a C compiler or Node's headers gets a warning and no helper: swarm then serves by
 * copying through memory (more CPU per byte served, the same bytes). Run by `npm run build`.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..'); // dist/lib/native -> package root
const src = join(root, 'lib', 'native');
const out = join(root, 'dist', 'native', 'swarm_native.node');

function main(): number {
  rmSync(out, { force: true });
  if (process.platform !== 'linux') {
    console.error('swarm: the native sendfile helper is Linux-only; serving copies through memory here');
    return 0;
  }
  if (process.env.SWARM_NO_SENDFILE === '1') return 0;
  const built = join(src, 'build', 'Release', 'swarm_native.node');
  if (existsSync(built) && ['sendfile.c', 'binding.gyp'].every((f) => statSync(join(src, f)).mtimeMs <= statSync(built).mtimeMs)) {
    // built already from these sources (npm test builds each time): only the copy
    mkdirSync(dirname(out), { recursive: true });
    copyFileSync(built, out);
    return 0;
  }
  const r = spawnSync('node-gyp', ['rebuild', '--silent', `--directory=${src}`], { stdio: ['ignore', 'inherit', 'inherit'], env: process.env });
  if (r.status !== 0 || !existsSync(built)) {
    const why = r.error ? r.error.message : `node-gyp exited with ${r.status}`;
    console.error(`swarm: warning: the native sendfile helper did not build (${why}); swarm works without it, serving with more CPU per byte`);
    return 0;
  }
  mkdirSync(dirname(out), { recursive: true });
  copyFileSync(built, out);
  return 0;
}

process.exitCode = main();
