/**
 * `bench/sync`: two folders kept in step on loopback, swarm against rsync and Syncthing.
 *
 *   (a) many small files (default 10,000 of 1-64 KiB, 100 per subfolder) into an empty folder
 *   (c) after (a), one file changed on the source side: how long until the other side has it
 *   (b) one big file (default 1 GiB) into an empty folder
 *
 * Each tool runs as its users run it, every process separate and on 127.0.0.1 only:
 *   swarm      `swarm sync SRC --no-tracker --threads 0` serving, then `swarm sync DST --neighbor
 *              127.0.0.1:PORT ...` running on (not --once), so (c) is pushed to it
 *   rsync      `rsync --daemon` with a module per source folder; `rsync -a rsync://.../ DST/` timed
 *              (rsync has no push: its (c) is the time of one more run, i.e. a poll)
 *   syncthing  two instances with homes the bench writes (certificates from `syncthing generate`,
 *              config.xml: listen on 127.0.0.1, GUI, relays, global and local discovery, NAT and
 *              usage reports off; the watcher on with its default 10 s delay, long rescans)
 *
 * Clocks: "source scan" is the source side's start until it serves (swarm: its `syncing` event;
 * Syncthing: "Completed initial scan"; rsync has none). "s to converged" runs from the start of the
 * destination side (rsync: the client) until the destination tree holds every expected name with
 * its size (polled every POLL_MS; (c): the changed file's size and bytes every CHANGE_POLL_MS), the
 * source already serving; (c) starts once both sides are quiet (SETTLE_*). CPU is both sides'
 * processes (and their children) over that interval, from /proc (rsync's client: GNU time); peak
 * RSS is per side, destination/source.
 *
 * Checks, after the clock stopped: every expected file's SHA-256 and mtime (seconds) in the
 * destination ("bytes ok" k/n, "mtimes ok"), and no unexpected files left there (temp files). A
 * failed check or a case that timed out makes the exit code 1; a tool that is missing or does not
 * start is skipped with the reason in the table. Every process is stopped by PID (exit awaited)
 * before its folders are deleted.
 *
 *   node dist/bench/sync.js [--files 10000] [--big-mib 1024] [--tools swarm,rsync,syncthing] ...
 *   (--help lists every option)
 */
import { prng } from './lib/prng.js';
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync, utimesSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fmt, median, MiB, mbps, sizeText, table, UNITS } from './lib/stats.js';
import { CORRUPT_ENV, ensureDir, flipOneByte, removeAfterStop, sha256File } from './lib/files.js';
import { runMain, tailOf, timed, SWARM_BIN, type Proc, type Procs } from './lib/procs.js';
import { args, flag, isMain, num, oneOf, parseOptions, str } from './lib/options.js';
import { freePort } from './lib/ports.js';
import { DEFAULT_RESULTS_DIR, machine, shownPath, writeResults } from './lib/report.js';
import { installMissing, missingText } from './lib/tools.js';
import { Aborted, checkAborted, sleep, waitUntil } from './lib/wait.js';

/** rsync-fsync: rsync with `--fsync` (every file flushed, as swarm and Syncthing do): the same durability, for reference */
const TOOLS = ['swarm', 'rsync', 'rsync-fsync', 'syncthing'] as const;
type Tool = (typeof TOOLS)[number];
type Case = 'a' | 'b' | 'c';

/** How often the destination tree is looked at while a copy runs (its cost lands on the same 2 cores). */
const POLL_MS = 200;
/** How often the one changed file is looked at in (c). */
const CHANGE_POLL_MS = 20;
/** (c) is bounded on its own: Syncthing needs its 10 s watcher delay, swarm claims about 1 s. */
const CHANGE_TIMEOUT_MS = 60_000;
/** A tool that does not start (serve, listen) within this long is skipped. */
const START_TIMEOUT_MS = 60_000;
/** Before (c): both sides quiet (under this share of one core for SETTLE_WINDOW_MS), at most SETTLE_MAX_MS. */
const SETTLE_CPU_SHARE = 0.05;
const SETTLE_WINDOW_MS = 1_000;
const SETTLE_MAX_MS = 60_000;
/** Files above this are hashed as a stream, not read whole. */
const STREAM_HASH_BYTES = 64 * MiB;
/** Syncthing's default watcher delay, kept (reported in the table). */
const SYNCTHING_WATCH_DELAY_S = 10;
/** Names the tools keep for themselves in a synced folder: not part of the tree compared. */
const TOOL_STATE = new Set(['.swarm', '.stfolder', '.stversions', '.stignore']);

// ---------------------------------------------------------------------------------------------
// data

interface FileExp {
  size: number;
  sha256: string;
  mtimeSec: number;
}

interface DataSet {
  key: 'small' | 'big';
  src: string;
  /** name (slash-separated, relative) → what the destination must hold */
  files: Map<string, FileExp>;
  /** subfolders, relative ('' is the top) */
  dirs: string[];
}

const bytesOf = (d: DataSet) => [...d.files.values()].reduce((a, f) => a + f.size, 0);

/** Seeded keystream (AES-128-CTR over zeros): fast, repeatable random bytes. */
function keystream(seed: number, stream: string): (n: number) => Buffer {
  const k = createHash('sha256').update(`swarm-bench-sync|${seed}|${stream}`).digest();
  const c = createCipheriv('aes-128-ctr', k.subarray(0, 16), k.subarray(16, 32));
  return (n) => c.update(Buffer.alloc(n));
}


const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const mtimeSecOf = (p: string) => Math.floor(statSync(p).mtimeMs / 1000);

function makeSmall(root: string, o: { files: number; minKiB: number; maxKiB: number; perDir: number; seed: number }): DataSet {
  const src = path.join(root, 'small-src');
  rmSync(src, { recursive: true, force: true });
  ensureDir(src);
  const rand = prng(o.seed);
  const bytes = keystream(o.seed, 'small');
  const files = new Map<string, FileExp>();
  const dirs = new Set<string>();
  const lo = Math.round(o.minKiB * 1024);
  const hi = Math.round(o.maxKiB * 1024);
  const width = String(Math.max(0, o.files - 1)).length;
  for (let i = 0; i < o.files; i++) {
    const dir = `d${String(Math.floor(i / o.perDir)).padStart(3, '0')}`;
    if (!dirs.has(dir)) ensureDir(path.join(src, dir));
    dirs.add(dir);
    const name = `${dir}/f${String(i).padStart(width, '0')}.bin`;
    const size = lo + Math.floor(rand() * (hi - lo + 1));
    const data = bytes(size);
    const p = path.join(src, dir, name.slice(dir.length + 1));
    writeFileSync(p, data);
    files.set(name, { size, sha256: sha256(data), mtimeSec: mtimeSecOf(p) });
  }
  return { key: 'small', src, files, dirs: [...dirs] };
}

