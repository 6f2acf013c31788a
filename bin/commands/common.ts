/** Option parsers and signal handling shared by the commands. */
import { InvalidArgumentError } from 'commander';
import { SwarmError, ERROR_CODES } from '../../lib/errors.js';

export function intOption(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
}

/** A TCP port: 0 (any free one) to 65535. */
export function portOption(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number, 0 to 65535');
  return n;
}

/** `--seed` alone (until Ctrl-C) or `--seed SECONDS` (a positive number). */
export function seedOption(v: string | undefined): number | true {
  if (v === undefined) return true;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a number of seconds above 0');
  return n;
}

export function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

/**
 * Wait for Ctrl-C (SIGINT) or SIGTERM, run `graceful`; a second signal during it runs `force`
 * and rejects with INTERRUPTED. Resolves when `graceful` finishes.
 */
export function onInterrupt(graceful: () => Promise<void>, force: () => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    let stopping = false;
    const handler = () => {
      if (!stopping) {
        stopping = true;
        graceful().then(() => {
          process.off('SIGINT', handler);
          process.off('SIGTERM', handler);
          resolve();
        }, reject);
        return;
      }
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      force().finally(() => reject(new SwarmError(ERROR_CODES.INTERRUPTED, 'stopped at once (second interrupt)')));
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}
