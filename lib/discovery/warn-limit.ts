/**
 * Rate-limited warnings: at most one per kind per period, so a flood (of datagrams, of bad
 * peers) cannot flood the terminal or a log file; the next one that goes out says how many were
 * held back meanwhile. The message is built only when it goes out. Monotonic clock.
 */
export class WarnLimit {
  private readonly last = new Map<string, { atMono: number; heldBack: number }>();

  constructor(
    private readonly everyMs: number,
    private readonly emit: (kind: string, text: string) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  warn(kind: string, message: () => string): void {
    const t = this.now();
    const w = this.last.get(kind);
    if (w && t - w.atMono < this.everyMs) {
      w.heldBack++;
      return;
    }
    const text = message() + (w?.heldBack ? ` (${w.heldBack} similar since the last warning)` : '');
    this.last.set(kind, { atMono: t, heldBack: 0 });
    this.emit(kind, text);
  }
}
