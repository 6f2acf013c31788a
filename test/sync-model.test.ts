// @ts-nocheck -- a randomized model checker written in plain JavaScript (hostile review 43); what it
// checks is the typed code it imports
/**
 * A randomized model checker of swarm sync's decision rules (hostile review 43). It drives the REAL
 * pure code: mergeRemote, decide, newerWins, conflictName (lib/sync/plan.ts) and the REAL SyncIndex
 * (lib/sync/index-store.ts: local edits through followSome, deletions, agree, rememberDeletion,
 * fetched with the holder's whole lineage), over 2-4 simulated peers holding one name: edits,
 * creations and deletions on clocks skewed by up to a minute, peers going offline and coming back,
 * partitions and heals, full reads and single-peer reads (news), each applied as syncer.ts and
 * landing.ts do (a conflict: the loser's side renames its version, never over an existing copy,
 * and fetches the winner). After the last heal, whole-swarm rounds run until nothing changes (40 at
 * most), then it checks: the same version under the name on every peer; the same conflict copies;
 * every version a user wrote, unless an edit was made from it or it was deleted on purpose, on
 * every peer (under the name or as a copy), else classed as live on some peers only, only in a
 * trash, or lost. Accepted by design: a version only in a trash (first contact, an older version
 * than a deletion, a revert). The same loser copied by two peers under two names (270 of 10,000
 * histories when a copy was named after the peer that made it) is now about never: copies are
 * named after the version's maker, and a name holding the same content is the copy
 * (conflict-copy.ts); 1 in 50,000 left, a copy that ends equal to the file itself after a skewed
 * clock's edit and two deletions (clutter, not loss). Simplified: tickets run at
 * once (no queue, retries, busy), one name and its copies, tombstones never expire.
 *
 * SWARM_MODEL_HISTORIES and SWARM_MODEL_SEED run more (100,000 histories take ~25 s).
 */
import t from 'tap';
import * as planMod from '../lib/sync/plan.js';
import { SyncIndex } from '../lib/sync/index-store.js';
const { decide, newerWins, conflictName, isConflictCopy, lineage } = planMod;

const HISTORIES = Number(process.env.SWARM_MODEL_HISTORIES ?? 10_000);
const SEED = Number(process.env.SWARM_MODEL_SEED ?? 21);
const REVERTS = false;
let ONE_ROOT = false;
const NO_REPLACE_COPY = true;
const FETCH_LINEAGE = true;
const VERBOSE = false;
const NPEERS_OPT = null;
const NAME = 'f.txt';
const ROOT = '/tmp/h43-model-nonexistent';

// ---------- rng ----------
function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

// ---------- the merge of members' entries: the code's own (syncer.ts plan() calls it) ----------
const merge = (list, local) => planMod.mergeRemote(local, list);

// ---------- the world ----------
class Peer {
  constructor(i, skew) {
    this.i = i;
    this.device = (0xa000000 + i).toString(16).padEnd(16, '0');
    this.skew = skew;
    this.index = new SyncIndex(ROOT, 30);
    this.index.deviceId = this.device; // versions made here name this peer as their maker
    this.files = new Map(); // name -> {cid, mtime}
    this.trash = new Set(); // cids
    this.views = new Map(); // peer i -> Map(name -> entry)
    this.online = true;
    this.group = 0;
  }
}

function clone(e) {
  return JSON.parse(JSON.stringify(e));
}

