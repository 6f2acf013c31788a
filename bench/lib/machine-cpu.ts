/**
 * The whole machine's CPU time over a stretch of a bench (from /proc/stat): user and kernel
 * seconds spent by everything running, and the share of the machine's capacity that was busy.
 * A trial whose machine was busy nearly all the time was bound by CPU, not by its links; its
 * kernel share says how much went to moving bytes (network stack, page cache) rather than to the
 * contenders' own code. Linux only; null elsewhere.
 */
import { readFileSync } from 'node:fs';

export interface CpuMark {
  user: number;
  sys: number;
  idle: number;
}

export interface CpuSpent {
  /** CPU seconds in user space (user + nice) */
  userS: number;
  /** CPU seconds in the kernel (system + irq + softirq) */
  sysS: number;
  /** busy share of all cores' time, 0..1 */
  busy: number;
}

/** clock ticks per second of /proc/stat (USER_HZ, 100 on every Linux that Node runs on) */
const HZ = 100;

export function cpuMark(): CpuMark | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith('cpu '));
    if (!line) return null;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = v;
    return { user: user + nice, sys: system + irq + softirq + steal, idle: idle + iowait };
  } catch {
    return null;
  }
}

export function cpuSince(a: CpuMark | null): CpuSpent | null {
  const b = cpuMark();
  if (!a || !b) return null;
  const user = b.user - a.user;
  const sys = b.sys - a.sys;
  const all = user + sys + (b.idle - a.idle);
  return { userS: user / HZ, sysS: sys / HZ, busy: all > 0 ? (user + sys) / all : 0 };
}
