/**
 * `get(name, options)`: download one file from every peer that holds it. This file is the
 * sequence; the coordinator does the fetching.
 *
 *   resolve (tracker or named peers) ─► already here? done ─► ticket + part file (resume?)
 *   ─► coordinator.run() ─► finish: fsync, rename NAME.swarm-part → NAME, mtime, drop ticket
 *   On failure or abort: running writes finish, the ticket is flushed, the part file stays.
 */
import { EventEmitter } from 'node:events';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { ERROR_CODES, SwarmError, asSwarmError } from '../errors.js';
import { createChunkPool, type ChunkPool } from '../pool.js';
import { checkName } from '../share/names.js';
import { PartFile, partPaths } from '../storage/part-file.js';
import { Ticket } from '../storage/ticket.js';
import { chunkLength } from '../chunking.js';
import { Coordinator, defaultPeerThreads } from './coordinator.js';
import { PeerHostGroup } from './peer-host.js';
import { resolveTarget } from './resolve.js';
import type { DoneEvent, DownloadEvents } from './events.js';
import { performance } from 'node:perf_hooks';
import type { Breakdown } from './breakdown.js';

export interface GetOptions {
  /** host:port of the tracker; default $SWARM_TRACKER, then 127.0.0.1:7077. */
  tracker?: string;
  /** Fetch from these peers (host:port) instead of asking a tracker. */
  peers?: string[];
  /** Folder the file lands in (NAME's subfolders are created); default the current folder. */
  outDir?: string;
  /** Chunk pool threads (0: hash and write on the main thread). */
  threads?: number;
  /** Peer connection threads (0: connections on the main thread). Default: one per core, at most one per peer. */
  peerThreads?: number;
  /** Bytes of chunks requested but not yet on disk. Default 48 MiB. */
  budgetBytes?: number;
  stallMs?: number;
  requestTimeoutMs?: number;
  /** Reuse a pool (benchmarks, long-running callers). */
  pool?: ChunkPool;
  /** Measure where the time goes; the result then carries `breakdown`. */
  profile?: boolean;
}

export const DEFAULT_BUDGET_BYTES = 48 << 20;

export class Download extends EventEmitter<DownloadEvents> {
  private coordinator: Coordinator | null = null;
  private aborted: SwarmError | null = null;

  constructor(readonly name: string, private readonly opts: GetOptions = {}) {
    super();
  }

  abort(reason = new SwarmError(ERROR_CODES.INTERRUPTED, 'interrupted')): void {
    this.aborted ??= reason;
    this.coordinator?.abort(reason);
  }

  private checkAborted(): void {
    if (this.aborted) throw this.aborted;
  }

  async run(): Promise<DoneEvent> {
    const started = Date.now();
    const t0 = performance.now();
    const name = checkName(this.name);
    // Threads boot while the name is resolved (a tracker and a peer round trip).
    const hosts = new PeerHostGroup(this.opts.peerThreads ?? defaultPeerThreads(this.opts.peers?.length ?? Infinity));
    const pool = this.opts.pool ?? createChunkPool(this.opts.threads);
    const release = async () => {
      await hosts.close();
      if (!this.opts.pool) await pool.destroy();
    };
    try {
      return await this.fetch(name, started, t0, hosts, pool);
    } finally {
      await release();
    }
  }

