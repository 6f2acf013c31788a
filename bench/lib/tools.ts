/**
 * The outside tools the benches compare against or build with (aria2c, curl, nginx, opentracker,
 * mktorrent, ip, tc): where they are, and which are missing, with the install line to print.
 * A bench runs what it can without them and says what it left out.
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
