/**
 * What each tracker request does to the directory and what it answers, with no socket in sight:
 * our framed requests after `hello` (register, keepalive, update, delete, unregister, paged `dir`,
 * `who-has`, `peers-of`) and seed 002's initial message and keepalive. Announced entries are
 * checked one by one; bad ones are dropped and reported back (at most MAX_DROPPED_REPORTED per
 * message), never the whole message. The server (server.ts) owns the connections, the hello,
 * and when answers may be sent; this file owns the answers and the changes to the Registry.
 */
import { ERROR_CODES, SwarmError } from '../errors.js';
import type { Header } from '../protocol/frame.js';
import type { TrackerRequest } from '../protocol/messages.js';
import { checkAnnounced, type Dropped } from '../protocol/entries.js';
import { nameProblem } from '../protocol/names.js';
import type { Log } from '../log.js';
import type { Registry } from './registry.js';

/** Directory entries per `directory` page, and the JSON bytes a page may reach. */
export const DIR_PAGE_ENTRIES = 1000;
const DIR_PAGE_BYTES = 512 << 10;
/** Versions listed in a `holders` answer (newest first). */
const MAX_VERSIONS_LISTED = 16;
/** Dropped entries reported back per message. */
const MAX_DROPPED_REPORTED = 50;

/** The connection a request came on, as the answers see it (TrackerConnection in server.ts). */
export interface Caller {
  /** ip:port of the connection: the key of its registration. */
  readonly key: string;
  readonly ip: string;
  /** Set when it registers, cleared when it unregisters. */
  registered: boolean;
}

/** What the answers act on: the directory, the log, and the server's 'change' event. */
export interface RequestContext {
  readonly registry: Registry;
  readonly log: Log;
  changed(what: string, peer: string): void;
}

type FramedRequest = TrackerRequest | { t: 'unknown'; type: string; id?: number };

function reportDropped(ctx: RequestContext, key: string, dropped: Dropped[]): Dropped[] {
  if (dropped.length) ctx.log('entries-dropped', { peer: key, count: dropped.length, first: `${dropped[0]!.what}: ${dropped[0]!.reason}` });
  return dropped.slice(0, MAX_DROPPED_REPORTED);
}

/** A framed request after `hello`: the directory changed as it asks, and its answer sent. */
export function answerFramed(ctx: RequestContext, c: Caller, m: FramedRequest, now: number, send: (h: Header) => void): void {
  const { registry } = ctx;
  const key = c.key;
  switch (m.t) {
    case 'hello':
      return;
    case 'unknown':
      if (m.id !== undefined) send({ t: 'error', id: m.id, code: ERROR_CODES.UNKNOWN_MESSAGE, message: `unknown request "${m.type}"` });
      return;
    case 'register': {
      const checked = checkAnnounced(m.files, false);
      registry.register(key, { ip: c.ip, port: m.port }, checked.ok, now);
      c.registered = true;
      ctx.log('peer-registered', { peer: key, port: m.port, files: checked.ok.length, dropped: checked.dropped.length });
      ctx.changed('registered', key);
      send({ t: 'ok', id: m.id, dropped: reportDropped(ctx, key, checked.dropped) });
      return;
    }
    case 'keepalive':
      registry.keepalive(key, now, m.port);
      send({ t: 'ok', ...(m.id !== undefined ? { id: m.id } : {}) });
      return;
    case 'update': {
      const checked = checkAnnounced(m.files, false);
      registry.update(key, checked.ok, now);
      ctx.log('peer-updated', { peer: key, files: checked.ok.length, dropped: checked.dropped.length });
      ctx.changed('updated', key);
      send({ t: 'ok', id: m.id, dropped: reportDropped(ctx, key, checked.dropped) });
      return;
    }
    case 'delete': {
      const names = m.names.filter((n): n is string => typeof n === 'string' && nameProblem(n) === null);
      registry.delete(key, names, now);
      ctx.log('peer-deleted', { peer: key, files: names.length });
      ctx.changed('deleted', key);
      send({ t: 'ok', id: m.id });
      return;
    }
    case 'unregister':
      registry.unregister(key);
      c.registered = false;
      ctx.log('peer-unregistered', { peer: key });
      ctx.changed('unregistered', key);
      send({ t: 'ok', id: m.id });
      return;
    case 'dir':
      send({ t: 'directory', id: m.id, ...directoryPage(registry, m.after, m.limit) });
      return;
    case 'who-has':
      send({ t: 'holders', id: m.id, name: m.name, versions: registry.versions(m.name).slice(0, MAX_VERSIONS_LISTED) });
      return;
    case 'peers-of': {
      const v = registry.peersOf(m.cid);
      send({ t: 'peers', id: m.id, cid: m.cid, peers: v ? [...v.holders, ...v.partial] : [] });
      return;
    }
  }
}

/**
 * One page of the directory: names after `after`, at most `limit` (capped at DIR_PAGE_ENTRIES)
 * and DIR_PAGE_BYTES of JSON (but never empty while names remain); `next` when more follow.
 */
function directoryPage(registry: Registry, after: string | undefined, limit: number | undefined): { files: Record<string, unknown>; next?: string } {
  const most = Math.max(1, Math.min(limit ?? DIR_PAGE_ENTRIES, DIR_PAGE_ENTRIES));
  const names = registry.namesAfter(after, most + 1);
  const files: Record<string, unknown> = {};
  let bytes = 0;
  let last: string | undefined;
  let cut = false;
  for (let i = 0; i < Math.min(most, names.length); i++) {
    const e = registry.whoHas(names[i]!)!;
    bytes += names[i]!.length + JSON.stringify(e).length + 4;
    if (bytes > DIR_PAGE_BYTES && last !== undefined) {
      cut = true;
      break;
    }
    files[names[i]!] = e;
    last = names[i]!;
  }
  const more = cut || names.length > most;
  return { files, ...(more && last !== undefined ? { next: last } : {}) };
}

/**
 * seed 002, Table 1: an Initial Message (with `files`) registers, a Keep-alive keeps the
 * registration alive; a stock registration expires after `maxSilenceMs`. The answer (the
 * directory) is the server's to send. Throws on a message without a valid port, and on a
 * keepalive before any initial message.
 */
export function applyLegacy(ctx: RequestContext, c: Caller, o: Record<string, unknown>, now: number, maxSilenceMs: number): void {
  const port = o.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new SwarmError(ERROR_CODES.BAD_MESSAGE, 'seed-002 message without a valid "port"');
  }
  if (Array.isArray(o.files)) {
    const checked = checkAnnounced(o.files, true);
    ctx.registry.register(c.key, { ip: c.ip, port }, checked.ok, now, { maxSilenceMs });
    c.registered = true;
    ctx.log('legacy-peer-registered', { peer: c.key, port, files: checked.ok.length, dropped: checked.dropped.length });
    reportDropped(ctx, c.key, checked.dropped);
    ctx.changed('registered', c.key);
  } else if (ctx.registry.has(c.key)) {
    ctx.registry.keepalive(c.key, now, port);
  } else {
    throw new SwarmError(ERROR_CODES.BAD_MESSAGE, 'seed-002 keepalive before the initial message');
  }
}
