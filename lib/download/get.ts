/**
 * `get(name, options)`: download one file from every peer that holds it. This file is the
 * sequence; the coordinator does the fetching; the options and the host contract are in
 * get-options.ts (re-exported here).
 *
 *   resolve (tracker or named peers; manifest by content id) ─► output folder ─► lock NAME
 *   ─► temp files of a ticket save cut by a kill removed ─► what is at NAME? (folder: refuse;
 *      same content: done, leftovers of its download removed; another file: refuse unless
 *      --overwrite), all before any data is asked for ─► ticket + part file (resume?)
 *   ─► coordinator.run() ─► finish: fsync, mtime, NAME.swarm-part → NAME (never over a file that
 *      appeared meanwhile, unless --overwrite), drop ticket ─► unlock
 *   On failure or abort: running writes finish, the ticket is flushed, the part file stays.
 *
 * One AbortSignal reaches every stage: resolving, file-system steps and the transfer all stop on
 * it, and `abort()` at any moment settles the download with SWARM_ERR_INTERRUPTED.
 */
import { EventEmitter } from 'node:events';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { ERROR_CODES, SwarmError, asSwarmError } from '../errors.js';
import { createChunkPool, type ChunkPool } from '../pool.js';
import { normalizeUserName } from '../protocol/names.js';
import { PartFile, partPaths } from '../storage/part-file.js';
import { Ticket } from '../storage/ticket.js';
import { TargetLock } from '../storage/lock.js';
import { ensureDir, removeStaleTemps } from '../storage/fs-steps.js';
import { chunkLength } from '../chunking.js';
import { chunksOf } from '../manifest.js';
import { addressText } from '../types.js';
import { Coordinator, defaultPeerThreads } from './coordinator.js';
import { PeerHostGroup } from './peer-host.js';
import { isStockTarget, resolveTarget, type StockTarget, type Target } from './resolve.js';
import { fetchStock } from './legacy-fetch.js';
import { whatIsThere, tidyFinished } from './target.js';
import { PartialSource } from './partial-source.js';
import { doneEvent, type DoneEvent, type DownloadEvents } from './events.js';
import { performance } from 'node:perf_hooks';
import type { Breakdown } from './breakdown.js';
import { DEFAULT_BUDGET_BYTES, DEFAULT_GIVE_UP_MS, DEFAULT_STUCK_GRACE_MS, type Discovery, type GetOptions, type GetStep } from './get-options.js';

export { DEFAULT_BUDGET_BYTES, DEFAULT_GIVE_UP_MS, DEFAULT_STUCK_GRACE_MS, type Discovery, type DownloadHost, type GetOptions, type GetStep } from './get-options.js';

export class Download extends EventEmitter<DownloadEvents> {
  private readonly controller = new AbortController();

