/**
 * Free page reporting, a virtual machine's way of giving free memory back to its host
 * (virtio-balloon): every free block of 2^page_reporting_order pages is reported and taken back,
 * and the next time the guest touches such a page the host faults it in, which the guest counts
 * as its own kernel time. On the bench machine writing 1 GiB into the page cache cost 1.2-1.9
 * kernel CPU s with pages that had been free for a few seconds, 0.18 with pages reused at once:
 * for every tool alike, and more than most of the work a bench measures. `holdFreePages()` turns
 * reporting off for the rest of the run (an order above the largest: no block is ever that big),
 * says so, and puts the old value back when the process exits (Ctrl-C included). Root only; a
 * machine without the knob is left alone.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const KNOB = '/sys/module/page_reporting/parameters/page_reporting_order';
/** Larger than any buddy order (MAX_PAGE_ORDER is 10 on x86-64 with 4 KiB pages). */
const NEVER = 11;

/** Turn free page reporting off until exit. Returns a note for the report, or null when there is nothing to do. */
export function holdFreePages(): string | null {
  let old: string;
  try {
    old = readFileSync(KNOB, 'utf8').trim();
  } catch {
    return null; // not a VM with free page reporting
  }
  if (Number(old) >= NEVER) return `free page reporting was already off (${KNOB} = ${old})`;
  try {
    writeFileSync(KNOB, String(NEVER));
  } catch (err) {
    return `free page reporting left on: ${(err as Error).message} (pages the host took back cost kernel time when touched again)`;
  }
  process.on('exit', () => {
    try {
      writeFileSync(KNOB, old);
    } catch {
      // nothing more can be done; the value is the kernel's, not a file of ours
    }
  });
  return `free page reporting off for this run (${KNOB}: ${old} -> ${NEVER}, restored at exit): pages written are not faulted in by the host first`;
}
