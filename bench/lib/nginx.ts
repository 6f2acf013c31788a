/**
 * One nginx process with N server blocks, each serving the same folder: the HTTP mirrors for
 * aria2c and curl. Config, logs and pid live in a prefix folder; the process is one of the
 * bench's `Procs`, stopped by PID (its exit awaited) like every other.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort } from './ports.js';
import { tailOf, type Proc, type Procs } from './procs.js';
import { which } from './tools.js';
import { waitUntil } from './wait.js';

export interface Nginx {
  proc: Proc;
  /** one URL of `file` per server block */
  urls(file: string): string[];
}

export interface NginxOptions {
  /** the folder served */
  root: string;
  /** config, logs and pid go here */
  prefix: string;
  /** server blocks (one port each; default 1) */
  servers?: number;
  host?: string;
  /** fixed ports (inside a namespace), else free ports on 127.0.0.1 */
  ports?: number[];
  /** runs nginx through another command (`ip netns exec NS`): readiness is then its pid file */
  cmdPrefix?: string[];
}

export async function startNginx(procs: Procs, o: NginxOptions): Promise<Nginx> {
  const bin = which('nginx');
  if (!bin) throw new Error('nginx not found: apt-get install -y nginx-light');
  const host = o.host ?? '127.0.0.1';
  const cmdPrefix = o.cmdPrefix ?? [];
  mkdirSync(path.join(o.prefix, 'logs'), { recursive: true });
  const ports = o.ports ?? (await Promise.all(Array.from({ length: o.servers ?? 1 }, freePort)));
  const pidFile = path.join(o.prefix, 'nginx.pid');
  rmSync(pidFile, { force: true });
  const blocks = ports.map((p) => `server { listen ${host}:${p}; root ${o.root}; location / { } }`).join('\n  ');
  const conf = `daemon off;
worker_processes 1;
pid ${pidFile};
error_log ${o.prefix}/logs/error.log warn;
${process.getuid?.() === 0 ? 'user root;' : ''}
events { worker_connections 256; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 30;
  types { application/octet-stream bin; }
  default_type application/octet-stream;
  client_body_temp_path ${o.prefix}/body;
  proxy_temp_path ${o.prefix}/proxy;
  fastcgi_temp_path ${o.prefix}/fastcgi;
  uwsgi_temp_path ${o.prefix}/uwsgi;
  scgi_temp_path ${o.prefix}/scgi;
  ${blocks}
}
`;
  const file = path.join(o.prefix, 'nginx.conf');
  writeFileSync(file, conf);
  const proc = procs.start('nginx', [...cmdPrefix, bin, '-p', o.prefix, '-c', file]);
  const accepts = (p: number) =>
    new Promise<boolean>((r) => {
      const s = net.connect(p, host);
      s.once('connect', () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    });
  const ready = await waitUntil(
    async () => {
      if (proc.exit) return true;
      if (cmdPrefix.length) return existsSync(pidFile);
      for (const p of ports) if (!(await accepts(p))) return false;
      return true;
    },
    { timeoutMs: 10_000, intervalMs: 50 },
  );
  if (!ready || proc.exit) {
    await procs.stop(proc);
    throw new Error(`nginx did not start${proc.exit ? ` (exit ${proc.exit.code ?? proc.exit.signal})` : ''}\n${tailOf(proc)}`);
  }
  return { proc, urls: (name) => ports.map((p) => `http://${host}:${p}/${name}`) };
}