  constructor(readonly name: string, private readonly opts: GetOptions = {}) {
    super();
    if (opts.signal) {
      if (opts.signal.aborted) this.abort();
      else opts.signal.addEventListener('abort', () => this.abort(), { once: true });
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Stop at once: running writes finish and are recorded, the ticket is kept for resuming. */
  abort(reason = new SwarmError(ERROR_CODES.INTERRUPTED, 'interrupted')): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  private check(): void {
    if (this.signal.aborted) throw this.reason();
  }

  /**
   * The test hook (GetOptions.onStep), raced with the abort signal; then the abort check, except
   * at 'finished' (NAME holds the file: an abort is too late to matter).
   */
  private async step(step: GetStep): Promise<void> {
    const hook = this.opts.onStep;
    if (hook) {
      let onAbort = (): void => {};
      const aborted = new Promise<void>((resolve) => {
        onAbort = resolve;
        this.signal.addEventListener('abort', onAbort, { once: true });
      });
      try {
        const held = (async () => hook(step))();
        await Promise.race([step === 'finished' ? held.catch(() => {}) : held, aborted]);
      } finally {
        this.signal.removeEventListener('abort', onAbort);
      }
    }
    if (step !== 'finished') this.check();
  }

  private reason(): SwarmError {
    const r = this.signal.reason as unknown;
    return r instanceof SwarmError ? r : new SwarmError(ERROR_CODES.INTERRUPTED, 'interrupted');
  }

  async run(): Promise<DoneEvent> {
    const started = Date.now();
    const t0 = performance.now();
    const name = normalizeUserName(this.name);
    // Threads boot while the name is resolved (a tracker and a peer round trip).
    const hosts = new PeerHostGroup(this.opts.peerThreads ?? defaultPeerThreads(this.opts.peers?.length ?? Infinity));
    const pool = this.opts.pool ?? createChunkPool(this.opts.threads);
    try {
      return await this.fetch(name, started, t0, hosts, pool);
    } catch (err) {
      // whatever failed, an abort is reported as the abort
      throw this.signal.aborted ? this.reason() : asSwarmError(err);
    } finally {
      await hosts.close();
      if (!this.opts.pool) await pool.destroy();
    }
  }

  private async fetch(name: string, started: number, t0: number, hosts: PeerHostGroup, pool: ChunkPool): Promise<DoneEvent> {
    const target = await resolveTarget(name, {
      ...(this.opts.tracker ? { tracker: this.opts.tracker } : {}),
      ...(this.opts.peers ? { peers: this.opts.peers } : {}),
      ...(this.opts.version ? { version: this.opts.version } : {}),
      ...(this.opts.noTracker ? { noTracker: true } : {}),
      ...(this.opts.known ? { known: this.opts.known } : {}),
      // named peers are the ones asked for: the overlay is not searched beside them
      finders: this.opts.peers?.length ? [] : (this.opts.host?.finders?.() ?? []),
      signal: this.signal,
    });
    // a source's own message already names it (tracker X unreachable: ...): not said twice
    for (const s of target.skipped) this.emit('warning', s.reason.startsWith(s.peer) ? { message: `left out: ${s.reason}` } : { peer: s.peer, message: `left out: ${s.reason}` });
    await this.step('resolved');
    if (isStockTarget(target)) return this.fetchFromStock(name, target, started);
    const tResolved = performance.now();
    const m = target.manifest;
    const finalPath = path.resolve(this.opts.outDir ?? '.', ...name.split('/'));
    const result = (over: Partial<DoneEvent>): DoneEvent => doneEvent({ name, path: finalPath, cid: m.cid, size: m.size, started }, over);
    return this.underLock(name, finalPath, async () => {
      const warn = (message: string) => this.emit('warning', { message });
      // (NAME is the caller's when it replaces it itself: get-options.ts beforeReplace)
      const present = this.opts.beforeReplace ? 'other' : await whatIsThere(finalPath, target, pool, this.opts.overwrite === true, this.signal, warn);
      if (present === 'same') {
        await tidyFinished(finalPath, target.manifest, warn);
        return result({ upToDate: true });
      }
      await this.step('checked');
      return await this.transfer(target, finalPath, result, started, t0, tResolved, hosts, pool);
    });
  }

  /**
   * `body` under the target's lock (its folder made first). Under the lock nobody else writes this
   * target's ticket: any temp file of it was left by a process killed while saving, also when NAME
   * turns out to be complete already, so those go first.
   */
  private async underLock<T>(name: string, finalPath: string, body: () => Promise<T>): Promise<T> {
    await ensureDir(path.dirname(finalPath), this.signal);
    this.check();
    const lock = await TargetLock.acquire(finalPath, this.signal);
    try {
      await this.step('locked');
      const temps = await removeStaleTemps(finalPath);
      if (temps) this.emit('warning', { message: `removed ${temps} temporary file(s) left by an interrupted download of ${name}` });
      return await body();
    } finally {
      await lock.release();
    }
  }

  /** Only stock seed-002 peers hold it: whole file by plain-name request (legacy-fetch.ts). */
  private async fetchFromStock(name: string, target: StockTarget, started: number): Promise<DoneEvent> {
    const finalPath = path.resolve(this.opts.outDir ?? '.', ...name.split('/'));
    return this.underLock(name, finalPath, async () => {
      await this.step('checked');
      const r = await fetchStock(target, finalPath, started, {
        signal: this.signal,
        overwrite: this.opts.overwrite === true,
        ...(this.opts.beforeReplace ? { beforeReplace: this.opts.beforeReplace } : {}),
        ...(this.opts.stallMs ? { stallMs: this.opts.stallMs } : {}),
        emit: (event, ...args) => (this.emit as (e: string, ...a: unknown[]) => boolean).call(this, event, ...args),
      });
      await this.step('finished');
      return r;
    });
  }

  private async transfer(
    target: Target,
    finalPath: string,
    result: (over: Partial<DoneEvent>) => DoneEvent,
    started: number,
    t0: number,
    tResolved: number,
    hosts: PeerHostGroup,
    pool: ChunkPool,
  ): Promise<DoneEvent> {
    const { name } = target;
    const m = target.manifest;
    const { ticket: ticketPath, part: partPath } = partPaths(finalPath);
    const chunks = chunksOf(m);
    const loaded = await Ticket.load(ticketPath);
    const old = loaded.ticket;
    const partSize = (await stat(partPath).catch(() => null))?.size;
    let ticket: Ticket;
    let resume = false;
    const sameContent = old && old.cid === m.cid && old.size === m.size && old.chunkBytes === m.chunkBytes;
    if (sameContent && partSize === m.size) {
      ticket = Ticket.fromData(ticketPath, old, chunks);
      resume = true;
    } else {
      if (old && !sameContent) this.emit('warning', { message: `${name} changed on the swarm since the last attempt (content ${old.cid.slice(0, 16)}… → ${m.cid.slice(0, 16)}…); discarding the partial download` });
      if (old && sameContent) this.emit('warning', { message: `the partial download of ${name} is gone or damaged (${partPath}); starting over` });
      if (!old && loaded.why === 'old-format') this.emit('warning', { message: `the partial download of ${name} was made by an older swarm; starting over` });
      if (!old && loaded.why === 'damaged') this.emit('warning', { message: `the ticket of ${name} is damaged; starting over` });
      ticket = new Ticket(ticketPath, { name, cid: m.cid, size: m.size, chunkBytes: m.chunkBytes, mtime: target.mtime }, chunks);
    }
    let haveBytes = 0;
    for (let i = 0; i < chunks; i++) if (ticket.has(i)) haveBytes += chunkLength(m.size, m.chunkBytes, i);
    this.check();
    const part = await PartFile.open(finalPath, m.size, { keep: resume, needBytes: m.size - haveBytes });
    // From here on every way out closes the part file (a failed first ticket save included).
    const startBytes = haveBytes;
    let c: Coordinator | null = null;
    const host = this.opts.host;
    let source: PartialSource | null = null;
    let discovery: Discovery | null = null;
    try {
      if (!resume) await ticket.flush();
      if (host) {
        // a holder from the first verified chunk on (at once, when resuming)
        source = new PartialSource(m, ticket, partPath, part.identity(), finalPath);
        host.share(name, target.mtime, source);
      }
      const coord = new Coordinator(m, target.holders, {
        ...(host ? { hello: host.hello } : {}),
        pool,
        part,
        ticket,
        hosts,
        budgetBytes: this.opts.budgetBytes ?? DEFAULT_BUDGET_BYTES,
        stallMs: this.opts.stallMs ?? 10_000,
        requestTimeoutMs: this.opts.requestTimeoutMs ?? 20_000,
        firstChunkMs: this.opts.firstChunkMs ?? 5_000,
        giveUpMs: this.opts.giveUpMs ?? DEFAULT_GIVE_UP_MS,
        signal: this.signal,
        // a sharing download may find holders after its last one leaves: wait a little for them
        ...(host ? { rediscover: () => discovery?.now() ?? false, stuckGraceMs: this.opts.stuckGraceMs ?? DEFAULT_STUCK_GRACE_MS } : {}),
      });
      c = coord;
      coord.on('warning', (e) => this.emit('warning', e));
      coord.on('peer-dropped', (e) => this.emit('peer-dropped', e));
      if (host) coord.on('verified', (chunks) => host.verified(m.cid, chunks));
      let rate = 0;
      let lastBytes = startBytes;
      let lastAt = Date.now();
      coord.on('snapshot', (s) => {
        const now = Date.now();
        const inst = ((s.verifiedBytes - lastBytes) * 1000) / Math.max(1, now - lastAt);
        rate = rate === 0 ? inst : 0.3 * inst + 0.7 * rate;
        lastBytes = s.verifiedBytes;
        lastAt = now;
        this.emit('progress', { bytes: s.verifiedBytes, total: m.size, rate, peers: s.peers });
      });
      this.emit('start', {
        name,
        path: finalPath,
        size: m.size,
        mtime: target.mtime,
        cid: m.cid,
        chunks,
        chunkBytes: m.chunkBytes,
        peers: target.holders.map(addressText),
        resumedChunks: coord.resumedChunks,
        source: target.source,
      });
      let breakdown: Breakdown | undefined;
      await this.step('prepared');
      const tSetup = performance.now();
      const elu = performance.eventLoopUtilization();
      const running = coord.run();
      if (host) discovery = host.discover(m.cid, (peers, vouched) => coord.addHolders(peers, vouched));
      await running;
      discovery?.stop();
      await coord.drainWrites();
      const tTransfer = performance.now();
      const mainBusyMs = performance.eventLoopUtilization(elu).active;
      const hostTimes = this.opts.profile ? await coord.hostStats() : null;
      await coord.closeHosts();
      if (ticket.error) throw ticket.error;
      await this.step('transferred');
      await this.opts.beforeReplace?.();
      await part.finish(target.mtime, this.opts.overwrite === true);
      source?.moved(finalPath);
      await ticket.remove();
      if (host && source) {
        const st = await stat(finalPath).catch(() => null);
        if (st) host.finished(name, finalPath, m, st);
      }
      await this.step('finished');
      if (hostTimes) {
        const transfer = (tTransfer - tSetup) / 1000;
        const poolThreads = pool.threads;
        const hash = coord.poolTimes.hashMs / 1000;
        const write = coord.poolTimes.writeMs / 1000;
        const inlineWork = (hostTimes.inline ? hostTimes.copyMs + hostTimes.checksumMs : 0) + (poolThreads === 0 ? coord.poolTimes.hashMs + coord.poolTimes.writeMs : 0);
        breakdown = {
          wallSeconds: (performance.now() - t0) / 1000,
          phases: { resolve: (tResolved - t0) / 1000, setup: (tSetup - tResolved) / 1000, transfer, finish: (performance.now() - tTransfer) / 1000 },
          stages: {
            receive: hostTimes.inline ? 0 : Math.max(0, hostTimes.busyMs - hostTimes.copyMs - hostTimes.checksumMs) / 1000,
            copy: hostTimes.copyMs / 1000,
            checksum: hostTimes.checksumMs / 1000,
            hash,
            write,
            coordinate: Math.max(0, mainBusyMs - inlineWork) / 1000,
            wait: poolThreads > 0 ? Math.max(0, transfer * poolThreads - hash - write) : 0,
          },
          threads: { peer: hostTimes.threads, pool: poolThreads },
        };
      }
      const seconds = (Date.now() - started) / 1000;
      return result({
        seconds,
        rate: (m.size - startBytes) / Math.max(seconds, 1e-3),
        peersUsed: coord.peersUsed(),
        peersDropped: coord.peersDropped(),
        badPackets: coord.counters.badPackets,
        badChunks: coord.counters.badChunks,
        resumedChunks: coord.resumedChunks,
        fetchedChunks: coord.counters.fetchedChunks,
        ...(breakdown ? { breakdown } : {}),
      });
    } catch (err) {
      (discovery as Discovery | null)?.stop();
      if (host && source) host.unshare(name, m.cid);
      if (c) {
        await c.drainWrites();
        await c.closeHosts();
      }
      await ticket.flush().catch(() => {});
      await ticket.close();
      await part.close();
      throw asSwarmError(err);
    }
  }
}

export type GetPromise = Promise<DoneEvent> & { download: Download };

/** Download NAME; the returned promise also carries `.download` for events and `abort()`. */
export function get(name: string, opts: GetOptions = {}): GetPromise {
  const d = new Download(name, opts);
  const p = d.run() as GetPromise;
  p.download = d;
  return p;
}