function makeBig(root: string, o: { bigMiB: number; seed: number }): DataSet {
  const src = ensureDir(path.join(root, 'big-src'));
  rmSync(path.join(src, '.swarm'), { recursive: true, force: true });
  const p = path.join(src, 'big.bin');
  const size = Math.round(o.bigMiB * MiB);
  const bytes = keystream(o.seed, 'big');
  const h = createHash('sha256');
  const fd = openSync(p, 'w');
  try {
    for (let at = 0; at < size; at += 16 * MiB) {
      const b = bytes(Math.min(16 * MiB, size - at));
      h.update(b);
      writeSync(fd, b, 0, b.length, at);
    }
  } finally {
    closeSync(fd);
  }
  return { key: 'big', src, files: new Map([['big.bin', { size, sha256: h.digest('hex'), mtimeSec: mtimeSecOf(p) }]]), dirs: [''] };
}

/** (c): new bytes (another size) and a new mtime for `name` in the source; its expectation updated. */
function changeOne(d: DataSet, name: string, o: { minKiB: number; maxKiB: number; seed: number }, round: number): FileExp {
  const old = d.files.get(name)!;
  const rand = prng(o.seed * 7919 + round);
  const lo = Math.round(o.minKiB * 1024);
  const hi = Math.round(o.maxKiB * 1024);
  let size = old.size;
  while (size === old.size && hi > lo) size = lo + Math.floor(rand() * (hi - lo + 1));
  const data = keystream(o.seed, `change-${round}-${name}`)(size);
  const p = path.join(d.src, ...name.split('/'));
  writeFileSync(p, data);
  // a new second for the mtime, so tools that compare mtimes in seconds (swarm, rsync) see it too
  let mtimeSec = mtimeSecOf(p);
  if (mtimeSec <= old.mtimeSec) {
    mtimeSec = old.mtimeSec + 1;
    utimesSync(p, mtimeSec, mtimeSec);
  }
  const exp = { size, sha256: sha256(data), mtimeSec };
  d.files.set(name, exp);
  return exp;
}

// ---------------------------------------------------------------------------------------------
// the destination tree: polled while a copy runs, checked after

/** Cheap, incremental "is everything there": names by readdir, then each new name's size once. */
class TreePoll {
  private readonly confirmed = new Set<string>();
  constructor(
    private readonly root: string,
    private readonly d: DataSet,
    private readonly only?: string,
  ) {}

  done(): boolean {
    if (this.only !== undefined) return this.oneDone(this.only);
    for (const dir of this.d.dirs) {
      let names: string[];
      try {
        names = readdirSync(path.join(this.root, dir));
      } catch {
        continue;
      }
      for (const n of names) {
        const name = dir ? `${dir}/${n}` : n;
        if (this.confirmed.has(name)) continue;
        const exp = this.d.files.get(name);
        if (!exp) continue; // a tool's temp file
        try {
          if (statSync(path.join(this.root, dir, n)).size === exp.size) this.confirmed.add(name);
        } catch {
          // renamed away meanwhile
        }
      }
    }
    return this.confirmed.size === this.d.files.size;
  }

  /** One file: size and mtime, then its bytes. */
  private oneDone(name: string): boolean {
    const exp = this.d.files.get(name)!;
    const p = path.join(this.root, ...name.split('/'));
    try {
      const st = statSync(p);
      // the new version always has another size; mtimes are checked after the clock stopped
      return st.size === exp.size && sha256(readFileSync(p)) === exp.sha256;
    } catch {
      return false;
    }
  }
}

interface TreeCheck {
  n: number;
  bytesOk: number;
  mtimesOk: number;
  /** files in the destination that are not expected (left-over temp files, say) */
  extra: string[];
}

let corruptNext = process.env[CORRUPT_ENV] === '1';

/** Every expected file hashed and its mtime compared; unexpected files listed. */
async function checkTree(root: string, d: DataSet, names: Iterable<string> = d.files.keys()): Promise<TreeCheck> {
  const out: TreeCheck = { n: 0, bytesOk: 0, mtimesOk: 0, extra: [] };
  for (const name of names) {
    const exp = d.files.get(name)!;
    const p = path.join(root, ...name.split('/'));
    out.n++;
    if (corruptNext && existsSync(p)) {
      corruptNext = false;
      flipOneByte(p);
      process.stderr.write(`${CORRUPT_ENV}=1: flipped one byte of ${p} before checking it\n`);
    }
    let hash: string | null;
    try {
      hash = exp.size > STREAM_HASH_BYTES ? await sha256File(p) : sha256(readFileSync(p));
      if (hash === exp.sha256) out.bytesOk++;
      if (mtimeSecOf(p) === exp.mtimeSec) out.mtimesOk++;
    } catch {
      // missing: counted as not ok
    }
  }
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const name = rel ? `${rel}/${e.name}` : e.name;
      if (!rel && TOOL_STATE.has(e.name)) continue;
      if (e.isDirectory()) walk(name);
      else if (!d.files.has(name)) out.extra.push(name);
    }
  };
  try {
    walk('');
  } catch {
    // no destination at all: every file already counted missing
  }
  return out;
}


// ---------------------------------------------------------------------------------------------
// CPU and memory of running processes, from /proc

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/** utime+stime+cutime+cstime (ticks): its own CPU and that of children it has reaped. */
function ticksOf(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  } catch {
    return 0;
  }
}

