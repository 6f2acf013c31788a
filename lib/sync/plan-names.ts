/**
 * What to do here about each name the members mention: their entries for it gathered (with who
 * holds each live version), merged with ours by plan.ts's one rule, and decided. Pure apart from
 * the index's `agree` and `rememberDeletion`, which change only what we know, never a file; the
 * actions that change files come out as tickets for the queue (tickets.ts).
 */
import type { PeerAddress } from '../types.js';
import type { SyncIndex } from './index-store.js';
import { decide, mergeRemote, type SyncEntry } from './plan.js';
import type { RemoteIndex } from './readers.js';
import type { TicketQueue } from './tickets.js';

/** Every name any member mentions (`which` 'all'), or those named; a name sync is busy with waits for its end. */
export function planNames(
  which: Set<string> | 'all',
  remote: Map<string, RemoteIndex>,
  index: SyncIndex,
  tickets: TicketQueue,
  o: { noDelete?: boolean },
): void {
  let names: Set<string>;
  if (which === 'all') {
    names = new Set<string>();
    for (const r of remote.values()) for (const n of r.entries.keys()) names.add(n);
  } else names = which;
  for (const name of names) {
    if (index.busy.has(name)) continue;
    // the members' entries, merged (plan.ts mergeRemote: ours counts too), and who holds each live version
    const entries: SyncEntry[] = [];
    const holders = new Map<string, PeerAddress[]>();
    for (const r of remote.values()) {
      const e = r.entries.get(name);
      if (!e) continue;
      entries.push(e);
      if (e.deleted === undefined) {
        const list = holders.get(e.cid) ?? [];
        list.push(r.addr);
        holders.set(e.cid, list);
      }
    }
    const local = index.get(name);
    const best = mergeRemote(local, entries, { noDelete: o.noDelete });
    if (!best) continue;
    const action = decide(local, best);
    const here = local && local.deleted === undefined ? local.cid : '';
    switch (action.do) {
      case 'agree':
        index.agree(name, action.cid);
        tickets.withdraw(name);
        break;
      case 'fetch':
      case 'conflict':
        // ours wins: they will take ours, and a fetch planned before (ours was edited since) goes
        if (action.do === 'conflict' && action.ours === 'wins') tickets.withdraw(name);
        else tickets.add(name, action.remote, holders.get(action.remote.cid) ?? [], action.do === 'conflict', here);
        break;
      case 'delete':
        if (!o.noDelete) tickets.add(name, action.tombstone, [], false, here);
        break;
      case 'remember-deletion':
        if (!o.noDelete) index.rememberDeletion(action.tombstone);
        tickets.withdraw(name);
        break;
      case 'nothing':
        tickets.withdraw(name);
        break;
    }
  }
}
