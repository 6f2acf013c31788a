/**
 * What `swarm sync` shows while it works: its lines (fetched, deleted, conflict, warnings) and how
 * much is left. On a terminal, one bar while there is work (files and MiB done of what is known
 * so far, the rate, the time left), the lines printed above it, the bar gone when in step; with
 * `--json`, a `progress` event at most once a second and when the work runs out; in a log (text,
 * not a terminal), a "to go" line every 10 s while work remains. The lines whose wording depends on
 * what happened (a conflict, many deletions) are made below, where the tests can read them.
 */
import type { MultiBar, SingleBar } from 'cli-progress';
import { count, humanBytes, humanRate, ndjson, printable } from '../format.js';
import { etaText } from './get-view.js';

export interface SyncProgress {
  filesDone: number;
  bytesDone: number;
  filesToGo: number;
  bytesToGo: number;
}

export interface SyncView {
  /** A line for a person (text) or an event (with --json). */
  say(text: string, event: Record<string, unknown>): void;
  /** The latest counts (called often: the view decides what to show). */
  progress(p: SyncProgress, now?: number): void;
  /** Take the bar down (before the last lines and at exit). */
  stop(): void;
}

const JSON_EVERY_MS = 1_000;
const LOG_EVERY_MS = 10_000;

export async function syncView(o: { json: boolean; stream?: NodeJS.WriteStream }): Promise<SyncView> {
  const out = o.stream ?? process.stderr;
  const tty = !o.json && !!out.isTTY;
  // the bars library is loaded only where a bar is drawn
  const cliProgress = tty ? (await import('cli-progress')).default : null;
  let multi: MultiBar | null = null;
  let bar: SingleBar | null = null;
  /** Where the current stretch of work began: counts and time. */
  let base = { files: 0, bytes: 0, at: 0 };
  let lastShown = 0;
  let lastToGo = 0;
  /** What the last `progress` event said (--json). */
  let said = { done: 0, toGo: 0, bytes: 0 };
  const write = (s: string) => (multi ? multi.log(`${s}\n`) : out.write(`${s}\n`));
  const stop = () => {
    multi?.stop();
    multi = null;
    bar = null;
  };
  return {
    say(text, event) {
      if (o.json) ndjson(event);
      else write(text);
    },
    progress(p, now = Date.now()) {
      const working = p.filesToGo > 0;
      if (working && lastToGo === 0) base = { files: p.filesDone, bytes: p.bytesDone, at: now };
      const files = p.filesDone - base.files;
      const bytes = p.bytesDone - base.bytes;
      const rate = now > base.at ? (bytes * 1000) / (now - base.at) : 0;
      if (o.json) {
        // when something moved: at most once a second while there is work, and once when it runs out
        // (bytes too: a big file moves no file count until it lands)
        const moved = p.filesDone !== said.done || p.filesToGo !== said.toGo || p.bytesDone !== said.bytes;
        if (moved && (!working || now - lastShown >= JSON_EVERY_MS)) {
          lastShown = now;
          said = { done: p.filesDone, toGo: p.filesToGo, bytes: p.bytesDone };
          ndjson({ event: 'progress', ...p });
        }
      } else if (cliProgress) {
        if (working) {
          if (!bar) {
            multi = new cliProgress.MultiBar(
              { stream: out, hideCursor: true, clearOnComplete: true, linewrap: false, format: 'sync |{bar}| {value}/{total} files  {mib}  {rate}  ETA {left}' },
              cliProgress.Presets.shades_classic,
            );
            bar = multi.create(1, 0, { mib: '', rate: '', left: '--' });
          }
          bar.setTotal(Math.max(1, files + p.filesToGo));
          bar.update(files, {
            mib: `${humanBytes(bytes)}/${humanBytes(bytes + p.bytesToGo)}`,
            rate: bytes > 0 ? humanRate(rate) : '',
            left: bytes > 0 ? etaText(p.bytesToGo, rate) : '--',
          });
        } else if (bar) stop();
      } else if (working && now - lastShown >= LOG_EVERY_MS) {
        lastShown = now;
        out.write(`to go: ${p.filesToGo} file(s), ${humanBytes(p.bytesToGo)} (${files} done, ${humanBytes(bytes)}${bytes > 0 ? `, ${humanRate(rate)}` : ''})\n`);
      }
      lastToGo = p.filesToGo;
    },
    stop,
  };
}

/**
 * A conflict we lost, said: "changed here" only where ours was edited here; on a member that only
 * had a version another member made (two others edited the file), between whom it was.
 */
export function conflictLine(e: { name: string; copy: string; here: boolean; ours: string[]; theirs: string[]; oursBy?: string; theirsBy?: string }): string {
  if (e.here) return `conflict: ${printable(e.name)} changed here and elsewhere; ours is kept as ${printable(e.copy)}`;
  // the devices that made the two versions (as the copy's name has it), where both are known: the
  // members holding a version now may be neither (one that fetched the winner holds it too)
  if (e.oursBy && e.theirsBy && e.oursBy !== e.theirsBy) {
    return `conflict on ${printable(e.name)} between the versions of devices ${e.oursBy.slice(0, 7)} and ${e.theirsBy.slice(0, 7)} (not edited here): ${e.oursBy.slice(0, 7)}'s, the one we had, is older and kept as ${printable(e.copy)}`;
  }
  const who = (at: string[]) => (at.length ? at.join(', ') : 'another member');
  return `conflict on ${printable(e.name)} between ${who(e.ours)} and ${who(e.theirs)} (not edited here): the older version, the one we had, is kept as ${printable(e.copy)}`;
}

/** Many files deleted here by one change (the files each said only with --json). */
export function deletedHereManyLine(e: { files: number; under: string }, o: { passedOn: boolean; trashDays: number }): string {
  const where = e.under ? ` under ${printable(e.under)}/` : '';
  const what = o.passedOn ? `passed on: they stay in the other members' .swarm/trash for ${count(o.trashDays, 'day')}` : 'not passed on: --no-delete';
  return `deleted here: ${count(e.files, 'file')}${where} (${what})`;
}

/**
 * Lines that come in bursts (a peer's deletion of a whole folder: one `deleted` line per file),
 * said one by one up to `first` in a burst, then counted: the rest is one line once the burst is
 * over (`quietMs` with none) or at `flush()` (before "in step"). JSON events are not touched.
 */
export class BurstLines {
  private inBurst = 0;
  private held = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly say: (line: string) => void,
    private readonly rest: (n: number) => string,
    private readonly first = 10,
    private readonly quietMs = 1_000,
  ) {}

  add(line: string): void {
    if (this.inBurst++ < this.first) this.say(line);
    else this.held++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), this.quietMs);
    this.timer.unref();
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.held) this.say(this.rest(this.held));
    this.inBurst = 0;
    this.held = 0;
  }
}