function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** pid and every live descendant (children of each of its threads). */
function treeOf(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${out[i]}/task/${t}/children`, 'utf8').split(/\s+/)) if (c) out.push(Number(c));
      } catch {
        // gone
      }
    }
  }
  return out;
}

/** One side of a sync (its processes): CPU seconds so far, peak RSS seen. */
class Side {
  peakMiB = 0;
  constructor(private readonly roots: () => number[]) {}

  cpuS(): number {
    let t = 0;
    for (const r of this.roots()) for (const p of treeOf(r)) t += ticksOf(p);
    return t / CLK_TCK;
  }

  sample(): void {
    let rss = 0;
    for (const r of this.roots()) {
      for (const p of treeOf(r)) rss += statusKiB(p, 'VmRSS');
      this.peakMiB = Math.max(this.peakMiB, statusKiB(r, 'VmHWM') / 1024);
    }
    this.peakMiB = Math.max(this.peakMiB, rss / 1024);
  }
}

// ---------------------------------------------------------------------------------------------
// measurements and the table

interface Measure {
  tool: Tool;
  kase: Case;
  round: number;
  /** null: it did not converge (timeout, a process died, skipped) */
  seconds: number | null;
  scanS: number | null;
  files: number;
  bytes: number;
  cpuS: number | null;
  /** the two sides' share of cpuS (peer tools: destination, source) */
  cpuDst?: number;
  cpuSrc?: number;
  rssDst: number | null;
  rssSrc: number | null;
  check: TreeCheck | null;
  /** true: the tool could not run here (missing, did not start): not a failure */
  skipped: boolean;
  note: string;
  /** what else went wrong (a failure), e.g. the rest of the tree changed during (c) */
  problems: string[];
}

const CASE_TEXT: Record<Case, (o: Opts) => string> = {
  a: (o) => `(a) ${o.files} files`,
  c: () => '(c) 1 change',
  b: (o) => `(b) ${sizeText(o['big-mib'] * MiB)}`,
};

function failed(m: Measure): boolean {
  if (m.skipped) return false;
  if (m.seconds === null || !m.check || m.problems.length) return true;
  return m.check.bytesOk !== m.check.n || m.check.mtimesOk !== m.check.n || m.check.extra.length > 0;
}

interface Row {
  tool: Tool;
  kase: Case;
  ms: Measure[];
  seconds: number | null;
}

function rowsOf(ms: Measure[], kases: Case[]): Row[] {
  const out: Row[] = [];
  for (const kase of kases) {
    for (const tool of TOOLS) {
      const mine = ms.filter((m) => m.tool === tool && m.kase === kase);
      if (!mine.length) continue;
      const ok = mine.filter((m) => m.seconds !== null).map((m) => m.seconds!);
      out.push({ tool, kase, ms: mine, seconds: ok.length === mine.length ? median(ok) : null });
    }
  }
  return out;
}

function sectionText(title: string, rows: Row[], o: Opts): string {
  const ref = (tool: Tool, kase: Case) => rows.find((r) => r.tool === tool && r.kase === kase)?.seconds ?? null;
  const vs = (r: Row, tool: Tool) => {
    const other = ref(tool, r.kase);
    return r.tool === tool || r.seconds === null || other === null ? '—' : `${fmt(r.seconds / other, 2)}×`;
  };
  const body = rows.map((r) => {
    const okMs = r.ms.filter((m) => !m.skipped);
    const med = (f: (m: Measure) => number | null) => {
      const xs = okMs.map(f).filter((x): x is number => x !== null);
      return xs.length ? median(xs) : null;
    };
    const max = (f: (m: Measure) => number | null) => {
      const xs = okMs.map(f).filter((x): x is number => x !== null);
      return xs.length ? Math.max(...xs) : null;
    };
    const checks = okMs.map((m) => m.check).filter((c): c is TreeCheck => c !== null);
    const n = checks.reduce((a, c) => a + c.n, 0);
    const bytes = r.ms[0]!.bytes;
    const notes = [...new Set(r.ms.flatMap((m) => [m.note, ...m.problems]).filter(Boolean))].join('; ');
    const skipped = r.ms.every((m) => m.skipped);
    return [
      r.tool,
      CASE_TEXT[r.kase](o),
      fmt(med((m) => m.scanS), 2),
      skipped ? 'skipped' : r.seconds === null ? 'FAILED' : fmt(r.seconds, r.seconds < 10 ? 3 : 1),
      String(r.ms[0]!.files),
      fmt(bytes / MiB, bytes < 10 * MiB ? 3 : 0),
      r.seconds === null ? '—' : fmt(mbps(bytes, r.seconds), 1),
      fmt(med((m) => m.cpuS), 2),
      `${fmt(max((m) => m.rssDst), 0)}/${fmt(max((m) => m.rssSrc), 0)}`,
      checks.length ? `${checks.reduce((a, c) => a + c.bytesOk, 0)}/${n}` : '—',
      checks.length ? `${checks.reduce((a, c) => a + c.mtimesOk, 0)}/${n}` : '—',
      vs(r, 'rsync'),
      vs(r, 'syncthing'),
      notes,
    ];
  });
  return [
    `${title}; ${UNITS}`,
    table(['tool', 'case', 'source scan s', 's to converged', 'files', 'MiB', 'MB/s', 'CPU s', 'peak RSS MiB dst/src', 'bytes ok', 'mtimes ok', 'vs rsync', 'vs syncthing', 'note'], body),
  ].join('\n');
}

/** One line per goal of the issue: met / not met, with the numbers. */
function verdicts(ms: Measure[]): string[] {
  const t = (tool: Tool, kase: Case) => rowsOf(ms, [kase]).find((r) => r.tool === tool) ?? null;
  const s = (r: Row | null) => (r === null ? 'not run' : r.ms.every((m) => m.skipped) ? 'skipped' : r.seconds === null ? 'failed' : `${fmt(r.seconds, 3)} s`);
  const ok = (r: Row | null): r is Row & { seconds: number } => r !== null && r.seconds !== null && !r.ms.some(failed);
  const out: string[] = [];
  const sw = (k: Case) => t('swarm', k);
  {
    const [a, r, st] = [sw('a'), t('rsync', 'a'), t('syncthing', 'a')];
    const parts: string[] = [];
    let met: boolean | null = a === null || a.ms.every((m) => m.skipped) ? null : ok(a);
    if (ok(r)) {
      const m = ok(a) && a.seconds <= r.seconds;
      parts.push(`swarm ${s(a)} vs rsync ${s(r)}: ${m ? 'at most' : 'more than'} rsync's`);
      if (!m && met !== null) met = false;
    } else parts.push(`rsync ${s(r)}: not compared`);
    if (ok(st)) {
      const m = ok(a) && a.seconds <= 0.5 * st.seconds;
      parts.push(`0.5× Syncthing = ${fmt(0.5 * st.seconds, 3)} s: ${m ? 'within' : 'over'}`);
      if (!m && met !== null) met = false;
    } else parts.push(`Syncthing ${s(st)}: not compared`);
    // nothing to compare with: only a failure of swarm itself decides
    if (!ok(r) && !ok(st) && met) met = null;
    const refs = `rsync ${s(r)}, Syncthing ${s(st)}`;
    out.push(`goal (a) ≤ rsync and ≤ 0.5× Syncthing: ${met === null ? `not judged (swarm ${s(a)}; ${refs})` : `${met ? 'MET' : 'NOT MET'} (${parts.join('; ')})`}`);
  }
  {
    const [b, st] = [sw('b'), t('syncthing', 'b')];
    const judged = b !== null && !b.ms.every((m) => m.skipped) && ok(st);
    const met = judged && ok(b) && b.seconds <= st!.seconds;
    out.push(`goal (b) ≤ Syncthing: ${!judged ? 'not judged' : met ? 'MET' : 'NOT MET'} (swarm ${s(b)}, Syncthing ${s(st)})`);
  }
  {
    const c = sw('c');
    const met = ok(c) && c.seconds < 1;
    out.push(`goal (c) one change on the other side in < 1 s: ${c === null || c.ms.every((m) => m.skipped) ? 'not judged' : met ? 'MET' : 'NOT MET'} (swarm ${s(c)}; Syncthing ${s(t('syncthing', 'c'))}, rsync one run ${s(t('rsync', 'c'))})`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// running the tools

type Opts = ReturnType<typeof options>;

interface Ctx {
  o: Opts;
  procs: Procs;
  signal: AbortSignal;
  root: string;
  caseTimeoutMs: number;
}

const nowMs = () => performance.now();

/**
 * A finished destination is moved aside, not deleted, until the bench ends. Deleting 10,000 files
 * and creating 10,000 more within a minute makes ext4 skip every recently freed inode while it
 * allocates (ialloc.c `recently_deleted`, reading inode tables): measured here, the same 10,000
 * creates took 6-10 s of kernel time right after such a deletion against 0.8 s otherwise. That
 * penalised whichever tool ran after another's cleanup, by the order of the rows.
 */
let setAsideCount = 0;
function setAside(ctx: Ctx, dir: string): void {
  if (!existsSync(dir)) return;
  const aside = ensureDir(path.join(ctx.root, 'done'));
  renameSync(dir, path.join(aside, `${path.basename(dir)}-${++setAsideCount}`));
}

/** A fresh, empty destination folder. */
function freshDst(ctx: Ctx, d: DataSet, tool: Tool): string {
  const dst = path.join(ctx.root, `${d.key}-dst-${tool}`);
  rmSync(dst, { recursive: true, force: true });
  return ensureDir(dst);
}

/** Each tool finds the source as the generator left it: no other tool's state. */
function cleanSource(d: DataSet): void {
  for (const n of TOOL_STATE) rmSync(path.join(d.src, n), { recursive: true, force: true });
}

/**
 * Poll until `poll.done()` (resolves with the time it was seen) or `timeoutMs`; null when it timed
 * out or a process died (`why` says which). `sides` are sampled for peak RSS on every poll.
 */
async function converge(ctx: Ctx, poll: TreePoll, sides: Side[], watch: Proc[], timeoutMs: number, intervalMs = POLL_MS): Promise<{ at: number | null; why: string }> {
  let why = '';
  let samples = 0;
  const everyNth = Math.max(1, Math.round(POLL_MS / intervalMs));
  const seen = await waitUntil(
    () => {
      if (samples++ % everyNth === 0) for (const s of sides) s.sample();
      const dead = watch.find((p) => p.exit);
      if (dead) {
        why = `${dead.name} exited (${dead.exit!.code ?? dead.exit!.signal})`;
        return true;
      }
      return poll.done();
    },
    { timeoutMs, intervalMs, signal: ctx.signal },
  );
  const at = nowMs();
  if (why) return { at: null, why };
  return seen ? { at, why: '' } : { at: null, why: `timed out after ${fmt(timeoutMs / 1000, 0)} s` };
}

/** Wait until both sides are quiet (a change measured from a settled state, not mid-housekeeping). */
async function settle(ctx: Ctx, sides: Side[]): Promise<void> {
  const end = nowMs() + SETTLE_MAX_MS;
  let last = sides.reduce((a, s) => a + s.cpuS(), 0);
  while (nowMs() < end) {
    await sleep(SETTLE_WINDOW_MS, ctx.signal);
    const cur = sides.reduce((a, s) => a + s.cpuS(), 0);
    if (cur - last < (SETTLE_CPU_SHARE * SETTLE_WINDOW_MS) / 1000) return;
    last = cur;
  }
}

/** The name changed in (c): one in the middle of the tree. */
const changedName = (d: DataSet) => [...d.files.keys()].sort()[d.files.size >> 1]!;

function blank(tool: Tool, kase: Case, round: number, d: DataSet, bytes = bytesOf(d), files = d.files.size): Measure {
  return { tool, kase, round, seconds: null, scanS: null, files, bytes, cpuS: null, rssDst: null, rssSrc: null, check: null, skipped: false, note: '', problems: [] };
}

/**
 * A tool that runs as two long-lived peers (swarm, Syncthing): source started and ready, then the
 * destination; (a)/(b), and (c) when asked.
 */
interface PeerTool {
  tool: Tool;
  /** Start the source side; resolves once it serves (what the destination needs to find it). */
  startSource(d: DataSet): Promise<{ proc: Proc; contact: string }>;
  startDest(d: DataSet, dst: string, contact: string): Proc;
  /** (c)'s note */
  changeNote: string;
  /** after both are stopped */
  cleanup?(d: DataSet, dst: string): void;
  /** what the destination said worth a note (warnings) */
  note?(): string;
}

async function peerCases(ctx: Ctx, t: PeerTool, d: DataSet, round: number, withChange: boolean): Promise<Measure[]> {
  const kase: Case = d.key === 'big' ? 'b' : 'a';
  const m = blank(t.tool, kase, round, d);
  const out = [m];
  const dst = freshDst(ctx, d, t.tool);
  cleanSource(d);
  spawnSync('sync');
  let src: Proc | null = null;
  let dest: Proc | null = null;
  try {
    const t0 = nowMs();
    let contact: string;
    try {
      const s = await t.startSource(d);
      src = s.proc;
      contact = s.contact;
    } catch (e) {
      if (e instanceof Aborted) throw e;
      m.skipped = t.tool !== 'swarm'; // swarm not starting is a failure of swarm, not a missing tool
      m.note = `${m.skipped ? 'skipped' : 'FAILED'}: ${(e as Error).message.split('\n')[0]}`;
      process.stderr.write(`${t.tool}: ${(e as Error).message}\n`);
      return out;
    }
    m.scanS = (nowMs() - t0) / 1000;
    const srcP = src;
    const srcSide = new Side(() => [srcP.pid]);
    const cpuSrc0 = srcSide.cpuS();
    const t1 = nowMs();
    const destP = t.startDest(d, dst, contact);
    dest = destP;
    const dstSide = new Side(() => [destP.pid]);
    const sides = [dstSide, srcSide];
    const r = await converge(ctx, new TreePoll(dst, d), sides, [srcP, destP], ctx.caseTimeoutMs);
    const cpu = () => dstSide.cpuS() + srcSide.cpuS() - cpuSrc0;
    m.cpuS = cpu();
    m.cpuDst = dstSide.cpuS();
    m.cpuSrc = srcSide.cpuS() - cpuSrc0;
    for (const s of sides) s.sample();
    m.rssDst = dstSide.peakMiB;
    m.rssSrc = srcSide.peakMiB;
    if (r.at !== null) m.seconds = (r.at - t1) / 1000;
    else m.note = `FAILED: ${r.why}`;
    process.stderr.write(`  ${t.tool} ${kase}: ${m.seconds === null ? m.note : `${fmt(m.seconds, 3)} s, ${fmt(m.cpuS, 2)} CPU s (destination ${fmt(m.cpuDst, 2)}, source ${fmt(m.cpuSrc, 2)})`}\n`);
    if (m.seconds === null && r.why.includes('exited')) process.stderr.write(`${tailOf(srcP.exit ? srcP : destP, 12)}\n`);
    m.check = await checkTree(dst, d);
    // a fetch that just finished may be removing its ticket and lock: leftovers count if they stay
    for (let i = 0; i < 30 && m.check.extra.length; i++) {
      await new Promise((r) => setTimeout(r, 100));
      m.check = await checkTree(dst, d);
    }
    if (m.check.extra.length) m.problems.push(`${m.check.extra.length} unexpected file(s) left, e.g. ${m.check.extra[0]}`);
    if (withChange && m.seconds !== null) await changeCase(ctx, t, d, dst, round, sides, cpu, [srcP, destP], out);
  } finally {
    // every process stopped (exit awaited) before its folders go
    const stopped = await Promise.all([dest, src].filter((p): p is Proc => p !== null).map((p) => ctx.procs.stop(p, 10_000)));
    if (stopped.every(Boolean)) {
      t.cleanup?.(d, dst);
      setAside(ctx, dst);
    }
  }
  const said = t.note?.();
  if (said) m.note = [m.note, said].filter(Boolean).join('; ');
  return out;
}

/** (c) on a converged pair: one file changed on the source side (both sides settled first). */
async function changeCase(ctx: Ctx, t: PeerTool, d: DataSet, dst: string, round: number, sides: Side[], cpu: () => number, watch: Proc[], out: Measure[]): Promise<void> {
  await settle(ctx, sides);
  const name = changedName(d);
  const c = blank(t.tool, 'c', round, d, 0, 1);
  out.push(c);
  c.note = t.changeNote;
  const cpu0 = cpu();
  const tc = nowMs();
  const exp = changeOne(d, name, { minKiB: ctx.o['min-kib'], maxKiB: ctx.o['max-kib'], seed: ctx.o.seed }, round);
  c.bytes = exp.size;
  const rc = await converge(ctx, new TreePoll(dst, d, name), sides, watch, CHANGE_TIMEOUT_MS, CHANGE_POLL_MS);
  c.cpuS = cpu() - cpu0;
  for (const s of sides) s.sample();
  // peaks over the processes' whole lives (VmHWM)
  c.rssDst = sides[0]!.peakMiB;
  c.rssSrc = sides[1]!.peakMiB;
  if (rc.at !== null) c.seconds = (rc.at - tc) / 1000;
  else c.note = `FAILED: ${rc.why}`;
  process.stderr.write(`  ${t.tool} c: ${c.seconds === null ? c.note : `${fmt(c.seconds, 3)} s`}\n`);
  // the rest of the tree must still be right too (nothing else moved); a fetch that just finished
  // may still be removing its ticket and lock for a moment: leftovers count only if they stay
  let all = await checkTree(dst, d);
  for (let i = 0; i < 30 && all.extra.length; i++) {
    await new Promise((r) => setTimeout(r, 100));
    all = await checkTree(dst, d);
  }
  // the changed file itself, once the fetch that brought it has cleaned up
  c.check = await checkTree(dst, d, [name]);
  if (all.bytesOk !== all.n || all.extra.length) c.problems.push(`after (c) the tree differs: bytes ok ${all.bytesOk}/${all.n}, ${all.extra.length} unexpected file(s)${all.extra.length ? `, e.g. ${all.extra[0]}` : ""}`);
}

/** Wait for a line matching `re` from `p` (its stdout), bounded; rejects when it exits first. */
function lineFrom(p: Proc, lines: string[], re: RegExp, timeoutMs: number, what: string, signal: AbortSignal): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (f: () => void) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      clearTimeout(limit);
      signal.removeEventListener('abort', onAbort);
      f();
    };
    const onAbort = () => finish(() => reject(new Aborted()));
    signal.addEventListener('abort', onAbort, { once: true });
    let seen = 0;
    const timer = setInterval(() => {
      for (; seen < lines.length; seen++) {
        const m = re.exec(lines[seen]!);
        if (m) return finish(() => resolve(m));
      }
      if (p.exit) finish(() => reject(new Error(`${what}: exited (${p.exit!.code ?? p.exit!.signal}) before it was ready\n${tailOf(p, 12)}`)));
    }, 20);
    const limit = setTimeout(() => finish(() => reject(new Error(`${what}: not ready within ${fmt(timeoutMs / 1000, 0)} s\n${tailOf(p, 12)}`))), timeoutMs);
  });
}