class World {
  constructor(cfg) {
    this.cfg = cfg;
    this.T = 1_700_000_000;
    this.peers = cfg.skews.map((s, i) => new Peer(i, s));
    this.nextCid = 1;
    this.writes = []; // {cid, base, peer, T}
    this.superseded = new Set(); // cids some user edit was made from
    this.deleted = new Set(); // cids a user deleted deliberately
    this.events = [];
    this.overwrites = [];
  }
  now(p) {
    return this.T + p.skew;
  }
  log(s) {
    this.events.push(s);
  }
  reachable(p, q) {
    return p !== q && p.online && q.online && p.group === q.group;
  }
  localWrite(p, name, cid, mtime) {
    p.files.set(name, { cid, mtime });
    p.index.followSome([{ name, cid, mtime, size: 1 }], [], this.now(p));
  }
  // ---- user actions ----
  edit(p, revertTo) {
    const cur = p.files.get(NAME);
    const cid = revertTo ?? `c${String(this.nextCid++).padStart(4, '0')}`;
    if (cur && cur.cid === cid) return;
    if (ONE_ROOT && !cur && !p.index.get(NAME) && this.writes.length) return; // only one independent creation
    if (cur) this.superseded.add(cur.cid);
    const e = p.index.get(NAME);
    this.writes.push({ cid, base: cur?.cid, after: e?.deleted !== undefined ? e.cid : undefined, peer: p.i, T: this.T });
    this.log(`T${this.T} P${p.i} ${cur ? `edits ${cur.cid} ->` : 'creates'} ${cid} mtime ${this.now(p)}`);
    this.localWrite(p, NAME, cid, this.now(p));
  }
  del(p) {
    const cur = p.files.get(NAME);
    if (!cur) return;
    this.deleted.add(cur.cid);
    this.log(`T${this.T} P${p.i} deletes ${cur.cid} at ${this.now(p)}`);
    p.files.delete(NAME);
    p.index.followSome([], [NAME], this.now(p));
  }
  // ---- sync: read members, plan every name, run the tickets at once ----
  sync(p, mode, qi) {
    if (!p.online) return false;
    const before = this.fingerprint();
    if (mode === 'pull') {
      for (const q of this.peers) {
        if (q === p) continue;
        if (this.reachable(p, q)) p.views.set(q.i, this.snapshot(q));
        else p.views.delete(q.i);
      }
    } else {
      const q = this.peers[qi];
      if (!q || !this.reachable(p, q)) return false;
      p.views.set(q.i, this.snapshot(q));
    }
    const names = new Set();
    for (const v of p.views.values()) for (const n of v.keys()) names.add(n);
    for (const name of [...names].sort()) this.planName(p, name);
    return this.fingerprint() !== before;
  }
  snapshot(q) {
    const m = new Map();
    for (const e of q.index.all()) m.set(e.name, clone(e));
    return m;
  }
  planName(p, name) {
    const list = [];
    const holders = new Map();
    for (const [qi, v] of p.views) {
      const e = v.get(name);
      if (!e) continue;
      list.push(e);
      if (e.deleted === undefined) holders.set(e.cid, [...(holders.get(e.cid) ?? []), qi]);
    }
    const local = p.index.get(name);
    const best = merge(list, local);
    if (!best) return;
    const a = decide(local ? clone(local) : undefined, best);
    switch (a.do) {
      case 'agree':
        p.index.agree(name, a.cid);
        break;
      case 'fetch':
      case 'conflict':
        if (a.do === 'conflict' && a.ours === 'wins') break;
        this.fetch(p, name, a.remote, holders.get(a.remote.cid) ?? [], a.do === 'conflict');
        break;
      case 'delete': {
        const f = p.files.get(name);
        if (f) p.trash.add(f.cid);
        p.files.delete(name);
        p.index.rememberDeletion(a.tombstone);
        this.log(`   P${p.i} deletes ${name} (${f?.cid}) after ${a.tombstone.cid}@${a.tombstone.deleted}${VERBOSE ? ` local ${JSON.stringify(local)} tomb ${JSON.stringify(a.tombstone)}` : ""}`);
        break;
      }
      case 'remember-deletion':
        p.index.rememberDeletion(a.tombstone);
        break;
    }
  }
  fetch(p, name, remote, holders, conflict) {
    // by content id from a holder (as read) that is reachable and still has it
    const ok = holders.some((qi) => {
      const q = this.peers[qi];
      const f = q.files.get(name);
      return this.reachable(p, q) && f && f.cid === remote.cid;
    });
    if (!ok) {
      this.log(`   P${p.i} fetch ${name} ${remote.cid} fails (no holder)`);
      return;
    }
    const local = p.index.get(name);
    const f = p.files.get(name);
    let note = '';
    if (local && local.deleted === undefined && f) {
      if (conflict) {
        // as conflict-copy.ts: named after the version's maker; a name holding the same content
        // is the copy already (ours then goes to the trash as for a fetch), any other takes .2 ...
        const maker = local.maker ?? p.device;
        let copy = conflictName(name, local.mtime, maker);
        if (NO_REPLACE_COPY) for (let k = 2; p.files.has(copy) && p.files.get(copy).cid !== f.cid; k++) copy = conflictName(name, local.mtime, maker, k);
        const old = p.files.get(copy);
        if (old && old.cid !== f.cid) {
          this.overwrites.push({ peer: p.i, copy, lost: old.cid, by: f.cid });
          note += ` [OVERWRITES copy ${copy} holding ${old.cid}]`;
        }
        if (old && old.cid === f.cid) {
          p.trash.add(f.cid);
          note += ` kept already as ${copy}; trash ${f.cid}`;
        } else {
          note += ` copy ${copy}=${f.cid}`;
          this.localWrite(p, copy, f.cid, f.mtime); // rename keeps the mtime; the library then sees a new (or changed) file
        }
      } else {
        p.trash.add(f.cid);
        note += ` trash ${f.cid}`;
      }
    }
    p.files.set(name, { cid: remote.cid, mtime: remote.mtime });
    // as landing.ts: the holder's whole lineage (what it edited, then what it agreed on)
    p.index.fetched(name, remote.cid, remote.mtime, 1, FETCH_LINEAGE ? lineage(remote) : remote.prev, remote.maker);
    this.log(`   P${p.i} ${conflict ? 'conflict-fetches' : 'fetches'} ${name} ${remote.cid}${note}`);
  }
  fingerprint() {
    return JSON.stringify(this.peers.map((p) => [[...p.files].sort(), p.index.all().sort((a, b) => (a.name < b.name ? -1 : 1))]));
  }
}

