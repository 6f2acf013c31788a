/**
 * TCP's own counters in every peer's namespace (/proc/net/snmp and /proc/net/netstat are per
 * namespace), read before and after a trial: segments sent, how many of them carried new data,
 * and how many were retransmitted. A retransmission is a packet an uplink's queue dropped and
 * sent again: capacity spent twice, and a congestion window halved. Flows that keep more in
 * flight than the shaped uplink's queue holds lose packets; request pipelines of small blocks
 * (BitTorrent's 16 KiB) keep a flow below that, a whole chunk asked at once does not.
 */
import { spawnSync } from 'node:child_process';
import type { Lab, LabPeer } from '../lib/netns.js';

export interface TcpCounts {
  outSegs: number;
  retransSegs: number;
  dataSegs: number;
}

const ZERO: TcpCounts = { outSegs: 0, retransSegs: 0, dataSegs: 0 };

/** The named counters of one "Tcp:" / "TcpExt:" header-and-values pair of lines. */
function fields(text: string, prefix: string): Map<string, number> {
  const lines = text.split('\n').filter((l) => l.startsWith(prefix));
  const out = new Map<string, number>();
  if (lines.length < 2) return out;
  const names = lines[0]!.trim().split(/\s+/);
  const values = lines[1]!.trim().split(/\s+/);
  names.forEach((n, i) => out.set(n, Number(values[i])));
  return out;
}

/** Sums over `peers` (null where the counters cannot be read). */
export function tcpCounts(lab: Lab, peers: LabPeer[]): TcpCounts | null {
  const sum = { ...ZERO };
  for (const p of peers) {
    const [cmd, ...args] = [...lab.exec(p.ns), 'cat', '/proc/net/snmp', '/proc/net/netstat'];
    const r = spawnSync(cmd!, args, { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) return null;
    const tcp = fields(r.stdout, 'Tcp:');
    const ext = fields(r.stdout, 'TcpExt:');
    sum.outSegs += tcp.get('OutSegs') ?? 0;
    sum.retransSegs += tcp.get('RetransSegs') ?? 0;
    sum.dataSegs += ext.get('TCPOrigDataSent') ?? 0;
  }
  return sum;
}

export function tcpSince(a: TcpCounts | null, b: TcpCounts | null): TcpCounts | null {
  if (!a || !b) return null;
  return { outSegs: b.outSegs - a.outSegs, retransSegs: b.retransSegs - a.retransSegs, dataSegs: b.dataSegs - a.dataSegs };
}