// -- swarm ------------------------------------------------------------------------------------

function swarmTool(ctx: Ctx): PeerTool {
  const prefix = ctx.o.profile ? [process.execPath, '--cpu-prof', `--cpu-prof-dir=${ensureDir(ctx.o.profile)}`] : [process.execPath];
  const extra = ctx.o['swarm-args'] ?? [];
  const events = { fetched: 0, warnings: [] as string[] };
  const onLine = (line: string) => {
    if (!line.startsWith('{')) return;
    try {
      const e = JSON.parse(line) as { event?: string; message?: string };
      if (e.event === 'fetched') events.fetched++;
      if (e.event === 'warning' && events.warnings.length < 1000) events.warnings.push(String(e.message));
    } catch {
      // not JSON
    }
  };
  return {
    tool: 'swarm',
    changeNote: 'push (fs watch, sync-news)',
    async startSource(d) {
      const lines: string[] = [];
      // a fresh folder key per case (--new-key refuses to replace one); the destination joins with --key
      rmSync(path.join(d.src, '.swarm', 'sync-key'), { force: true });
      const proc = ctx.procs.start(`swarm sync ${d.key} source`, [...prefix, SWARM_BIN, 'sync', d.src, '--new-key', '--port', '0', '--no-tracker', '--threads', '0', '--json', ...extra], {
        onLine: (l) => lines.push(l),
      });
      try {
        // the source hashes its whole folder before it serves: bounded by the case's time
        const m = await lineFrom(proc, lines, /"event":"syncing".*"port":(\d+)/, ctx.caseTimeoutMs, 'swarm sync (source)', ctx.signal);
        return { proc, contact: `127.0.0.1:${m[1]}` };
      } catch (e) {
        await ctx.procs.stop(proc);
        throw e;
      }
    },
    startDest(d, dst, contact) {
      events.fetched = 0;
      events.warnings = [];
      return ctx.procs.start(`swarm sync ${d.key} destination`, [...prefix, SWARM_BIN, 'sync', dst, '--key', path.join(d.src, '.swarm', 'sync-key'), '--port', '0', '--no-tracker', '--neighbor', contact, '--threads', '0', '--json', ...extra], { onLine });
    },
    note() {
      if (!events.warnings.length) return '';
      process.stderr.write(`  swarm destination: ${events.warnings.length} warning(s), e.g. ${events.warnings[0]}\n`);
      return `${events.warnings.length} warning(s)`;
    },
  };
}

