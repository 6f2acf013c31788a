/**
 * The flash crowd's table: per N and contender, the medians over rounds of "all done", first and
 * last, the byte checks, the ratios to aria2c and to the bound, and the delivered rate; and the
 * lines under it that say what each column means.
 */
import { fmt, mbps, median, MiB, sizeText, table, UNITS } from '../lib/stats.js';
import type { FlashCrowdOptions, Trial } from './common.js';

export const TABLE_HEADERS = ['N', 'contender', 'all done (s)', 'first (s)', 'last (s)', 'bytes ok', '× aria2c', '× bound', 'bound (s)', 'delivered MB/s', 'seeder sent MiB', 'uplinks used', 'all uploading (s)', 'machine CPU s (user/kernel)', 'CPU busy', 'TCP segments sent (k)', 'retransmitted'];

const s2 = (x: number | null) => fmt(x, 2);

export function summaryRows(trials: Trial[], mib: number): { rows: (string | number)[][]; json: Record<string, unknown>[] } {
  const rows: (string | number)[][] = [];
  const json: Record<string, unknown>[] = [];
  trials = trials.filter((t) => t.error !== 'interrupted'); // cut short by Ctrl-C: nothing to report
  const ns = [...new Set(trials.map((t) => t.n))];
  const contenders = [...new Set(trials.map((t) => t.contender))].sort();
  const med = (xs: (number | null)[]) => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length ? median(v) : null;
  };
  const allDoneOf = new Map<string, number | null>();
  for (const n of ns) for (const c of contenders) allDoneOf.set(`${n}/${c}`, med(trials.filter((t) => t.n === n && t.contender === c).map((t) => t.allDone)));
  for (const n of ns) {
    for (const c of contenders) {
      const ts = trials.filter((t) => t.n === n && t.contender === c);
      if (!ts.length) continue;
      const allDone = allDoneOf.get(`${n}/${c}`) ?? null;
      const partial = ts.some((t) => t.allDone === null);
      const aria = allDoneOf.get(`${n}/aria2c`) ?? null;
      const bound = ts[0]!.boundSeconds;
      const ok = ts.reduce((a, t) => a + t.bytesOk, 0);
      const of = ts.reduce((a, t) => a + t.n, 0);
      const first = med(ts.map((t) => t.first));
      const last = med(ts.map((t) => t.last));
      const delivered = allDone === null ? null : mbps(n * mib * MiB, allDone);
      const up = ts.map((t) => t.uplinks ?? null);
      const seederSent = med(up.map((u) => (u ? u.seederSentBytes / MiB : null)));
      const used = med(up.map((u) => u?.used ?? null));
      const allUploading = med(up.map((u) => u?.allUploadingS ?? null));
      const cpuUser = med(ts.map((t) => t.cpu?.userS ?? null));
      const cpuSys = med(ts.map((t) => t.cpu?.sysS ?? null));
      const busy = med(ts.map((t) => t.cpu?.busy ?? null));
      const segs = med(ts.map((t) => t.tcp?.outSegs ?? null));
      const retrans = med(ts.map((t) => (t.tcp && t.tcp.outSegs > 0 ? t.tcp.retransSegs / t.tcp.outSegs : null)));
      rows.push([
        n,
        c,
        allDone === null ? 'not all' : s2(allDone) + (partial ? '*' : ''),
        s2(first),
        s2(last),
        `${ok}/${of}`,
        allDone !== null && aria !== null ? fmt(allDone / aria, 2) : '—',
        allDone !== null ? fmt(allDone / bound, 2) : '—',
        fmt(bound, 2),
        fmt(delivered, 1),
        fmt(seederSent, 1),
        used === null ? '—' : `${fmt(used * 100, 0)}%`,
        s2(allUploading),
        cpuUser === null || cpuSys === null ? '—' : `${fmt(cpuUser + cpuSys, 1)} (${fmt(cpuUser, 1)}/${fmt(cpuSys, 1)})`,
        busy === null ? '—' : `${fmt(busy * 100, 0)}%`,
        segs === null ? '—' : fmt(segs / 1000, 0),
        retrans === null ? '—' : `${fmt(retrans * 100, 1)}%`,
      ]);
      json.push({ peers: n, contender: c, rounds: ts.length, allDoneS: allDone, firstS: first, lastS: last, bytesOk: ok, bytesChecked: of, ratioToAria2c: allDone !== null && aria !== null ? allDone / aria : null, ratioToBound: allDone !== null ? allDone / bound : null, boundS: bound, deliveredMBps: delivered, seederSentMiB: seederSent, uplinksUsed: used, allUploadingS: allUploading, machineCpuUserS: cpuUser, machineCpuKernelS: cpuSys, machineBusy: busy, tcpSegmentsSent: segs, tcpRetransmittedShare: retrans });
    }
  }
  return { rows, json };
}

/** The table with its title and the lines that explain it. */
export function flashCrowdText(trials: Trial[], opts: Pick<FlashCrowdOptions, 'mib' | 'rounds' | 'tbf'>): string {
  const { rows } = summaryRows(trials, opts.mib);
  const U = (opts.tbf.rateMbit * 1e6) / 8;
  return [
    `Flash crowd: ${sizeText(opts.mib * MiB)} from 1 seeder to N downloaders started at once, every peer's upload capped at ${opts.tbf.rateMbit} Mbit/s (tc tbf) in network namespaces${opts.rounds > 1 ? `; medians of ${opts.rounds} rounds` : ''}; ${UNITS}`,
    rows.length ? table(TABLE_HEADERS, rows) : '(no trial finished)',
    `times from the common start until each downloader had the whole file; bytes ok = SHA-256 equal to the source's; ` +
      `bound = max(F/U, N·F/(U + N·U)) with U = ${opts.tbf.rateMbit} Mbit/s = ${fmt(U / 1e6, 1)} MB/s, which is F/U here; ` +
      `at MTU 1500 a tbf-shaped link carries at most 1448/1514 = 95.6% of its rate as TCP payload, so × bound cannot go below ~1.05; ` +
      `delivered MB/s = N·F / all done; ` +
      `seeder sent = bytes on its wire until all were done (the file is ${fmt((opts.mib * MiB * 1514) / 1448 / MiB, 1)} MiB with TCP/IP headers: more is chunks sent twice); ` +
      `uplinks used = all peers' bytes sent / ((N + 1) · U · all done); all uploading = when the last downloader had sent 1 MiB (the ramp); machine CPU = all processes' CPU time from the start until all were done (/proc/stat), CPU busy = its share of all cores' time (near 100%: the trial was bound by CPU, not by its links); TCP segments sent = by every peer (data and acknowledgements), retransmitted = the share sent again (packets an uplink's queue dropped).` +
      (rows.some((r) => String(r[2]).endsWith('*')) ? ' * not every round had all downloaders done: median of those that did.' : ''),
  ].join('\n');
}
