/**
 * What every peer of a trial sent, and when: a small sampler process in the hub's namespace reads
 * the hub's end of each peer's veth (its received bytes are what that peer sent: payload, headers
 * and control messages) every SAMPLE_MS, and prints one line per sample. From these lines:
 * what the seeder sent until the last downloader was done (its unique share is the file; more is
 * chunks sent twice), how much of all uplinks' capacity was used meanwhile, and when every
 * downloader had started to upload (the ramp, which a flash crowd pays for at the start). These
 * say where a trial lost time against the bound: a bound reached needs the seeder busy from the
 * first moment and every uplink busy until the end.
 */
import type { Lab } from '../lib/netns.js';
import { hubEndOf } from '../lib/netns.js';
import type { Procs } from '../lib/procs.js';

const SAMPLE_MS = 100;
/** A downloader counts as uploading once it sent this much (requests and haves are far less). */
const UPLOADING_BYTES = 1 << 20;

/** Run inside the hub's namespace: `node -e SAMPLER SECONDS DEV...`; prints "epochMs bytes0 bytes1 ..." (-1: unreadable). */
const SAMPLER = `
const fs = require('node:fs');
const end = Date.now() + 1000 * Number(process.argv[1]);
const paths = process.argv.slice(2).map((dev) => '/sys/class/net/' + dev + '/statistics/rx_bytes');
const read = (p) => { try { return fs.readFileSync(p, 'utf8').trim(); } catch { return '-1'; } };
const tick = () => {
  process.stdout.write((performance.timeOrigin + performance.now()).toFixed(1) + ' ' + paths.map(read).join(' ') + '\\n');
  if (Date.now() < end) setTimeout(tick, ${SAMPLE_MS});
};
tick();
`;

export interface UplinkSummary {
  /** bytes the seeder sent from the start until the last downloader was done */
  seederSentBytes: number;
  /** share of all uplinks' capacity (N + 1 peers × rate × time) used in that time */
  used: number;
  /** seconds from the start until every downloader had sent UPLOADING_BYTES, null if some never did */
  allUploadingS: number | null;
}

export class UplinkWatch {
  private readonly samples: { at: number; bytes: number[] }[] = [];

  /** `peers`: the seeder and the downloaders (lab peers 0..peers-1); sampled for at most `seconds`. */
  constructor(lab: Lab, procs: Procs, private readonly peers: number, seconds: number) {
    const devs = Array.from({ length: peers }, (_, i) => hubEndOf(i));
    const argv = [...lab.exec(lab.hub), process.execPath, '-e', SAMPLER, String(Math.ceil(seconds)), ...devs];
    // stopped with the trial's other processes (procs.stopAll)
    procs.start('uplink sampler', argv, {
      onLine: (line) => {
        const parts = line.trim().split(' ').map(Number);
        if (parts.length === peers + 1 && parts.every((x) => Number.isFinite(x) && x >= 0)) this.samples.push({ at: parts[0]!, bytes: parts.slice(1) });
      },
    });
  }

  /** Bytes peer `i` had sent at `at` (linear between samples; the nearest sample outside them). */
  private sentAt(i: number, at: number): number {
    const s = this.samples;
    if (!s.length) return 0;
    if (at <= s[0]!.at) return s[0]!.bytes[i]!;
    for (let k = 1; k < s.length; k++) {
      const a = s[k - 1]!;
      const b = s[k]!;
      if (at <= b.at) return a.bytes[i]! + ((b.bytes[i]! - a.bytes[i]!) * (at - a.at)) / Math.max(1, b.at - a.at);
    }
    return s[s.length - 1]!.bytes[i]!;
  }

  /**
   * Each uplink's use in bins of `binMs` from `t0` to `end`, as a text table (one row per bin: the
   * time since t0, then the seeder's and each downloader's share of `rate` in percent). Kept with
   * `--keep`, to see where the capacity went unused.
   */
  timeline(t0: number, end: number, rate: number, binMs = 250): string {
    if (this.samples.length < 2) return '';
    const head = ['t (s)', 'seeder', ...Array.from({ length: this.peers - 1 }, (_, i) => `d${i + 1}`)];
    const rows = [head.join(' ')];
    for (let a = t0; a < end; a += binMs) {
      const b = Math.min(end, a + binMs);
      const use = Array.from({ length: this.peers }, (_, i) => Math.round((100 * (this.sentAt(i, b) - this.sentAt(i, a))) / ((rate * (b - a)) / 1000)));
      rows.push([((a - t0) / 1000).toFixed(2), ...use.map(String)].join(' '));
    }
    return rows.join('\n') + '\n';
  }

  /** From `t0` to `end` (ms since the epoch), `rate` bytes/s per uplink; null without samples around both. */
  summary(t0: number, end: number, rate: number): UplinkSummary | null {
    const s = this.samples;
    if (s.length < 2 || s[0]!.at > t0 + SAMPLE_MS || s[s.length - 1]!.at < end - SAMPLE_MS || end <= t0) return null;
    let total = 0;
    for (let i = 0; i < this.peers; i++) total += this.sentAt(i, end) - this.sentAt(i, t0);
    let allUploadingS: number | null = null;
    const base = Array.from({ length: this.peers }, (_, i) => this.sentAt(i, t0));
    for (const x of s) {
      if (x.at < t0) continue;
      if (x.bytes.slice(1).every((b, k) => b - base[k + 1]! >= UPLOADING_BYTES)) {
        allUploadingS = (x.at - t0) / 1000;
        break;
      }
    }
    return {
      seederSentBytes: this.sentAt(0, end) - this.sentAt(0, t0),
      used: total / (this.peers * rate * ((end - t0) / 1000)),
      allUploadingS,
    };
  }
}
