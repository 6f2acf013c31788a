/**
 * What `swarm shell` does with each command (commands.ts parses them), over one running peer
 * (SwarmNode): the seeds' prompts as one. It writes lines through `say` and never touches the
 * terminal itself (bin/commands/shell.ts owns readline, the prompt and the bars), so it can be
 * driven by a test or a script. Downloads run in the background; QUIT waits for them and for
 * uploads in progress, FORCEQUIT does not.
 */
import { mkdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { ERROR_CODES, SwarmError, asSwarmError } from '../errors.js';
import { STATE_DIR_NAME, defaultTracker } from '../constants.js';
import { normalizeUserName } from '../protocol/names.js';
import { listPeer } from '../listing.js';
import { trackerDirectory } from '../tracker/client.js';
import { DEFAULT_SEARCH_TTL } from '../discovery/search.js';
import { MAX_TTL } from '../discovery/flood.js';
import type { SwarmNode } from '../node/node.js';
import type { GetPromise } from '../download/get.js';
import type { ProgressEvent } from '../download/events.js';
import { chunksOf } from '../manifest.js';
import { kindOf } from '../share/kinds.js';
import { addressText } from '../types.js';
import { seenAt } from '../discovery/peer-book.js';
import { COMMANDS, complete, findCommand, parseLine, usage } from './commands.js';

export interface ShellOptions {
  /** Where downloads land (default: the shared folder, else the current folder). */
  outDir?: string;
  /** Threads for each download's connections (0: main thread). */
  peerThreads?: number;
  /** Names that came from the network are made safe for a terminal by this. */
  printable?: (s: string) => string;
  /** Where errors, warnings and failed downloads are said (default: with everything else). A scripted shell gives stderr. */
  complain?: (line: string) => void;
}

interface Job {
  name: string;
  p: GetPromise;
  progress: ProgressEvent | null;
  started: number;
}

const human = (n: number): string => {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) (v /= 1024), i++;
  return i === 0 ? `${Math.round(n)} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${u[i]}`;
};
const when = (sec: number) => new Date(sec * 1000).toISOString().replace('T', ' ').slice(0, 19);
const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;
const addr = addressText;

export class Shell {
  private readonly jobs = new Set<Job>();
  /** Names seen (local, searches, directories) for completion. */
  readonly names = new Set<string>();
  private readonly p: (s: string) => string;
  private readonly complain: (line: string) => void;
  quitting = false;
  private forced = false;
  /** The first download that failed (not cut by FORCEQUIT): a scripted shell exits with its code. */
  firstFailure: SwarmError | null = null;

  constructor(
    readonly node: SwarmNode,
    private readonly say: (line: string) => void,
    private readonly o: ShellOptions = {},
  ) {
    this.p = o.printable ?? ((s) => s);
    this.complain = o.complain ?? say;
    for (const f of node.library?.files() ?? []) this.names.add(f.name);
  }

  /** Tab completion of a line: commands, then peers or names. */
  static complete = complete;

  /** Downloads running now. */
  get running(): number {
    return this.jobs.size;
  }

  /** A few words on the downloads running (for a prompt), or '' when none. */
  progressText(): string {
    const jobs = [...this.jobs];
    if (jobs.length === 0) return '';
    const first = jobs[0]!;
    const pr = first.progress;
    const pct = pr ? `${Math.floor((100 * pr.bytes) / Math.max(1, pr.total))}%` : '…';
    const name = this.p(first.name.length > 24 ? `…${first.name.slice(-23)}` : first.name);
    return jobs.length === 1 ? `${name} ${pct}` : `${name} ${pct} +${jobs.length - 1} more`;
  }

  /**
   * Run one typed line. Resolves 'quit' when the shell should end (after QUIT has waited, or at
   * once for FORCEQUIT), else nothing; errors are said, never thrown.
   */
  async run(line: string): Promise<'quit' | 'forcequit' | void> {
    const parsed = parseLine(line);
    if (!parsed.ok) return void this.complain(`error: ${parsed.message}`);
    if (!parsed.cmd) return;
    try {
      return await this.exec(parsed.cmd.name, parsed.args);
    } catch (err) {
      const e = asSwarmError(err);
      this.complain(`error: ${this.p(e.message)} [${e.code}]`);
    }
  }