// ---------- histories ----------
function genHistory(r) {
  const n = NPEERS_OPT ? Number(NPEERS_OPT) : r() < 0.5 ? 3 : 4;
  const skews = Array.from({ length: n }, () => (r() < 0.4 ? 0 : Math.floor((r() - 0.5) * 120)));
  const ops = [];
  const len = 4 + Math.floor(r() * 26);
  for (let k = 0; k < len; k++) {
    const x = r();
    const p = Math.floor(r() * n);
    const dt = 1 + Math.floor(r() * 20);
    if (x < 0.3) ops.push({ t: 'edit', p, dt, ...(REVERTS && r() < 0.2 ? { revert: Math.floor(r() * 1e6) } : {}) });
    else if (x < 0.4) ops.push({ t: 'del', p, dt });
    else if (x < 0.48) ops.push({ t: 'toggle', p, dt });
    else if (x < 0.55) ops.push({ t: 'split', groups: Array.from({ length: n }, () => Math.floor(r() * 2)), dt });
    else if (x < 0.6) ops.push({ t: 'heal', dt });
    else if (x < 0.8) ops.push({ t: 'sync', p, mode: 'pull', dt });
    else if (x < 0.92) ops.push({ t: 'sync', p, mode: 'news', q: Math.floor(r() * n), dt });
    else ops.push({ t: 'round', dt });
  }
  return { skews, ops };
}

function run(h, keepLog = false) {
  const w = new World({ skews: h.skews });
  const n = h.skews.length;
  for (const op of h.ops) {
    w.T += op.dt;
    const p = op.p !== undefined ? w.peers[op.p] : null;
    switch (op.t) {
      case 'edit': {
        let rv;
        if (op.revert !== undefined) {
          const mine = w.writes.filter((x) => x.peer === p.i).map((x) => x.cid);
          if (mine.length) rv = mine[op.revert % mine.length];
        }
        w.edit(p, rv);
        break;
      }
      case 'del': w.del(p); break;
      case 'toggle': p.online = !p.online; w.log(`T${w.T} P${p.i} ${p.online ? 'online' : 'offline'}`); break;
      case 'split': w.peers.forEach((q, i) => (q.group = op.groups[i])); w.log(`T${w.T} split ${op.groups.join('')}`); break;
      case 'heal': w.peers.forEach((q) => (q.group = 0)); w.log(`T${w.T} heal`); break;
      case 'sync': w.sync(p, op.mode, op.q); break;
      case 'round': for (const q of w.peers) w.sync(q, 'pull'); break;
    }
  }
  // heal everything; whole-swarm rounds until nothing changes
  w.log(`T${w.T} --- all online, healed ---`);
  for (const q of w.peers) { q.online = true; q.group = 0; }
  let rounds = 0;
  let quiet = false;
  for (; rounds < 40; rounds++) {
    w.T += 5;
    let changed = false;
    for (const q of w.peers) changed = w.sync(q, 'pull') || changed;
    if (!changed) { quiet = true; break; }
  }
  return { w, rounds, quiet, ...check(w, quiet) };
}