// -- Syncthing -----------------------------------------------------------------------------------

interface StHome {
  dir: string;
  id: string;
}

const DEVICE_ID = /\b([A-Z2-7]{7}(?:-[A-Z2-7]{7}){7})\b/;

/** Certificates and the device ID of one instance (`syncthing generate`, or the older `-generate`). */
function syncthingHome(dir: string): StHome & { version: number } {
  rmSync(dir, { recursive: true, force: true });
  ensureDir(dir);
  const tries = [
    ['syncthing', 'generate', `--home=${dir}`, '--no-default-folder'],
    ['syncthing', 'generate', `--home=${dir}`],
    ['syncthing', `-generate=${dir}`],
  ];
  let said = '';
  for (const argv of tries) {
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 60_000 });
    said = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    if (r.status === 0 && existsSync(path.join(dir, 'cert.pem'))) break;
  }
  if (!existsSync(path.join(dir, 'cert.pem'))) throw new Error(`syncthing generate failed: ${said.trim().split('\n').slice(-3).join(' ')}`);
  let id = DEVICE_ID.exec(said)?.[1];
  if (!id) {
    const r = spawnSync('syncthing', [`--home=${dir}`, '--device-id'], { encoding: 'utf8', timeout: 60_000 });
    id = DEVICE_ID.exec(`${r.stdout ?? ''}`)?.[1];
  }
  if (!id) throw new Error(`no device ID from syncthing generate: ${said.trim().split('\n').slice(-3).join(' ')}`);
  // the config format this syncthing writes (it migrates older ones, refuses newer ones)
  let version = 35;
  try {
    version = Number(/<configuration version="(\d+)"/.exec(readFileSync(path.join(dir, 'config.xml'), 'utf8'))?.[1] ?? version);
  } catch {
    // none written: keep the guess
  }
  return { dir, id, version };
}

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function syncthingConfig(o: { version: number; self: StHome; selfPort: number; guiPort: number; devices: { home: StHome; port: number; name: string }[]; folderId: string; folderPath: string }): string {
  const devs = o.devices
    .map(
      (d) => `    <device id="${d.home.id}" name="${d.name}" compression="metadata" introducer="false" skipIntroductionRemovals="false" introducedBy="">
        <address>tcp://127.0.0.1:${d.port}</address>
        <paused>false</paused>
        <autoAcceptFolders>false</autoAcceptFolders>
    </device>`,
    )
    .join('\n');
  return `<configuration version="${o.version}">
    <folder id="${o.folderId}" label="${o.folderId}" path="${xml(o.folderPath)}" type="sendreceive" rescanIntervalS="86400" fsWatcherEnabled="true" fsWatcherDelayS="${SYNCTHING_WATCH_DELAY_S}" ignorePerms="false" autoNormalize="true">
        <filesystemType>basic</filesystemType>
${o.devices.map((d) => `        <device id="${d.home.id}" introducedBy=""></device>`).join('\n')}
    </folder>
${devs}
    <gui enabled="false" tls="false" debugging="false">
        <address>127.0.0.1:${o.guiPort}</address>
    </gui>
    <options>
        <listenAddress>tcp://127.0.0.1:${o.selfPort}</listenAddress>
        <globalAnnounceEnabled>false</globalAnnounceEnabled>
        <localAnnounceEnabled>false</localAnnounceEnabled>
        <relaysEnabled>false</relaysEnabled>
        <natEnabled>false</natEnabled>
        <startBrowser>false</startBrowser>
        <urAccepted>-1</urAccepted>
        <autoUpgradeIntervalH>0</autoUpgradeIntervalH>
        <crashReportingEnabled>false</crashReportingEnabled>
        <announceLANAddresses>false</announceLANAddresses>
        <stunKeepaliveStartS>0</stunKeepaliveStartS>
    </options>
</configuration>
`;
}

