/**
 * Probes run inside a lab's namespaces (Node cannot enter a namespace itself, so each is a small
 * `node -e` script started through `ip netns exec`): one HTTP GET (asking a tracker), and one TCP
 * stream between two peers that measures a shaped link.
 */
import { runBounded, type Procs } from './procs.js';
import type { Lab, LabPeer } from './netns.js';
import { waitUntil } from './wait.js';

const HTTP_GET_SCRIPT = `
const http = require('node:http');
const req = http.get(process.argv[1], { timeout: 3000 }, (res) => {
  const b = [];
  res.on('data', (d) => b.push(d));
  res.on('end', () => { process.stdout.write(Buffer.concat(b)); process.exit(res.statusCode === 200 ? 0 : 2); });
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', () => process.exit(1));
`;

/** One HTTP GET made from inside a namespace (Node cannot enter one itself); the body, or null. */
export async function httpGetIn(nsPrefix: string[], url: string, timeoutMs = 5000): Promise<Buffer | null> {
  const r = await runBounded([...nsPrefix, process.execPath, '-e', HTTP_GET_SCRIPT, url], timeoutMs);
  return r.code === 0 ? r.stdout : null;
}

const TCP_SEND_SCRIPT = `
const net = require('node:net');
const [host, port, bytes] = process.argv.slice(1);
const buf = Buffer.alloc(1 << 20, 0x5a);
const server = net.createServer((s) => {
  s.on('error', () => {});
  let left = Number(bytes);
  const w = () => {
    while (left > 0) {
      const n = Math.min(left, buf.length);
      left -= n;
      if (!s.write(n === buf.length ? buf : buf.subarray(0, n))) return void s.once('drain', w);
    }
    s.end();
    server.close();
  };
  w();
});
server.listen(Number(port), host, () => console.log('listening'));
`;

const TCP_RECEIVE_SCRIPT = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
const t0 = performance.now();
let n = 0;
const s = net.connect(Number(port), host);
s.on('data', (d) => (n += d.length));
s.on('end', () => console.log(JSON.stringify({ bytes: n, seconds: (performance.now() - t0) / 1000 })));
s.on('error', (e) => { console.error(e.message); process.exit(1); });
`;

/**
 * The shaped link, measured: one TCP stream of `bytes` from `from` (which uploads, so its tbf is
 * the limit) to `to`. Resolves with TCP payload bytes per second, or null if it failed.
 */
export async function measureTcp(lab: Lab, procs: Procs, from: LabPeer, to: LabPeer, bytes: number, port = 9009, signal?: AbortSignal): Promise<number | null> {
  let listening = false;
  const server = procs.start('tcp sender', [...lab.exec(from.ns), process.execPath, '-e', TCP_SEND_SCRIPT, from.addr, String(port), String(bytes)], {
    onLine: (l) => (listening ||= l === 'listening'),
  });
  try {
    if (!(await waitUntil(() => listening || !!server.exit, { timeoutMs: 10_000, intervalMs: 20, ...(signal ? { signal } : {}) })) || !listening) return null;
    const r = await runBounded([...lab.exec(to.ns), process.execPath, '-e', TCP_RECEIVE_SCRIPT, from.addr, String(port)], 10_000 + (bytes / 1e6) * 1000);
    const m = r.code === 0 ? (JSON.parse(r.stdout.toString()) as { bytes: number; seconds: number }) : null;
    return m && m.bytes === bytes ? m.bytes / m.seconds : null;
  } finally {
    await procs.stop(server);
  }
}

