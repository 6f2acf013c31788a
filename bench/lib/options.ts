/**
 * The benches' one option parser. Each bench declares its options once (kind, default, one line of
 * help); `--help` prints them under the bench's usage line. An unknown option or a bad value prints
 * why, then the usage, and exits 2: a typo must not quietly run the default (hour-long)
 * configuration. Values are `--name value` or `--name=value`; a value may start with a dash
 * (`--get-args "--max-memory 96"`). Sizes are in MiB throughout (2^20 bytes).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Opt<T> {
  /** false for flags: present or not, no value */
  takesValue: boolean;
  def: T;
  help: string;
  parse(raw: string): T;
}

function number(raw: string): number {
  const x = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(x) || x < 0) throw new Error(`"${raw}" is not a number >= 0`);
  return x;
}

/** A number >= 0. */
export const num = (def: number, help: string): Opt<number> => ({ takesValue: true, def, help, parse: number });
/** A number >= 0, or null when not given. */
export const maybeNum = (help: string): Opt<number | null> => ({ takesValue: true, def: null, help, parse: number });
/** Comma-separated numbers: `1,2,4`. */
export const nums = (def: number[], help: string): Opt<number[]> => ({
  takesValue: true,
  def,
  help,
  parse: (raw) => raw.split(',').filter(Boolean).map(number),
});
export const str = (def: string, help: string): Opt<string> => ({ takesValue: true, def, help, parse: (raw) => raw });
/** Comma-separated words, each of which must be one of `allowed`. */
export function oneOf<W extends string>(allowed: readonly W[], def: W[], help: string): Opt<W[]> {
  return {
    takesValue: true,
    def,
    help: `${help} (any of ${allowed.join(', ')})`,
    parse: (raw) => {
      const ws = raw.split(',').filter(Boolean);
      for (const w of ws) if (!allowed.includes(w as W)) throw new Error(`"${w}" is not one of ${allowed.join(', ')}`);
      return ws as W[];
    },
  };
}
/** Space-separated arguments for another command, or null when not given. */
export const args = (help: string): Opt<string[] | null> => ({ takesValue: true, def: null, help, parse: (raw) => raw.split(/\s+/).filter(Boolean) });
export const flag = (help: string): Opt<boolean> => ({ takesValue: false, def: false, help, parse: () => true });

export type Values<S extends Record<string, Opt<unknown>>> = { [K in keyof S]: S[K] extends Opt<infer T> ? T : never };

export function usageText(usage: string, spec: Record<string, Opt<unknown>>): string {
  const lines = Object.entries(spec).map(([name, o]) => {
    const left = `  --${name}${o.takesValue ? ' <value>' : ''}`;
    const def = o.takesValue && o.def !== null ? ` (default: ${Array.isArray(o.def) ? o.def.join(',') : String(o.def)})` : '';
    return `${left.padEnd(32)} ${o.help}${def}`;
  });
  return `${usage}\n\noptions:\n${lines.join('\n')}\n${'  --help'.padEnd(32)} print this and exit\n`;
}

/** Parse `argv` against `spec`; exits (2 on a bad command line, 0 after --help). */
export function parseOptions<S extends Record<string, Opt<unknown>>>(usage: string, spec: S, argv = process.argv.slice(2)): Values<S> {
  const out: Record<string, unknown> = {};
  for (const [k, o] of Object.entries(spec)) out[k] = o.def;
  const fail = (why: string): never => {
    process.stderr.write(`${why}\n\n${usageText(usage, spec)}`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      process.stdout.write(usageText(usage, spec));
      process.exit(0);
    }
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/s.exec(a);
    if (!m) fail(`unexpected argument "${a}"`);
    const name = m![1]!;
    const o = spec[name];
    if (!o) fail(`unknown option --${name}`);
    let raw = m![2];
    if (o!.takesValue && raw === undefined) {
      if (i + 1 >= argv.length) fail(`--${name} needs a value`);
      raw = argv[++i]!;
    }
    if (!o!.takesValue && raw !== undefined) fail(`--${name} takes no value`);
    try {
      out[name] = o!.parse(raw ?? '');
    } catch (e) {
      fail(`--${name}: ${(e as Error).message}`);
    }
  }
  return out as Values<S>;
}

/** True when the module at `moduleUrl` is the script node was started with (not imported). */
export function isMain(moduleUrl: string): boolean {
  return !!process.argv[1] && fileURLToPath(moduleUrl) === path.resolve(process.argv[1]);
}