function check(w, quiet) {
  const fails = [];
  if (!quiet) fails.push('pingpong');
  const peers = w.peers;
  const main = peers.map((p) => p.files.get(NAME)?.cid ?? '-');
  if (new Set(main).size > 1) fails.push('diverge-main');
  const copies = peers.map((p) => [...p.files].filter(([n]) => n !== NAME).map(([, f]) => f.cid).sort().join(','));
  if (new Set(copies).size > 1) fails.push('diverge-copies');
  const details = [];
  for (const wr of w.writes) {
    const c = wr.cid;
    if (w.superseded.has(c) || w.deleted.has(c)) continue;
    const liveAt = peers.filter((p) => [...p.files.values()].some((f) => f.cid === c)).length;
    if (liveAt === peers.length) continue;
    const inTrash = peers.filter((p) => p.trash.has(c)).map((p) => p.i);
    if (liveAt > 0) { fails.push('partial'); details.push(`${c} live on ${liveAt}/${peers.length}`); }
    else if (inTrash.length) {
      let cls = wr.base !== undefined ? 'trash-only-edit' : wr.after ? 'trash-only-recreation' : 'trash-only-creation';
      if (w.deleted.size === 0) cls += '-nodelete';
      fails.push(cls);
      details.push(`${c} only in trash of P${inTrash.join(',P')}`);
    }
    else { fails.push('lost'); details.push(`${c} LOST`); }
  }
  if (w.overwrites.length) fails.push('copy-overwrite');
  // duplicate conflict copies of the same content (not a loss; noted)
  const dup = peers.some((p) => {
    const cs = [...p.files].filter(([n]) => isConflictCopy(n)).map(([, f]) => f.cid);
    return new Set(cs).size < cs.length || cs.some((c) => c === p.files.get(NAME)?.cid);
  });
  if (dup) fails.push('dup-copies');
  return { fails: [...new Set(fails)], details, main, copies };
}

// ---------- minimisation (greedy: drop ops, then simplify) ----------
function failsWith(h, cls) {
  try {
    return run(h).fails.includes(cls);
  } catch (e) {
    return cls === 'crash';
  }
}
function minimise(h, cls) {
  let cur = { skews: [...h.skews], ops: h.ops.map((o) => ({ ...o })) };
  let progress = true;
  while (progress) {
    progress = false;
    for (let chunk = Math.max(1, cur.ops.length >> 1); chunk >= 1; chunk >>= 1) {
      for (let i = 0; i + chunk <= cur.ops.length; ) {
        const cand = { skews: cur.skews, ops: [...cur.ops.slice(0, i), ...cur.ops.slice(i + chunk)] };
        if (failsWith(cand, cls)) { cur = cand; progress = true; } else i++;
      }
    }
    // fewer peers
    if (cur.skews.length > 2) {
      const last = cur.skews.length - 1;
      const ok = cur.ops.every((o) => o.p !== last && (o.q === undefined || o.q !== last));
      if (ok) {
        const cand = { skews: cur.skews.slice(0, last), ops: cur.ops.map((o) => (o.groups ? { ...o, groups: o.groups.slice(0, last) } : o)) };
        if (failsWith(cand, cls)) { cur = cand; progress = true; }
      }
    }
    // zero skews, small dts, pull instead of news
    for (let i = 0; i < cur.skews.length; i++) {
      if (cur.skews[i] !== 0) {
        const cand = { skews: cur.skews.map((s, j) => (j === i ? 0 : s)), ops: cur.ops };
        if (failsWith(cand, cls)) { cur = cand; progress = true; }
      }
    }
    for (let i = 0; i < cur.ops.length; i++) {
      if (cur.ops[i].dt !== 1) {
        const ops = cur.ops.map((o, j) => (j === i ? { ...o, dt: 1 } : o));
        if (failsWith({ skews: cur.skews, ops }, cls)) { cur = { skews: cur.skews, ops }; progress = true; }
      }
    }
  }
  return cur;
}