  private async fetch(name: string, started: number, t0: number, hosts: PeerHostGroup, pool: ChunkPool): Promise<DoneEvent> {
    const target = await resolveTarget(name, { ...(this.opts.tracker ? { tracker: this.opts.tracker } : {}), ...(this.opts.peers ? { peers: this.opts.peers } : {}) });
    for (const s of target.skipped) this.emit('warning', { peer: s.peer, message: `left out: ${s.reason}` });
    this.checkAborted();
    const tResolved = performance.now();
    const m = target.manifest;
    const finalPath = path.resolve(this.opts.outDir ?? '.', ...name.split('/'));
    const result = (over: Partial<DoneEvent>): DoneEvent => ({
      name,
      path: finalPath,
      size: m.size,
      seconds: (Date.now() - started) / 1000,
      rate: 0,
      peersUsed: 0,
      peersDropped: 0,
      badPackets: 0,
      badChunks: 0,
      resumedChunks: 0,
      fetchedChunks: 0,
      upToDate: false,
      ...over,
    });
    const existing = await stat(finalPath).catch(() => null);
    if (existing?.isFile() && existing.size === m.size && Math.floor(existing.mtimeMs / 1000) === m.mtime) return result({ upToDate: true });

    const { ticket: ticketPath, part: partPath } = partPaths(finalPath);
    const chunks = m.hashes.length;
    const old = await Ticket.load(ticketPath);
    const partSize = (await stat(partPath).catch(() => null))?.size;
    let ticket: Ticket;
    let resume = false;
    const sameContent = old && old.cid === m.cid && old.size === m.size && old.chunkBytes === m.chunkBytes;
    if (sameContent && partSize === m.size) {
      ticket = Ticket.fromData(ticketPath, old, chunks);
      resume = true;
    } else {
      if (old && !sameContent) this.emit('warning', { message: `${name} changed on the swarm since the last attempt (content ${old.cid} → ${m.cid}); discarding the partial download` });
      if (old && sameContent) this.emit('warning', { message: `the partial download of ${name} is gone or damaged (${partPath}); starting over` });
      ticket = new Ticket(ticketPath, { name, cid: m.cid, size: m.size, chunkBytes: m.chunkBytes, mtime: m.mtime }, chunks);
    }
    let haveBytes = 0;
    for (let i = 0; i < chunks; i++) if (ticket.has(i)) haveBytes += chunkLength(m.size, m.chunkBytes, i);
    const part = await PartFile.open(finalPath, m.size, { keep: resume, needBytes: m.size - haveBytes });
    if (!resume) await ticket.flush();
    const c = new Coordinator(m, target.holders, {
      pool,
      part,
      ticket,
      hosts,
      budgetBytes: this.opts.budgetBytes ?? DEFAULT_BUDGET_BYTES,
      stallMs: this.opts.stallMs ?? 10_000,
      requestTimeoutMs: this.opts.requestTimeoutMs ?? 20_000,
    });
    this.coordinator = c;
    c.on('warning', (e) => this.emit('warning', e));
    c.on('peer-dropped', (e) => this.emit('peer-dropped', e));
    const startBytes = haveBytes;
    let rate = 0;
    let lastBytes = startBytes;
    let lastAt = Date.now();
    c.on('snapshot', (s) => {
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
      mtime: m.mtime,
      cid: m.cid,
      chunks,
      chunkBytes: m.chunkBytes,
      peers: target.holders.map((h) => `${h.ip}:${h.port}`),
      resumedChunks: c.resumedChunks,
      source: target.source,
    });
    let breakdown: Breakdown | undefined;
    try {
      if (this.aborted) c.abort(this.aborted);
      const tSetup = performance.now();
      const elu = performance.eventLoopUtilization();
      await c.run();
      await c.drainWrites();
      const tTransfer = performance.now();
      const mainBusyMs = performance.eventLoopUtilization(elu).active;
      const hosts = this.opts.profile ? await c.hostStats() : null;
      await c.closeHosts();
      await part.finish(m.mtime);
      await ticket.remove();
      if (hosts) {
        const transfer = (tTransfer - tSetup) / 1000;
        const poolThreads = pool.threads;
        const hash = c.poolTimes.hashMs / 1000;
        const write = c.poolTimes.writeMs / 1000;
        const inlineWork = (hosts.inline ? hosts.copyMs + hosts.checksumMs : 0) + (poolThreads === 0 ? c.poolTimes.hashMs + c.poolTimes.writeMs : 0);
        breakdown = {
          wallSeconds: (performance.now() - t0) / 1000,
          phases: { resolve: (tResolved - t0) / 1000, setup: (tSetup - tResolved) / 1000, transfer, finish: (performance.now() - tTransfer) / 1000 },
          stages: {
            receive: hosts.inline ? 0 : Math.max(0, hosts.busyMs - hosts.copyMs - hosts.checksumMs) / 1000,
            copy: hosts.copyMs / 1000,
            checksum: hosts.checksumMs / 1000,
            hash,
            write,
            coordinate: Math.max(0, mainBusyMs - inlineWork) / 1000,
            wait: poolThreads > 0 ? Math.max(0, transfer * poolThreads - hash - write) : 0,
          },
          threads: { peer: hosts.threads, pool: poolThreads },
        };
      }
    } catch (err) {
      await c.drainWrites();
      await c.closeHosts();
      await ticket.flush().catch(() => {});
      await part.close();
      throw asSwarmError(err);
    }
    const seconds = (Date.now() - started) / 1000;
    return result({
      seconds,
      rate: (m.size - startBytes) / Math.max(seconds, 1e-3),
      peersUsed: c.peersUsed(),
      peersDropped: c.peersDropped(),
      badPackets: c.counters.badPackets,
      badChunks: c.counters.badChunks,
      resumedChunks: c.resumedChunks,
      fetchedChunks: c.counters.fetchedChunks,
      ...(breakdown ? { breakdown } : {}),
    });
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