  private async exec(cmd: string, a: string[]): Promise<'quit' | 'forcequit' | void> {
    const n = this.node;
    switch (cmd) {
      case 'help':
        return this.help(a[0]);
      case 'LISTL': {
        const files = n.library?.files() ?? [];
        // what it downloaded is shared too (a shell without DIR, or -o elsewhere): peers see it in LISTR
        const shared = new Set(files.map((f) => f.name));
        const held = n.sources.heldContents().filter((h) => !shared.has(h.name));
        if (files.length === 0 && held.length === 0) return void this.say('There are no files in the directory');
        for (const f of files) this.say(`${f.kind}\t${this.p(f.name)}\tsize: ${f.size}`);
        for (const h of held) this.say(`${kindOf(h.name)}\t${this.p(h.name)}\tsize: ${h.size}${h.partial ? '\t(downloading)' : ''}`);
        return;
      }
      case 'LISTR': {
        const target = a[0]!.includes(':') && !a[0]!.startsWith('[') ? `[${a[0]}]:${a[1]}` : `${a[0]}:${a[1]}`;
        const { files, dropped } = await listPeer(target);
        if (files.length === 0) this.say(`${target} shares no files`);
        for (const f of files) {
          this.names.add(f.name);
          this.say(`${f.kind}\t${this.p(f.name)}\tsize: ${f.size}`);
        }
        if (dropped.length) this.say(`(${dropped.length} invalid entries from ${target} left out)`);
        return;
      }
      case 'SEARCH': {
        const ttl = a[1] !== undefined ? Number(a[1]) : DEFAULT_SEARCH_TTL;
        if (ttl < 1 || ttl > MAX_TTL) return void this.complain(`error: ttl must be 1 to ${MAX_TTL}`);
        const { results, asked, warnings } = await n.discovery.search(a[0]!, { ttl, quietTracker: true });
        for (const w of warnings) this.complain(`warning: ${this.p(w)}`);
        if (results.length === 0) return void this.say(`nothing matches ${this.p(a[0]!)} (asked ${asked.join(', ')})`);
        for (const r of results) {
          this.names.add(r.name);
          this.say(`${r.kind}\t${this.p(r.name)}\tsize: ${r.size}\tmodified ${when(r.mtime)}\t${r.cid.slice(0, 16)}\t${r.holders.map(addr).join(' ')}`);
        }
        return void this.say(`${results.length} result${results.length === 1 ? '' : 's'}`);
      }
      case 'DISCOVER': {
        const ttl = a[0] !== undefined ? Number(a[0]) : 2;
        if (ttl < 1 || ttl > MAX_TTL) return void this.complain(`error: ttl must be 1 to ${MAX_TTL}`);
        if (n.book.size === 0 && !n.lan) return void this.say('no neighbours to ask (start the shell with --neighbor host:port or --lan)');
        const pongs = await n.discovery.discoverPeers(ttl);
        this.say(`${pongs.length} peer${pongs.length === 1 ? '' : 's'} answered within ${ttl} hop${ttl === 1 ? '' : 's'}; ${n.book.size} known`);
        for (const p of pongs) this.say(`  ${addr(p.addr)}  ${p.peer}  ${p.hops} hop${p.hops === 1 ? '' : 's'}`);
        return;
      }
      case 'RESET':
        return void this.say(`forgot ${plural(n.discovery.reset(), 'peer')}`);
      case 'peers': {
        const list = n.discovery.peers();
        if (list.length === 0) return void this.say('no peers known');
        const now = Date.now();
        for (const k of list) this.say(`${addr(k)}  ${k.peer ?? '-'}  ${k.sources.join(',')}  ${seenAt(k) ? `${Math.max(0, Math.round((now - seenAt(k)) / 1000))} s ago` : 'never seen'}`);
        return;
      }
      case 'GET':
        return this.download(a[0]!, a[1] !== undefined ? [`${a[1]!.includes(':') ? `[${a[1]}]` : a[1]}:${a[2]}`] : undefined);
      case 'download':
        return this.download(a[0]!);
      case 'list': {
        const files = n.library?.files() ?? [];
        for (const f of files) {
          const m = n.library!.manifest(f.name);
          const c = m ? chunksOf(m) : 0;
          this.say(`${this.p(f.name)}\t${human(f.size)}\t${c}/${c} chunks`);
        }
        for (const h of n.sources.heldContents()) {
          const src = n.sources.byCid(h.cid);
          if (!src) continue;
          const total = chunksOf(src.manifest);
          let have = 0;
          for (let i = 0; i < total; i++) if (src.has(i)) have++;
          this.say(`${this.p(h.name)}\t${human(h.size)}\t${have}/${total} chunks${h.partial ? ' (downloading)' : ''}`);
        }
        if (files.length === 0 && n.sources.heldContents().length === 0) this.say('nothing here yet');
        return;
      }
      case 'status': {
        const up = n.uploadStats();
        if (this.jobs.size === 0) this.say('no downloads running');
        for (const j of this.jobs) {
          const pr = j.progress;
          this.say(pr ? `${this.p(j.name)}: ${Math.floor((100 * pr.bytes) / Math.max(1, pr.total))}% of ${human(pr.total)}, ${human(Math.round(pr.rate))}/s from ${plural(pr.peers.length, 'peer')}` : `${this.p(j.name)}: looking for holders`);
        }
        return void this.say(`uploading to ${up.peers} peer${up.peers === 1 ? '' : 's'}; ${human(up.bytes)} uploaded in all`);
      }
      case 'register': {
        const s = await n.trackerRegister();
        return void this.say(`registered with tracker ${s.address}: ${s.files} file${s.files === 1 ? '' : 's'}${s.dropped ? ` (${s.dropped} refused)` : ''}`);
      }
      case 'unregister': {
        const address = await n.trackerUnregister();
        return void this.say(address ? `left tracker ${address}` : 'not registered with a tracker');
      }
      case 'get_files_list': {
        const tracker = n.trackerAddress();
        if (!tracker) return void this.say('no tracker (the shell was started with --no-tracker)');
        const { entries } = await trackerDirectory(tracker);
        if (entries.length === 0) return void this.say('the directory is empty');
        for (const [name, e] of entries) {
          this.names.add(name);
          this.say(`${this.p(name)}\t${human(e.size)}\tmodified ${when(e.mtime)}\t${[...e.holders.map(addr), ...e.partial.map((h) => `${addr(h)}(partial)`)].join(' ')}`);
        }
        return;
      }
      case 'update': {
        const lib = n.library;
        if (!lib) return void this.say('this shell shares no folder');
        const before = new Map(lib.files().map((f) => [f.name, f.cid]));
        await lib.refresh();
        const after = lib.files();
        const added = after.filter((f) => !before.has(f.name)).length;
        const changed = after.filter((f) => before.has(f.name) && before.get(f.name) !== f.cid).length;
        const removed = [...before.keys()].filter((k) => !after.some((f) => f.name === k)).length;
        for (const f of after) this.names.add(f.name);
        return void this.say(`rescanned: ${added} added, ${changed} changed, ${removed} removed${n.tracker ? '; the tracker is told' : ''}`);
      }
      case 'delete':
        return this.delete(a[0]!);
      case 'QUIT':
      case 'exit':
        return this.quit();
      case 'FORCEQUIT':
        return this.forceQuit();
    }
  }

