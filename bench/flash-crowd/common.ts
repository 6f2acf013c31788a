/**
 * What the parts of the flash-crowd bench share: its options, the contract each contender
 * (bittorrent.ts: aria2c + opentracker; swarm-side.ts: swarm) implements for the trial loop
 * (trials.ts), command-line templates with placeholders, and the bound a swarm can reach.
 */
import type { Lab, LabPeer, TbfSpec } from '../lib/netns.js';
import type { Exit, Procs } from '../lib/procs.js';
import type { UplinkSummary } from './uplinks.js';
import type { CpuSpent } from '../lib/machine-cpu.js';
import type { TcpCounts } from './tcp-stats.js';

export const NAME = 'big.bin';
export const NS_PREFIX = 'swfc';
export const SUBNET = '169.254.200';

export type Contender = 'aria2c' | 'swarm';
export const CONTENDERS = ['aria2c', 'swarm'] as const;

export interface FlashCrowdOptions {
  root: string;
  mib: number;
  peers: number[];
  rounds: number;
  tools: Contender[];
  pieceKiB: number;
  tbf: TbfSpec;
  timeoutS: number | null;
  swarmBin: string;
  swarmGetArgs: string[] | null;
  swarmServeArgs: string[] | null;
  swarmTrackerArgs: string[] | null;
  keep: boolean;
  linkCheck: boolean;
}

/** What a contender's side sees: the lab, the processes, the run's folder and source file. */
export interface SideContext {
  opts: FlashCrowdOptions;
  lab: Lab;
  procs: Procs;
  signal: AbortSignal;
  /** the run's work folder */
  work: string;
  /** the complete file the seeder shares */
  source: string;
  bytes: number;
  /** record a note (printed under the table and kept in the JSON) */
  note(s: string): void;
}

/** One contender, as the trial loop drives it. */
export interface ContenderSide {
  name: Contender;
  /** its command lines, for the JSON record */
  commands: Record<string, string[]>;
  /** start the tracker and the seeder of one trial; resolves once the seeder is known to the tracker */
  startSeed(seedDir: string): Promise<void>;
  /** argv (through `ip netns exec`) of the downloader on `peer`, saving into `outDir` */
  downloader(peer: LabPeer, outDir: string): string[];
  /** when a downloader's stdout line says it is complete: that time (ms since the epoch), else null */
  doneFromLine(line: string, atMs: number): number | null;
  /** polled: when the downloader's folder shows it complete, that time (ms since the epoch), else null */
  doneFromFiles(outDir: string): number | null;
}

export interface DownloaderResult {
  index: number;
  addr: string;
  /** seconds from the common start until the file was complete, null if it never was */
  seconds: number | null;
  exit: Exit | null;
  bytesOk: boolean;
  note?: string;
}

export interface Trial {
  round: number;
  n: number;
  contender: Contender;
  boundSeconds: number;
  allDone: number | null;
  first: number | null;
  last: number | null;
  bytesOk: number;
  downloaders: DownloaderResult[];
  /** what the uplinks carried until all were done (uplinks.ts), null without samples */
  uplinks?: UplinkSummary | null;
  /** the whole machine's CPU from the start until all were done (a trial near 100% busy was bound by CPU) */
  cpu?: CpuSpent | null;
  /** TCP segments every peer sent during the trial, and the retransmitted ones (tcp-stats.ts) */
  tcp?: TcpCounts | null;
  error?: string;
}

export const nowMs = (): number => performance.timeOrigin + performance.now();

/** Fill `{placeholders}` of a command-line template; an unknown one is an error. */
export function fill(template: string[], vars: Record<string, string | number>): string[] {
  return template.map((a) =>
    a.replace(/\{(\w+)\}/g, (_, k: string) => {
      if (!(k in vars)) throw new Error(`unknown placeholder {${k}} in ${template.join(' ')}`);
      return String(vars[k]);
    }),
  );
}

/** The bound in seconds: max(F/U_seed, N·F/(U_seed + N·U)). */
export function boundSeconds(bytes: number, n: number, uploadBytesPerS: number, seedBytesPerS = uploadBytesPerS): number {
  return Math.max(bytes / seedBytesPerS, (n * bytes) / (seedBytesPerS + n * uploadBytesPerS));
}
