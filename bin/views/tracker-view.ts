/**
 * What a long-running peer (`serve`, `sync`) says about its tracker link: registered (and what the
 * tracker refused), or lost, once per change rather than at every retry, as a line or a `tracker`
 * event. A sync whose tracker's host stopped used to say nothing, and members it had met kept
 * going while a newcomer found no one.
 */
import type { ServeHandle } from '../../lib/index.js';
import { count, printable } from '../format.js';

export type Say = (text: string, event: Record<string, unknown>) => void;

/** The tracker part of the start line: embedded, joined, or not reachable yet. */
export function trackerText(handle: ServeHandle): string {
  const t = handle.tracker;
  if (!t) return 'no tracker';
  return `${t.embedded ? 'embedded tracker on' : 'tracker'} ${t.address}${t.client.connected ? '' : ' (not reachable yet, retrying)'}`;
}

/** Say every change of `handle`'s tracker link. */
export function sayTrackerChanges(handle: ServeHandle, say: Say): void {
  let last = '';
  handle.on('tracker', (s) => {
    const text = s.connected
      ? `tracker ${s.address}: registered${s.dropped?.length ? ` (${count(s.dropped.length, 'file')} refused by the tracker; first: ${printable(s.dropped[0]!.what)}: ${printable(s.dropped[0]!.reason)})` : ''}`
      : `tracker ${s.address}: ${printable(s.message ?? 'disconnected')}`;
    if (text === last) return;
    last = text;
    say(s.connected ? text : `${text} (retrying every few seconds; said again when it changes)`, {
      event: 'tracker',
      tracker: s.address,
      connected: s.connected,
      embedded: s.embedded,
      ...(s.message !== undefined ? { message: s.message } : {}),
      ...(s.dropped?.length ? { dropped: s.dropped.map((d) => ({ name: d.what, reason: d.reason })) } : {}),
    });
  });
}