function syncthingTool(ctx: Ctx): PeerTool {
  // no upgrade checks, no default folder, whatever the build
  process.env.STNOUPGRADE = '1';
  process.env.STNODEFAULTFOLDER = '1';
  let homes: { src: StHome; dst: StHome; version: number } | null = null;
  const ports = { src: 0, dst: 0 };
  const prepare = async (d: DataSet, dst: string) => {
    if (!homes) {
      const src = syncthingHome(path.join(ctx.root, 'st-home-src'));
      const dsth = syncthingHome(path.join(ctx.root, 'st-home-dst'));
      homes = { src, dst: dsth, version: src.version };
    }
    ports.src = await freePort();
    ports.dst = await freePort();
    const devices = [
      { home: homes.src, port: ports.src, name: 'source' },
      { home: homes.dst, port: ports.dst, name: 'destination' },
    ];
    for (const [side, folder] of [['src', d.src], ['dst', dst]] as const) {
      const h = homes[side];
      // a fresh database per case: nothing known from the last one
      for (const f of readdirSync(h.dir)) if (f.startsWith('index')) rmSync(path.join(h.dir, f), { recursive: true, force: true });
      writeFileSync(
        path.join(h.dir, 'config.xml'),
        syncthingConfig({ version: homes.version, self: h, selfPort: ports[side], guiPort: await freePort(), devices, folderId: `bench-${d.key}`, folderPath: folder }),
      );
      // the folder marker Syncthing wants before it syncs into a folder
      ensureDir(path.join(folder, '.stfolder'));
    }
  };
  const start = (side: 'src' | 'dst', lines: string[]) =>
    ctx.procs.start(`syncthing ${side}`, ['syncthing', `--home=${homes![side].dir}`, '--no-browser', '--no-restart'], { onLine: (l) => lines.push(l) });
  let destDir = '';
  let srcLines: string[] = [];
  return {
    tool: 'syncthing',
    changeNote: `fs watcher, its default ${SYNCTHING_WATCH_DELAY_S} s delay`,
    async startSource(d) {
      destDir = freshDstPath(ctx, d, 'syncthing');
      await prepare(d, destDir);
      srcLines = [];
      const proc = start('src', srcLines);
      try {
        await lineFrom(proc, srcLines, /My ID|Ready to synchronize|Completed initial scan/, START_TIMEOUT_MS, 'syncthing (source)', ctx.signal);
        await lineFrom(proc, srcLines, /Completed initial scan/, ctx.caseTimeoutMs, 'syncthing (source scan)', ctx.signal);
        return { proc, contact: '' };
      } catch (e) {
        await ctx.procs.stop(proc, 10_000);
        throw e;
      }
    },
    startDest() {
      return start('dst', []);
    },
    cleanup(d) {
      rmSync(path.join(d.src, '.stfolder'), { recursive: true, force: true });
    },
  };
}

