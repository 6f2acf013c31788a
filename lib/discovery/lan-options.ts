/**
 * LAN discovery's settings: the options a caller may give, their defaults and bounds, and the one
 * check that turns them into the settings LanDiscovery runs with (SWARM_ERR_USAGE naming the
 * option otherwise). The peer record handed out, and the time bound on a stop check, are here too.
 */
import { ERROR_CODES, SwarmError } from '../errors.js';
import type { LogFields } from '../log.js';
import { DEFAULT_LAN_PORT } from '../constants.js';
import { isLanPeerId } from './lan-codec.js';

export { DEFAULT_LAN_PORT } from '../constants.js';
export const DEFAULT_LAN_BROADCAST = '255.255.255.255';
/**
 * Loopback (measured on the Linux test host, Node 20): a datagram sent to 127.255.255.255 reaches
 * every socket bound to 0.0.0.0 (or to 127.255.255.255) on that port with reuseAddr; a socket bound
 * to 127.0.0.1 receives no broadcasts at all, and a unicast to 127.0.0.1 reaches only one of the
 * sockets sharing the port. Hence the default bind of 0.0.0.0, and tests broadcast to 127.255.255.255.
 */
export const DEFAULT_LAN_BIND = '0.0.0.0';
export const DEFAULT_LAN_INTERVAL_MS = 5_000;
/** A peer is dropped after this many intervals without a `start` (so one or two lost datagrams do not drop it). */
export const LAN_EXPIRE_INTERVALS = 3;
export const DEFAULT_LAN_MAX_PEERS = 1024;
/** Several swarm processes may share one host, but not 64 of them: more from one address is a flood. */
export const DEFAULT_LAN_MAX_PEERS_PER_IP = 64;
/** `verifyStop` calls in flight at once (and never two for one peer). */
export const MAX_STOP_CHECKS = 8;
/** A `verifyStop` that has not answered by then counts as "the peer did not answer". */
export const STOP_CHECK_TIMEOUT_MS = 10_000;
/** At most one warning of each kind per this period; the next one says how many were held back. */
export const LAN_WARNING_EVERY_MS = 60_000;
/** After a stop check finds a peer alive, further stops for it are ignored this long. */
export const ALIVE_TRUST_MS = 10_000;
/** A newcomer (a query, a new peer's start) makes us announce at once; at most this often (later ones wait for the window). */
export const ANSWER_EVERY_MS = 1_000;

export interface LanPeer {
  /** 16 hex peer id. */
  peer: string;
  /** The source address of its datagrams (never a datagram field). */
  ip: string;
  /** Its TCP transfer port. */
  port: number;
  /** The peer protocol version it announced; may differ from ours (the node decides). */
  v: number;
  /** ms since the epoch, when its last `start` was heard. */
  lastSeen: number;
}

export type LanDownReason = 'stop' | 'expired';

/** `seen`: a known peer announced itself again (unchanged): listeners that dropped it can take it back. */
export type LanEvents = { up: [LanPeer]; down: [LanPeer, LanDownReason]; seen: [LanPeer]; warning: [string] };

export interface LanOptions {
  /** Ours (16 hex); our own datagrams are ignored by peer id. */
  peerId: string;
  /** Our TCP serving port; 0 = we do not serve: listen only, never announce. */
  transferPort: number;
  /** UDP port (default DEFAULT_LAN_PORT); several processes on one host can all bind it (reuseAddr). */
  port?: number;
  /** Where announcements go (default DEFAULT_LAN_BROADCAST; tests use 127.255.255.255). */
  broadcast?: string;
  /** Local address of the UDP socket (default '0.0.0.0'; a unicast address hears no broadcasts on Linux). */
  bind?: string;
  /** Re-announce period (default 5000). */
  intervalMs?: number;
  /** A peer silent this long is dropped (default 3 × intervalMs). */
  expireMs?: number;
  /** Bound on peers tracked (default 1024); when full, new ones are ignored (counters.full). */
  maxPeers?: number;
  /** Bound on peers tracked from one source address (default 64); extra ones count in counters.full. */
  maxPeersPerIp?: number;
  /** Asked before honouring a `stop`: resolves true if the peer still answers as itself (the stop was spoofed; ignore it). */
  verifyStop?: (p: LanPeer) => Promise<boolean>;
  log?: (event: string, fields: LogFields) => void;
}


export type Settings = Required<Omit<LanOptions, 'verifyStop' | 'log'>> & Pick<LanOptions, 'verifyStop' | 'log'>;


export function checkOptions(o: LanOptions): Settings {
  const usage = (msg: string) => new SwarmError(ERROR_CODES.USAGE, `LAN discovery: ${msg}`);
  const intInRange = (v: unknown, lo: number, hi: number) => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
  if (!isLanPeerId(o.peerId)) throw usage('peerId must be 16 lowercase hex digits');
  if (!intInRange(o.transferPort, 0, 65535)) throw usage(`transferPort must be 0..65535, not ${String(o.transferPort)}`);
  const port = o.port ?? DEFAULT_LAN_PORT;
  if (!intInRange(port, 0, 65535)) throw usage(`port must be 0..65535, not ${String(port)}`);
  const intervalMs = o.intervalMs ?? DEFAULT_LAN_INTERVAL_MS;
  if (!intInRange(intervalMs, 1, 2 ** 31 - 1)) throw usage(`intervalMs must be a positive integer, not ${String(intervalMs)}`);
  const expireMs = o.expireMs ?? LAN_EXPIRE_INTERVALS * intervalMs;
  if (!intInRange(expireMs, 1, 2 ** 31 - 1)) throw usage(`expireMs must be a positive integer, not ${String(expireMs)}`);
  const maxPeers = o.maxPeers ?? DEFAULT_LAN_MAX_PEERS;
  if (!intInRange(maxPeers, 0, 2 ** 31 - 1)) throw usage(`maxPeers must be an integer ≥ 0, not ${String(maxPeers)}`);
  const maxPeersPerIp = o.maxPeersPerIp ?? DEFAULT_LAN_MAX_PEERS_PER_IP;
  if (!intInRange(maxPeersPerIp, 0, 2 ** 31 - 1)) throw usage(`maxPeersPerIp must be an integer ≥ 0, not ${String(maxPeersPerIp)}`);
  return {
    peerId: o.peerId,
    transferPort: o.transferPort,
    port,
    broadcast: o.broadcast ?? DEFAULT_LAN_BROADCAST,
    bind: o.bind ?? DEFAULT_LAN_BIND,
    intervalMs,
    expireMs,
    maxPeers,
    maxPeersPerIp,
    verifyStop: o.verifyStop,
    log: o.log,
  };
}


/** A `verifyStop` bounded by STOP_CHECK_TIMEOUT_MS; a throw or no answer means "it did not answer as itself". */
export function checkStop(verify: (p: LanPeer) => Promise<boolean>, p: LanPeer, log?: (event: string, fields: LogFields) => void): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), STOP_CHECK_TIMEOUT_MS);
    timer.unref();
    Promise.resolve()
      .then(() => verify(p))
      .then(
        (alive) => resolve(alive === true),
        (err: unknown) => {
          log?.('lan-verify-failed', { peer: p.peer, error: err instanceof Error ? err.message : String(err) });
          resolve(false);
        },
      )
      .finally(() => clearTimeout(timer));
  });
}