  private help(topic?: string): void {
    if (topic) {
      const c = findCommand(topic);
      if (!c) return void this.say(`no command ${JSON.stringify(topic)}; type help for the list`);
      return void this.say(`${usage(c)}: ${c.help} (seed ${c.seed})`);
    }
    this.say('commands (case-insensitive; arguments separated by commas or spaces):');
    const w = Math.max(...COMMANDS.map((c) => usage(c).length));
    for (const c of COMMANDS) this.say(`  ${usage(c).padEnd(w)}  ${c.help}`);
  }

  /** Start a download in the background; its end is said when it comes. */
  private download(typed: string, peers?: string[]): void {
    if (this.quitting) return void this.complain('error: quitting; no new downloads');
    // `./name` (what tab completion gives) is the name
    const name = normalizeUserName(typed);
    for (const j of this.jobs) if (j.name === name) return void this.say(`${this.p(name)} is already downloading (status shows how far)`);
    const outDir = this.o.outDir ?? this.node.library?.root ?? '.';
    // the tracker this shell was started with (the node's own, or --tracker): a download without
    // a named peer asks it, not the default one
    const tracker = peers ? null : this.node.trackerAddress();
    const where = peers ? { peers } : tracker === null ? { noTracker: true } : tracker !== defaultTracker() ? { tracker } : {};
    const p = this.node.get(name, { outDir, ...where, peerThreads: this.o.peerThreads ?? 0 });
    const job: Job = { name, p, progress: null, started: Date.now() };
    this.jobs.add(job);
    p.download.on('start', (e) => this.say(`${this.p(name)}: ${human(e.size)} from ${e.peers.length} peer${e.peers.length === 1 ? '' : 's'} (${this.p(e.source)})${e.resumedChunks ? `, resuming ${e.resumedChunks} chunks` : ''}`));
    p.download.on('progress', (e) => (job.progress = e));
    p.download.on('peer-dropped', (e) => this.say(`${this.p(name)}: dropped ${e.peer}: ${this.p(e.reason)}`));
    this.say(`downloading ${this.p(name)} in the background${peers ? ` from ${peers[0]}` : ''} (status shows progress)`);
    p.then(
      (r) => this.say(r.upToDate ? `${this.p(name)}: already up to date at ${this.p(r.path)}` : `${this.p(name)}: saved ${this.p(r.path)}, ${human(r.size)} in ${r.seconds.toFixed(1)} s from ${r.peersUsed} peer${r.peersUsed === 1 ? '' : 's'}`),
      (err) => {
        const e = asSwarmError(err);
        // get's advice names its own options; the shell has neither --overwrite nor a later -o
        const advice = e.code === ERROR_CODES.EXISTS && /--overwrite/.test(e.message) ? ` (in the shell: move that file away and ask again, or start the shell with -o DIR)` : '';
        this.complain(`${this.p(name)}: failed: ${this.p(e.message)}${advice} [${e.code}]`);
        if (!this.forced) this.firstFailure ??= e;
      },
    ).finally(() => {
      this.jobs.delete(job);
      this.names.add(name);
    });
  }