/** The destination path of a tool and data set (freshDst makes it empty). */
const freshDstPath = (ctx: Ctx, d: DataSet, tool: Tool) => path.join(ctx.root, `${d.key}-dst-${tool}`);

// -- rsync ------------------------------------------------------------------------------------

interface RsyncDaemon {
  proc: Proc;
  url(d: DataSet): string;
}

async function startRsyncd(ctx: Ctx, sets: DataSet[]): Promise<RsyncDaemon> {
  const dir = ensureDir(path.join(ctx.root, 'rsyncd'));
  const port = await freePort();
  const conf = path.join(dir, 'rsyncd.conf');
  const asRoot = process.getuid?.() === 0;
  writeFileSync(
    conf,
    [
      `log file = ${dir}/rsyncd.log`,
      'use chroot = false',
      'read only = true',
      // the other tools' state folders are not data
      `exclude = ${[...TOOL_STATE].map((n) => `/${n}/`).join(' ')}`,
      ...(asRoot ? [`uid = ${process.getuid!()}`, `gid = ${process.getgid!()}`] : []),
      ...sets.flatMap((d) => [`[${d.key}]`, `    path = ${d.src}`]),
      '',
    ].join('\n'),
  );
  const proc = ctx.procs.start('rsync daemon', ['rsync', '--daemon', '--no-detach', `--config=${conf}`, `--port=${port}`, '--address=127.0.0.1']);
  const up = await waitUntil(
    () =>
      !!proc.exit ||
      new Promise<boolean>((r) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => (s.destroy(), r(true)));
        s.once('error', () => r(false));
      }),
    { timeoutMs: START_TIMEOUT_MS, intervalMs: 50, signal: ctx.signal },
  );
  if (!up || proc.exit) {
    await ctx.procs.stop(proc);
    throw new Error(`rsync --daemon did not listen on 127.0.0.1:${port}\n${tailOf(proc)}`);
  }
  return { proc, url: (d) => `rsync://127.0.0.1:${port}/${d.key}/` };
}

/** One timed client run: wall time and the client's CPU/RSS (GNU time), plus the daemon's CPU. */
async function rsyncRun(ctx: Ctx, daemon: RsyncDaemon, d: DataSet, dst: string, m: Measure, extra: string[]): Promise<void> {
  const side = new Side(() => [daemon.proc.pid]);
  const cpu0 = side.cpuS();
  side.sample();
  const sampler = setInterval(() => side.sample(), POLL_MS);
  // the run is stopped (by PID, in timed) on Ctrl-C or when the case's time is up
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  const limit = setTimeout(onAbort, ctx.caseTimeoutMs);
  let t;
  try {
    t = await timed(ctx.procs, ['rsync', '-a', ...extra, daemon.url(d), `${dst}/`], stop.signal);
  } catch (e) {
    if (ctx.signal.aborted || !(e instanceof Aborted)) throw e;
    m.note = `FAILED: timed out after ${fmt(ctx.caseTimeoutMs / 1000, 0)} s`;
    return;
  } finally {
    clearInterval(sampler);
    clearTimeout(limit);
    ctx.signal.removeEventListener('abort', onAbort);
  }
  // the daemon's child for this connection is reaped before its CPU is counted in the daemon's
  await waitUntil(() => treeOf(daemon.proc.pid).length === 1, { timeoutMs: 5_000, intervalMs: 20, signal: ctx.signal });
  if (t.code !== 0) {
    m.note = `FAILED: rsync exited ${t.code}`;
    return;
  }
  m.seconds = t.seconds;
  m.cpuS = t.cpuSeconds === null ? null : t.cpuSeconds + side.cpuS() - cpu0;
  m.rssDst = t.maxRssMiB;
  m.rssSrc = side.peakMiB;
}

