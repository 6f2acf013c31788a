/**
 * One nginx process with N server blocks on 127.0.0.1, each serving the same folder: the HTTP
 * mirrors for aria2c and curl. Config, logs and pid live in a temp prefix; stopped by PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { freePort } from './ports.js';
import path from 'node:path';

export function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

export interface Nginx {
  urls: (file: string) => string[];
  stop(): void;
}

/**
 * `cmdPrefix` runs nginx through another command (`ip netns exec NS`); the readiness check then
 * waits for the pid file, since the listening address is not reachable from here.
 */
export async function startNginx(root: string, servers: number, prefix: string, listenHost = '127.0.0.1', ports?: number[], cmdPrefix: string[] = []): Promise<Nginx> {
  const bin = which('nginx') ?? (which('/usr/sbin/nginx') ? '/usr/sbin/nginx' : null);
  if (!bin) throw new Error('nginx not found: apt-get install -y nginx-light');
  mkdirSync(path.join(prefix, 'logs'), { recursive: true });
  const list = ports ?? (await Promise.all(Array.from({ length: servers }, freePort)));
  const blocks = list.map((p) => `server { listen ${listenHost}:${p}; root ${root}; location / { } }`).join('\n  ');
  const conf = `daemon off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
user root;
events { worker_connections 256; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 30;
  types { application/octet-stream bin; }
  default_type application/octet-stream;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  ${blocks}
}
`;
  const file = path.join(prefix, 'nginx.conf');
  writeFileSync(file, conf);
  const argv = [...cmdPrefix, bin, '-p', prefix, '-c', file];
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] });
  if (cmdPrefix.length) {
    for (let i = 0; i < 100 && !existsSync(path.join(prefix, 'nginx.pid')); i++) await new Promise((r) => setTimeout(r, 50));
  }
  // wait until every port accepts
  for (const p of cmdPrefix.length ? [] : list) {
    for (let i = 0; i < 100; i++) {
      const ok = await new Promise<boolean>((r) => {
        const s = net.connect(p, listenHost === '0.0.0.0' ? '127.0.0.1' : listenHost);
        s.once('connect', () => (s.destroy(), r(true)));
        s.once('error', () => r(false));
      });
      if (ok) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    urls: (name) => list.map((p) => `http://${listenHost}:${p}/${name}`),
    stop: () => {
      if (child.exitCode === null) child.kill('SIGTERM');
    },
  };
}
