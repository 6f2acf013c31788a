/**
 * In-process sync peers for the sync tests: a `serve` node on loopback with a Syncer (open, or
 * with a folder key), stopped at teardown; `converge` runs rounds of rescan + syncOnce on every
 * peer until what one has, the others have; `stillFile` writes a file as a person left it.
 */
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { serve, type ServeHandle } from '../../lib/serve.js';
import { Syncer } from '../../lib/sync/syncer.js';
import type { FolderKey } from '../../lib/sync/folder-key.js';
import { tempDir } from './tmp.js';

type T = { teardown(fn: () => unknown): void };

export interface SyncPeer {
  dir: string;
  node: ServeHandle;
  sync: Syncer;
  /** Every warning the syncer gave, and its code and subject (the JSON warning's fields). */
  warnings: string[];
  infos: { message: string; code?: string; name?: string; peer?: string }[];
}

export async function syncPeer(t: T, dir: string, o: { key?: FolderKey | null; tracker?: string; emptiedGraceMs?: number; threads?: number; stageOnPool?: boolean; maxUploadBytesPerSec?: number } = {}): Promise<SyncPeer> {
  const node = await serve(dir, { port: 0, host: '127.0.0.1', ...(o.tracker ? { tracker: o.tracker } : { noTracker: true }), threads: o.threads ?? 0, watch: false, ...(o.maxUploadBytesPerSec ? { maxUploadBytesPerSec: o.maxUploadBytesPerSec } : {}) });
  const sync = new Syncer(node, {
    pullMs: 60_000,
    ...(o.key ? { key: o.key } : { open: true }),
    ...(o.emptiedGraceMs !== undefined ? { emptiedGraceMs: o.emptiedGraceMs } : {}),
    ...(o.stageOnPool !== undefined ? { stageOnPool: o.stageOnPool } : {}),
  });
  const warnings: string[] = [];
  const infos: SyncPeer['infos'] = [];
  sync.on('warning', (w, info) => {
    warnings.push(w);
    infos.push({ message: w, ...info });
  });
  await sync.start();
  t.teardown(async () => {
    await sync.close();
    await node.close({ graceful: false });
  });
  return { dir, node, sync, warnings, infos };
}

export async function stopPeer(p: SyncPeer): Promise<void> {
  await p.sync.close();
  await p.node.close({ graceful: false });
}

/** Every peer knows every other as a neighbour. */
export function connect(ps: SyncPeer[]): void {
  for (const a of ps) for (const b of ps) if (a !== b) a.node.book.add({ ip: '127.0.0.1', port: b.node.port }, 'neighbor');
}

/** Rounds of: every peer rescans its folder and syncs once. */
export async function converge(ps: SyncPeer[], rounds: number): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    for (const p of ps) await p.node.library.refresh();
    for (const p of ps) await p.sync.syncOnce();
  }
}

/**
 * A file written as a person left it a minute ago: one modified in the last 0.3 s is announced only
 * once it held still (local.ts), and a deletion of a file never announced is no deletion to pass on.
 */
export function stillFile(dir: string, name: string, text = name): void {
  const p = path.join(dir, name);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, text);
  const then = Date.now() / 1000 - 60;
  utimesSync(p, then, then);
}

/** `name` in `dir` with `text`, modified `ago` whole seconds ago (held still: announced at the next look); its mtime (seconds). */
export function editAgo(dir: string, name: string, text: string | Uint8Array, ago: number): number {
  writeFileSync(path.join(dir, name), text);
  const then = Math.floor(Date.now() / 1000) - ago;
  utimesSync(path.join(dir, name), then, then);
  return then;
}

/** Rounds until every peer agrees on `name` with the others (a conflict needs an agreed version first). */
export async function agreeOn(ps: SyncPeer[], name: string): Promise<boolean> {
  const agreed = (p: SyncPeer) => {
    const e = p.sync.index.get(name);
    return !!e && e.agreed === e.cid;
  };
  for (let i = 0; i < 20 && !ps.every(agreed); i++) await converge(ps, 1);
  return ps.every(agreed);
}

/**
 * The three-member conflict of the sync-copies and sync-said tests, up to b's return: a, b and c
 * agree on f.txt (written 120 s ago, with `others` beside it); b stops; a edits f.txt (60 s ago)
 * and c takes a's edit. b is stopped when this returns; `aEdit` is a's edit's mtime (seconds).
 */
export async function bAwayAEdits(t: T & { ok(v: unknown, m: string): unknown }, others: Record<string, string> = {}): Promise<{ a: SyncPeer; b: SyncPeer; c: SyncPeer; aEdit: number }> {
  const [da, db, dc] = [tempDir(t), tempDir(t), tempDir(t)];
  editAgo(da, 'f.txt', 'common\n', 120);
  for (const [name, text] of Object.entries(others)) editAgo(da, name, text, 120);
  const a = await syncPeer(t, da);
  const b = await syncPeer(t, db);
  const c = await syncPeer(t, dc);
  connect([a, b, c]);
  t.ok(await agreeOn([a, b, c], 'f.txt'), 'all three agree on f.txt');
  await stopPeer(b);
  const aEdit = editAgo(da, 'f.txt', 'edited on a\n', 60);
  await converge([a, c], 2);
  return { a, b, c, aEdit };
}

/**
 * Two members that agree on `name`: h holds `bytes` (written `ago` seconds ago), a fetched them.
 * `hOpts` for h (e.g. an upload cap). The big-file tests start from here.
 */
export async function agreedPair(t: T, name: string, bytes: Uint8Array, ago: number, hOpts: Parameters<typeof syncPeer>[2] = {}): Promise<{ dh: string; da: string; h: SyncPeer; a: SyncPeer }> {
  const [dh, da] = [tempDir(t), tempDir(t)];
  editAgo(dh, name, bytes, ago);
  const h = await syncPeer(t, dh, hOpts);
  const a = await syncPeer(t, da);
  connect([h, a]);
  await converge([h, a], 2);
  return { dh, da, h, a };
}