async function rsyncCases(ctx: Ctx, daemon: RsyncDaemon, d: DataSet, round: number, withChange: boolean, tool: 'rsync' | 'rsync-fsync'): Promise<Measure[]> {
  const extra = tool === 'rsync-fsync' ? ['--fsync'] : [];
  const m = blank(tool, d.key === 'big' ? 'b' : 'a', round, d);
  const out = [m];
  const dst = freshDst(ctx, d, tool);
  cleanSource(d);
  spawnSync('sync');
  try {
    await rsyncRun(ctx, daemon, d, dst, m, extra);
    process.stderr.write(`  ${tool} ${m.kase}: ${m.seconds === null ? m.note : `${fmt(m.seconds, 3)} s`}\n`);
    m.check = await checkTree(dst, d);
    if (m.check.extra.length) m.problems.push(`${m.check.extra.length} unexpected file(s) left, e.g. ${m.check.extra[0]}`);
    if (!withChange || m.seconds === null) return out;
    const name = changedName(d);
    const c = blank(tool, 'c', round, d, 0, 1);
    out.push(c);
    c.bytes = changeOne(d, name, { minKiB: ctx.o['min-kib'], maxKiB: ctx.o['max-kib'], seed: ctx.o.seed }, round).size;
    await rsyncRun(ctx, daemon, d, dst, c, extra);
    if (c.seconds !== null) c.note = 'poll: one run (rsync has no push)';
    process.stderr.write(`  ${tool} c: ${c.seconds === null ? c.note : `${fmt(c.seconds, 3)} s`}\n`);
    c.check = await checkTree(dst, d, [name]);
  } finally {
    setAside(ctx, dst);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// tools present (installed when missing, if allowed)

function ensureTools(wanted: readonly Tool[], install: boolean): Map<Tool, string> {
  // the programs: rsync-fsync is rsync
  const outside = [...new Set(wanted.filter((t) => t !== 'swarm').map((t) => (t === 'rsync-fsync' ? 'rsync' : t)))];
  const missing = installMissing(outside, install);
  const why = new Map<Tool, string>();
  for (const t of missing) {
    why.set(t as Tool, missingText([t]));
    if (t === 'rsync') why.set('rsync-fsync', missingText([t]));
  }
  return why;
}

// ---------------------------------------------------------------------------------------------

function options() {
  return parseOptions('node dist/bench/sync.js [options]: two folders kept in step on loopback, swarm sync against rsync and Syncthing', {
    files: num(10_000, '(a): number of small files'),
    'min-kib': num(1, '(a): smallest file, KiB'),
    'max-kib': num(64, '(a): largest file, KiB'),
    'per-dir': num(100, '(a): files per subfolder'),
    'big-mib': num(1024, '(b): size of the big file, MiB'),
    'no-big': flag('leave out (b)'),
    tools: oneOf(TOOLS, [...TOOLS], 'tools to run'),
    rounds: num(1, 'rounds (each tool once per round, alternating; medians)'),
    'timeout-s': num(600, 'bound per case (a) or (b), seconds; (c) is bounded at 60 s'),
    seed: num(1, 'seed of the generated data'),
    'no-install': flag('do not apt-get install missing rsync/syncthing (as root the bench does by default)'),
    'swarm-args': args('extra arguments for both swarm sync processes, e.g. "--parallel 16"'),
    profile: str('', 'write V8 CPU profiles of the swarm processes to this folder (node --cpu-prof)'),
    dir: str('/tmp/swarm-bench-sync', 'work folder (the data is written here, deleted at the end)'),
    keep: flag('keep the work folder at the end (for back-to-back runs: on ext4, files created within minutes of mass deletions allocate their inodes slowly, up to 6 minutes after; give each run its own --dir and delete them after)'),
    results: str(DEFAULT_RESULTS_DIR, 'folder for the JSON record of the run'),
  });
}

if (isMain(import.meta.url)) {
  const o = options();
  runMain('sync', async ({ procs, signal }) => {
    if (o.files < 1 || o['per-dir'] < 1 || o['min-kib'] > o['max-kib'] || o.rounds < 1) {
      process.stderr.write('sync: need --files >= 1, --per-dir >= 1, --rounds >= 1 and --min-kib <= --max-kib\n');
      return 2;
    }
    const root = ensureDir(o.dir);
    const ctx: Ctx = { o, procs, signal, root, caseTimeoutMs: o['timeout-s'] * 1000 };
    const started = new Date();
    console.log(`swarm sync bench — ${machine()}`);
    const missing = ensureTools(o.tools, !o['no-install']);
    const ms: Measure[] = [];
    let error: string | null = null;
    const skip = (tool: Tool, d: DataSet, kase: Case, why: string) => ms.push({ ...blank(tool, kase, 1, d), skipped: true, note: `skipped: ${why}` });
    try {
      process.stderr.write(`sync: writing ${o.files} files of ${o['min-kib']}-${o['max-kib']} KiB (seed ${o.seed})...\n`);
      const small = makeSmall(root, { files: o.files, minKiB: o['min-kib'], maxKiB: o['max-kib'], perDir: o['per-dir'], seed: o.seed });
      if (!o['no-big']) process.stderr.write(`sync: writing ${sizeText(o['big-mib'] * MiB)}...\n`);
      const big = o['no-big'] ? null : makeBig(root, { bigMiB: o['big-mib'], seed: o.seed });
      const daemon = (o.tools.includes('rsync') || o.tools.includes('rsync-fsync')) && !missing.has('rsync') ? await startRsyncd(ctx, big ? [small, big] : [small]) : null;
      const peerTools = new Map<Tool, PeerTool>();
      if (o.tools.includes('swarm')) peerTools.set('swarm', swarmTool(ctx));
      if (o.tools.includes('syncthing') && !missing.has('syncthing')) peerTools.set('syncthing', syncthingTool(ctx));
      /** A tool whose start failed once is not tried again (the first row says why). */
      const gaveUp = new Map<Tool, string>();
      const runCase = async (tool: Tool, d: DataSet, round: number) => {
        const kase: Case = d.key === 'big' ? 'b' : 'a';
        checkAborted(signal);
        if (missing.has(tool)) return void (round === 1 && skip(tool, d, kase, missing.get(tool)!));
        if (gaveUp.has(tool)) return void (round === 1 && skip(tool, d, kase, gaveUp.get(tool)!));
        process.stderr.write(`sync: round ${round}, ${tool}, ${CASE_TEXT[kase](o)}\n`);
        const got = tool === 'rsync' || tool === 'rsync-fsync' ? await rsyncCases(ctx, daemon!, d, round, d === small, tool) : await peerCases(ctx, peerTools.get(tool)!, d, round, d === small);
        if (got[0]!.skipped) gaveUp.set(tool, got[0]!.note.replace(/^skipped: /, ''));
        ms.push(...got);
      };
      for (let round = 1; round <= o.rounds; round++) for (const tool of o.tools) await runCase(tool, small, round);
      console.log(`\n${sectionText(`(a) ${o.files} files of ${o['min-kib']}-${o['max-kib']} KiB (${sizeText(bytesOf(small))}) into an empty folder, then (c) one of them changed at the source`, rowsOf(ms, ['a', 'c']), o)}`);
      if (big) {
        for (let round = 1; round <= o.rounds; round++) for (const tool of o.tools) await runCase(tool, big, round);
        console.log(`\n${sectionText(`(b) one file of ${sizeText(bytesOf(big))} into an empty folder`, rowsOf(ms, ['b']), o)}`);
      }
    } catch (e) {
      error = e instanceof Aborted ? 'interrupted' : ((e as Error).stack ?? String(e));
    } finally {
      await removeAfterStop(procs, o.keep ? [] : [root]);
    }
    const fails = ms.filter(failed);
    console.log('');
    console.log(
      [
        `source scan: the source side's start until it serves (its whole folder hashed: swarm, Syncthing); s to converged: from the destination's start (rsync: the client run) until every file is there with its size, polled every ${POLL_MS} ms ((c): every ${CHANGE_POLL_MS} ms, bytes compared)`,
        'CPU s: both sides\' processes over that interval; peak RSS: destination/source; bytes ok, mtimes ok: files with the source\'s SHA-256 and mtime (seconds), checked after the clock stopped',
        'swarm and Syncthing fsync what they write; rsync does not (its writeback happens after it exits), rsync-fsync is rsync --fsync (each file flushed as it is written)',
        ...verdicts(ms),
        ...(fails.length ? [`FAILED: ${fails.map((m) => `${m.tool} (${m.kase})`).join(', ')}`] : []),
        ...(error ? [error === 'interrupted' ? 'interrupted: the tables hold what finished' : `FAILED: ${error}`] : []),
      ].join('\n'),
    );
    if (!signal.aborted) {
      const file = writeResults(o.results, 'sync', started, { options: o, measures: ms, verdicts: verdicts(ms), error });
      console.log(`results: ${shownPath(file)}`);
    }
    return fails.length || (error && error !== 'interrupted') ? 1 : 0;
  });
}