  /** Seed 003's delete: the file leaves the share (kept in DIR/.swarm/trash/, never destroyed). */
  private async delete(typed: string): Promise<void> {
    const name = normalizeUserName(typed);
    const lib = this.node.library;
    if (!lib) return void this.say('this shell shares no folder');
    const f = lib.stat(name);
    if (!f) throw new SwarmError(ERROR_CODES.NOT_FOUND, `not shared here: ${name}`);
    const trash = path.join(lib.root, STATE_DIR_NAME, 'trash');
    await mkdir(trash, { recursive: true });
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    const dest = path.join(trash, `${stamp}-${name.replace(/\//g, '__')}`);
    await rename(path.join(lib.root, ...name.split('/')), dest);
    await lib.refresh();
    this.names.delete(name);
    this.say(`deleted ${this.p(name)} from the share (kept in ${this.p(dest)}); ${this.node.tracker ? 'the tracker is told' : 'no tracker to tell'}`);
  }

  /** Seed 001's QUIT: wait for downloads and uploads in progress, saying how many. */
  private async quit(): Promise<'quit'> {
    this.quitting = true;
    const downloads = this.jobs.size;
    const uploads = this.node.uploadStats().peers;
    if (downloads + uploads > 0) {
      this.say(`waiting for ${downloads} download${downloads === 1 ? '' : 's'} and ${uploads} upload${uploads === 1 ? '' : 's'} to finish (FORCEQUIT or Ctrl-C to leave now)`);
      await Promise.allSettled([...this.jobs].map((j) => j.p));
    }
    // a FORCEQUIT (second Ctrl-C) while this waited has closed the node and said goodbye
    if (this.forced) return 'quit';
    await this.node.close({ graceful: true, waitMs: 30_000 });
    this.say('bye');
    return 'quit';
  }

  private async forceQuit(): Promise<'forcequit'> {
    this.quitting = true;
    this.forced = true;
    const cut = this.jobs.size;
    for (const j of this.jobs) j.p.download.abort(new SwarmError(ERROR_CODES.INTERRUPTED, 'FORCEQUIT: the download resumes when asked again'));
    await this.node.close({ graceful: false });
    this.say(cut ? `bye (${cut} download${cut === 1 ? '' : 's'} cut short; asking again resumes ${cut === 1 ? 'it' : 'them'})` : 'bye');
    return 'forcequit';
  }
}
