/**
 * The outside tools the benches compare against or build with (aria2c, curl, nginx, opentracker,
 * mktorrent, rsync, syncthing, ip, tc): where they are, which are missing, and installing those
 * from Debian's packages (as root, with apt-get, unless SWARM_BENCH_NO_INSTALL is set: the tests
 * that run the benches set it). A bench runs what it can without them and says what it left out,
 * with the install line to run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian packages that provide each tool. */
const PACKAGE_OF: Record<string, string> = {
  aria2c: 'aria2',
  curl: 'curl',
  nginx: 'nginx-light',
  opentracker: 'opentracker',
  mktorrent: 'mktorrent',
  rsync: 'rsync',
  syncthing: 'syncthing',
  ip: 'iproute2',
  tc: 'iproute2',
};

export function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { encoding: 'utf8' });
  if (r.status === 0) return r.stdout.trim();
  // nginx lives in /usr/sbin, which a non-root PATH often lacks
  for (const dir of ['/usr/sbin', '/sbin']) if (existsSync(`${dir}/${cmd}`)) return `${dir}/${cmd}`;
  return null;
}

export function missingTools(tools: string[]): string[] {
  return tools.filter((t) => !which(t));
}

/** "aria2c, nginx missing (apt-get install -y aria2 nginx-light)" */
export function missingText(missing: string[]): string {
  const pkgs = [...new Set(missing.map((t) => PACKAGE_OF[t] ?? t))];
  return `${missing.join(', ')} missing (apt-get install -y ${pkgs.join(' ')})`;
}

/**
 * Install the packages of those `tools` that are missing, when this process may (root, apt-get
 * present, SWARM_BENCH_NO_INSTALL unset and `allowed`); `apt-get update` once if the first try
 * fails (a fresh machine's package lists). Returns the tools still missing.
 */
export function installMissing(tools: string[], allowed = true): string[] {
  let missing = missingTools(tools);
  if (!missing.length || !allowed || process.env.SWARM_BENCH_NO_INSTALL || process.getuid?.() !== 0 || !which('apt-get')) return missing;
  const pkgs = [...new Set(missing.map((t) => PACKAGE_OF[t] ?? t))];
  const apt = (argv: string[]) =>
    spawnSync('apt-get', argv, { stdio: ['ignore', 2, 2], timeout: 600_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
  process.stderr.write(`bench: installing ${pkgs.join(', ')} (apt-get install -y ${pkgs.join(' ')}; SWARM_BENCH_NO_INSTALL=1 to leave them out)\n`);
  if (!apt(['install', '-y', '--no-install-recommends', ...pkgs])) {
    apt(['update']);
    apt(['install', '-y', '--no-install-recommends', ...pkgs]);
  }
  missing = missingTools(tools);
  return missing;
}
