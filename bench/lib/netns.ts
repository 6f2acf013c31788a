/**
 * Networks in namespaces for the benches that need rate-limited links (root only). `createLab`
 * builds a hub namespace holding a Linux bridge (with the hub's own address, for trackers) and
 * one namespace per peer, joined to the bridge by a veth pair. Each veth is created directly
 * inside its namespaces (`ip link add ... netns A type veth peer ... netns B`), so no interface
 * ever appears in the host's namespace, and the host's network is untouched. The peer-side end is
 * shaped with `tc qdisc ... tbf`: that caps the peer's upload (egress from its namespace); its
 * download is not capped. Addresses are link-local (SUBNET.1 for the hub, SUBNET.10+i for peer i,
 * /24) and exist only inside these namespaces. `destroy()` deletes the namespaces, which deletes
 * the veths and the bridge with them; it is synchronous so that it can run from an 'exit' handler.
 * `deleteStaleLabs` removes what a killed run of the same bench left behind.
 *
 * Processes in a lab are started through `lab.exec(ns)` (`ip netns exec NS`, which execs the
 * command, so the PID is the command's own) as members of the bench's `Procs` (procs.ts).
 */
import { spawnSync } from 'node:child_process';
import { which } from './tools.js';
import { waitUntil } from './wait.js';

export interface TbfSpec {
  /** rate in Mbit/s (10^6 bit/s) */
  rateMbit: number;
  /** bucket size, tc syntax ("64kb" = 64 KiB) */
  burst: string;
  /** longest a packet may wait in the queue, tc syntax ("50ms"); sets the queue limit */
  latency: string;
}

export interface LabPeer {
  index: number;
  ns: string;
  addr: string;
  /** the veth end inside the peer's namespace (shaped) */
  dev: string;
}

export interface Lab {
  prefix: string;
  hub: string;
  hubAddr: string;
  peers: LabPeer[];
  tbf: TbfSpec | null;
  /** argv prefix that runs a command inside namespace `ns` */
  exec(ns: string): string[];
  /** delete every namespace of this lab (idempotent, synchronous) */
  destroy(): void;
}

const IFACE_HUB_BRIDGE = 'fcbr';
const IFACE_PEER = 'fcv0';
/** The hub's end of peer `index`'s veth (what it receives is what that peer sent). */
export const hubEndOf = (index: number): string => `fcp${index}`;

export function sh(argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status ?? r.signal ?? r.error?.message}): ${(r.stderr ?? '').trim()}`);
  return r.stdout;
}

/** Why namespaces cannot be used here, or null when they can. */
export function netnsSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, bridge and tc)';
  for (const t of ['ip', 'tc']) if (!which(t)) return `${t} not found (apt-get install -y iproute2)`;
  return null;
}

export function listNetns(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').map((l) => l.split(' ')[0]!.trim()).filter(Boolean);
}

/**
 * Namespaces named PREFIX<pid><role> left behind by a run of the same bench that was killed
 * outright (its PID no longer runs): stop the processes it left in them (by PID, SIGKILL: that run
 * started them and cannot any more), then delete them. Returns the names deleted.
 */
export async function deleteStaleLabs(prefix: string): Promise<string[]> {
  const re = new RegExp(`^${prefix}(\\d+)[a-z]`);
  const gone: string[] = [];
  for (const ns of listNetns()) {
    const m = re.exec(ns);
    if (!m) continue;
    if (isRunning(Number(m[1]))) continue;
    const pids = (spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '').split('\n').map(Number).filter((x) => x > 1);
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await waitUntil(() => pids.every((p) => !isRunning(p)), { timeoutMs: 5000, intervalMs: 50 });
    spawnSync('ip', ['netns', 'del', ns]);
    gone.push(ns);
  }
  return gone;
}

/**
 * Build the lab: hub namespace `${prefix}${pid}h` with bridge and `${subnet}.1/24`; peer i (0-based)
 * in `${prefix}${pid}p${i}` with `${subnet}.${10 + i}/24` on its veth, shaped with `tbf` (except
 * the peers listed in `unshaped`: a downloader whose upload is only its requests). On any failure,
 * what was created is deleted before the error is thrown.
 */
export function createLab(opts: { prefix: string; peers: number; subnet: string; tbf: TbfSpec | null; unshaped?: number[] }): Lab {
  if (!/^169\.254\.\d{1,3}$/.test(opts.subnet)) throw new Error(`subnet ${opts.subnet}: only link-local 169.254.X is allowed`);
  if (opts.peers < 1 || opts.peers > 240) throw new Error(`peers ${opts.peers}: 1..240`);
  const base = `${opts.prefix}${process.pid}`;
  const hub = `${base}h`;
  const hubAddr = `${opts.subnet}.1`;
  const peers: LabPeer[] = Array.from({ length: opts.peers }, (_, i) => ({ index: i, ns: `${base}p${i}`, addr: `${opts.subnet}.${10 + i}`, dev: IFACE_PEER }));
  const created: string[] = [];
  const destroy = () => {
    // peers first, then the hub (deleting a namespace deletes its veth ends and the bridge)
    for (const ns of [...created].reverse()) spawnSync('ip', ['netns', 'del', ns], { timeout: 30_000 });
    created.length = 0;
  };
  const addNs = (ns: string) => {
    if (listNetns().includes(ns)) spawnSync('ip', ['netns', 'del', ns]); // our own name from an earlier lab of this PID
    sh(['ip', 'netns', 'add', ns]);
    created.push(ns);
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  };
  try {
    addNs(hub);
    sh(['ip', '-n', hub, 'link', 'add', IFACE_HUB_BRIDGE, 'type', 'bridge']);
    sh(['ip', '-n', hub, 'addr', 'add', `${hubAddr}/24`, 'dev', IFACE_HUB_BRIDGE]);
    sh(['ip', '-n', hub, 'link', 'set', IFACE_HUB_BRIDGE, 'up']);
    // where br_netfilter is loaded (Docker hosts), every frame crossing the bridge goes through
    // iptables hooks too: CPU every contender pays and none needs. Off in the hub only (the
    // setting is per namespace); absent module, nothing to do.
    spawnSync('ip', ['netns', 'exec', hub, 'sh', '-c', 'for f in /proc/sys/net/bridge/bridge-nf-call-*; do [ -w "$f" ] && echo 0 > "$f"; done; true'], { timeout: 10_000 });
    for (const p of peers) {
      addNs(p.ns);
      const hubEnd = hubEndOf(p.index);
      sh(['ip', 'link', 'add', p.dev, 'netns', p.ns, 'type', 'veth', 'peer', 'name', hubEnd, 'netns', hub]);
      sh(['ip', '-n', hub, 'link', 'set', hubEnd, 'master', IFACE_HUB_BRIDGE]);
      sh(['ip', '-n', hub, 'link', 'set', hubEnd, 'up']);
      sh(['ip', '-n', p.ns, 'addr', 'add', `${p.addr}/24`, 'dev', p.dev]);
      sh(['ip', '-n', p.ns, 'link', 'set', p.dev, 'up']);
      if (opts.tbf && !opts.unshaped?.includes(p.index)) {
        const t = opts.tbf;
        sh(['ip', 'netns', 'exec', p.ns, 'tc', 'qdisc', 'add', 'dev', p.dev, 'root', 'tbf', 'rate', `${t.rateMbit}mbit`, 'burst', t.burst, 'latency', t.latency]);
      }
    }
  } catch (e) {
    destroy();
    throw e;
  }
  return { prefix: base, hub, hubAddr, peers, tbf: opts.tbf, exec: (ns) => ['ip', 'netns', 'exec', ns], destroy };
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
