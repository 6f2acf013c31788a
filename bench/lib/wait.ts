/**
 * Bounded waits for the benches, all abortable with an AbortSignal (Ctrl-C): `sleep`, `waitUntil`
 * (polling where no event exists, with a deadline), `within` (a promise or a fallback after a
 * time). `Aborted` is what an aborted wait throws.
 */

export class Aborted extends Error {
  constructor() {
    super('interrupted');
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Aborted());
    const onAbort = () => {
      clearTimeout(t);
      reject(new Aborted());
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Poll `cond` every `intervalMs` until it is true (resolves true) or `timeoutMs` passed (false). */
export async function waitUntil(cond: () => boolean | Promise<boolean>, opts: { timeoutMs: number; intervalMs?: number; signal?: AbortSignal | undefined }): Promise<boolean> {
  const end = performance.now() + opts.timeoutMs;
  for (;;) {
    if (opts.signal?.aborted) throw new Aborted();
    if (await cond()) return true;
    if (performance.now() >= end) return false;
    await sleep(Math.min(opts.intervalMs ?? 100, Math.max(1, end - performance.now())), opts.signal);
  }
}

/** Resolve with `p`, or with `fallback` after `ms`. */
export function within<T, F>(p: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<F>((r) => (t = setTimeout(() => r(fallback), ms)))]).finally(() => clearTimeout(t));
}

/** Throw Aborted when `signal` has fired: called between rounds so a Ctrl-C ends a bench soon. */
export function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new Aborted();
}