function show(h) {
  const r = run(h);
  const lines = [`skews ${JSON.stringify(h.skews)}; ops ${JSON.stringify(h.ops)}`];
  lines.push(...r.w.events.map((e) => '  ' + e));
  lines.push(`  end after ${r.rounds} healed rounds (quiet=${r.quiet}): main ${r.main.join(' ')} | copies ${r.copies.map((c) => `[${c}]`).join(' ')} | trash ${r.w.peers.map((p) => `[${[...p.trash]}]`).join(' ')}`);
  if (r.details.length) lines.push('  ' + r.details.join('; '));
  if (r.w.overwrites.length) lines.push('  overwrites ' + JSON.stringify(r.w.overwrites));
  return lines.join('\n');
}

// ---------- the test ----------
const ACCEPTED = /^(dup-copies|trash-only-.*)$/;

/** Run `n` random histories; failure classes with their counts and smallest history. */
function checkMany(n, seed, oneRoot) {
  ONE_ROOT = oneRoot;
  const r = rng(seed);
  const byClass = new Map();
  let crashes = 0;
  let firstCrash = null;
  for (let k = 0; k < n; k++) {
    const h = genHistory(r);
    let res;
    try {
      res = run(h);
    } catch (e) {
      crashes++;
      firstCrash ??= `${e?.stack ?? e}\n${JSON.stringify(h)}`;
      continue;
    }
    for (const c of res.fails) {
      const b = byClass.get(c) ?? { count: 0, first: null };
      b.count++;
      if (!b.first || h.ops.length < b.first.ops.length) b.first = h;
      byClass.set(c, b);
    }
  }
  return { byClass, crashes, firstCrash };
}

t.test(`${HISTORIES} random histories (seed ${SEED}): they converge, nothing is lost`, async (t) => {
  const { byClass, crashes, firstCrash } = checkMany(HISTORIES, SEED, false);
  t.equal(crashes, 0, firstCrash ?? 'no crash');
  for (const [c, b] of [...byClass].sort()) {
    if (ACCEPTED.test(c)) t.comment(`${c}: ${b.count} (accepted)`);
    else t.fail(`${c}: ${b.count} histories; the smallest:\n${show(minimise(b.first, c))}`);
  }
  const dup = byClass.get('dup-copies')?.count ?? 0;
  t.ok(dup <= Math.max(1, HISTORIES / 20_000), `${dup} of ${HISTORIES} histories with two copies of one version (270 of 10,000 before copies were named after the maker)`);
  t.pass(`${HISTORIES} histories checked`);
});

t.test('one file made once (no first contact): an edit ends only in a trash when a deletion took it, or about never', async (t) => {
  const n = Math.ceil(HISTORIES / 2);
  const { byClass } = checkMany(n, SEED + 1, true);
  for (const [c, b] of [...byClass].sort()) t.comment(`${c}: ${b.count}`);
  const stray = byClass.get('trash-only-edit-nodelete')?.count ?? 0;
  // the known rest (hostile review 43): more than PREV_KEEP (8) offline edits by the maker before
  // it saw the copy another fetched look like a first contact (with 4: 7-16 of 50,000; with 8: 0)
  t.ok(stray <= n / 20_000, `${stray} of ${n} histories with an edit only in a trash and no deletion`);
  for (const c of ['trash-only-creation', 'trash-only-creation-nodelete']) t.notOk(byClass.has(c), `${c}: none (one maker)`);
});
