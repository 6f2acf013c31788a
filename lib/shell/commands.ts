/**
 * The commands of `swarm shell`, as the seeds name them, and the parsing of a typed line: pure,
 * no sockets. Seed 001's LISTL, LISTR, SEARCH, DISCOVER, GET, RESET, QUIT, FORCEQUIT; seed 003's
 * register, unregister, get_files_list, update, delete, download; seed 004's list, download, exit;
 * and help, peers, status. Command names are case-insensitive; arguments are separated by commas
 * (seed 001: `GET name,ip,port`) or, without a comma, by spaces; a command that takes one name
 * takes the whole rest of the line (names may hold spaces), quotes around it removed.
 */

export type ArgKind = 'name' | 'int' | 'host' | 'port';

export interface CommandSpec {
  name: string;
  /** Where it comes from, for help. */
  seed: string;
  /** Required then optional arguments. */
  args: { name: string; kind: ArgKind; optional?: boolean }[];
  /** The whole rest of the line is one name. */
  restIsName?: boolean;
  help: string;
}

export const COMMANDS: CommandSpec[] = [
  { name: 'LISTL', seed: '001', args: [], help: 'list the files this peer shares' },
  { name: 'LISTR', seed: '001', args: [{ name: 'ip', kind: 'host' }, { name: 'port', kind: 'port' }], help: 'list the files another peer shares: LISTR ip,port (or ip:port)' },
  { name: 'SEARCH', seed: '001', args: [{ name: 'pattern', kind: 'name' }, { name: 'ttl', kind: 'int', optional: true }], help: 'find files by name through the overlay and the tracker: SEARCH name,ttl (default ttl 5; substring, or a glob with * and ?)' },
  { name: 'DISCOVER', seed: '001', args: [{ name: 'ttl', kind: 'int', optional: true }], help: 'learn the peers within TTL hops: DISCOVER ttl (default 2)' },
  { name: 'GET', seed: '001', args: [{ name: 'name', kind: 'name' }, { name: 'ip', kind: 'host', optional: true }, { name: 'port', kind: 'port', optional: true }], help: 'download a file in the background: GET name,ip,port from that peer, GET name from every holder' },
  { name: 'RESET', seed: '001', args: [], help: 'forget every known peer' },
  { name: 'QUIT', seed: '001', args: [], help: 'leave once running transfers are done (FORCEQUIT to leave at once)' },
  { name: 'FORCEQUIT', seed: '001', args: [], help: 'leave at once, cutting running transfers (a download resumes when asked again)' },
  { name: 'register', seed: '003', args: [], help: 'register this peer and its files with the tracker' },
  { name: 'unregister', seed: '003', args: [], help: 'leave the tracker (peers can no longer find us there)' },
  { name: 'get_files_list', seed: '003', args: [], help: "the tracker's directory: every file and its holders" },
  { name: 'update', seed: '003', args: [], help: 'rescan the shared folder now and tell the tracker what changed' },
  { name: 'delete', seed: '003', args: [{ name: 'name', kind: 'name' }], restIsName: true, help: 'stop sharing a file: it moves to DIR/.swarm/trash/ and the tracker is told' },
  { name: 'download', seed: '003, 004', args: [{ name: 'name', kind: 'name' }], restIsName: true, help: 'download a file from every holder, in the background' },
  { name: 'list', seed: '004', args: [], help: 'the files and chunks this peer has: shared files and downloads in progress' },
  { name: 'exit', seed: '004', args: [], help: 'same as QUIT' },
  { name: 'peers', seed: 'swarm', args: [], help: 'the peers this peer knows, where each came from, when last seen' },
  { name: 'status', seed: 'swarm', args: [], help: 'running downloads and uploads' },
  { name: 'help', seed: 'swarm', args: [{ name: 'command', kind: 'name', optional: true }], restIsName: true, help: 'this list, or help COMMAND' },
];

const BY_NAME = new Map(COMMANDS.map((c) => [c.name.toLowerCase(), c]));

export function findCommand(word: string): CommandSpec | undefined {
  return BY_NAME.get(word.toLowerCase());
}

export type Parsed = { ok: true; cmd: CommandSpec; args: string[] } | { ok: false; message: string } | { ok: true; cmd: null };

function unquote(s: string): string {
  const t = s.trim();
  return t.length >= 2 && ((t.startsWith('"') && t.endsWith('"')) || (t.startsWith("'") && t.endsWith("'"))) ? t.slice(1, -1) : t;
}

export function usage(c: CommandSpec): string {
  const req = c.args.filter((a) => !a.optional).map((a) => a.name);
  const opt = c.args.filter((a) => a.optional).map((a) => a.name);
  if (req.length === 0 && opt.length === 0) return c.name;
  const optText = opt.length ? `[${req.length ? ',' : ''}${opt.join(',')}]` : '';
  return `${c.name} ${req.join(',')}${optText}`;
}

/** One typed line: the command and its arguments, checked; empty lines and `#` comments are nothing. */
export function parseLine(line: string): Parsed {
  const text = line.trim();
  if (text === '' || text.startsWith('#')) return { ok: true, cmd: null };
  const m = /^([^\s,]+)[\s,]*(.*)$/s.exec(text)!;
  const cmd = findCommand(m[1]!);
  if (!cmd) return { ok: false, message: `unknown command ${JSON.stringify(m[1]!.slice(0, 40))}; type help for the list` };
  const rest = m[2]!.trim();
  let args: string[];
  if (cmd.restIsName) args = rest === '' ? [] : [unquote(rest)];
  else if (rest === '') args = [];
  // ip:port where ip,port is asked for (LISTR 127.0.0.1:7070, as every other command writes a peer)
  else if (cmd.name === 'LISTR' && /^[^\s,:]+:\d+$/.test(rest)) args = rest.split(':');
  else if (rest.includes(',')) args = rest.split(',').map(unquote);
  // without a comma, words are split on spaces, but a quoted name stays one word (GET "my file.txt")
  else args = (rest.match(/"[^"]*"|'[^']*'|\S+/g) ?? []).map(unquote);
  const required = cmd.args.filter((a) => !a.optional).length;
  if (args.length < required || args.length > cmd.args.length) return { ok: false, message: `usage: ${usage(cmd)}` };
  for (let i = 0; i < args.length; i++) {
    const spec = cmd.args[i]!;
    const v = args[i]!;
    if (spec.kind === 'name' && v === '') return { ok: false, message: `${spec.name} is empty; usage: ${usage(cmd)}` };
    if (spec.kind === 'int' && !/^\d{1,3}$/.test(v)) return { ok: false, message: `${spec.name} must be a whole number, not ${JSON.stringify(v)}` };
    if (spec.kind === 'port' && (!/^\d{1,5}$/.test(v) || Number(v) < 1 || Number(v) > 65535)) return { ok: false, message: `port must be 1 to 65535, not ${JSON.stringify(v)}` };
    if (spec.kind === 'host' && !/^[A-Za-z0-9.:[\]-]{1,253}$/.test(v)) return { ok: false, message: `not a host: ${JSON.stringify(v)}` };
  }
  // GET name,ip needs its port too
  if (cmd.name === 'GET' && args.length === 2) return { ok: false, message: `usage: ${usage(cmd)} (an ip needs its port)` };
  return { ok: true, cmd, args };
}

/** Tab completion: command names, then (after the command) the candidates given. */
export function complete(line: string, candidates: { names: string[]; peers: string[] }): [string[], string] {
  const m = /^(\S*)$/.exec(line);
  if (m) {
    const word = m[1]!.toLowerCase();
    const hits = COMMANDS.map((c) => c.name).filter((n) => n.toLowerCase().startsWith(word));
    return [hits, m[1]!];
  }
  const cmd = findCommand(line.split(/[\s,]/)[0]!);
  if (!cmd) return [[], line];
  const lastSep = Math.max(line.lastIndexOf(','), cmd.restIsName ? line.indexOf(' ') : line.lastIndexOf(' '));
  const word = line.slice(lastSep + 1);
  const pool = cmd.name === 'LISTR' ? candidates.peers.map((p) => p.replace(/:(\d+)$/, ',$1')) : cmd.name === 'help' ? COMMANDS.map((c) => c.name) : candidates.names;
  return [pool.filter((c) => c.toLowerCase().startsWith(word.toLowerCase())).slice(0, 200), word];
}
