/**
 * Event log (seed 003's log.log): one line per event, "ISO-time event key=value ...", appended to
 * a file when one is given. Components take a `Log` function and never know where lines go. A
 * value that is not one plain word is written as a JSON string with every control and format
 * character escaped (text.ts): a peer's bytes never reach the file raw.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { hasUnsafeText, jsonQuoted } from './text.js';

export type LogFields = Record<string, string | number | boolean | undefined | null>;
export type Log = (event: string, fields?: LogFields) => void;

export const noLog: Log = () => {};

export function formatLogLine(event: string, fields: LogFields = {}, now = new Date()): string {
  const parts = [now.toISOString(), event];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    const s = String(v);
    // values may come from the network (a refused name): quoted, with control and format
    // characters escaped, whenever they are not one plain word
    parts.push(`${k}=${/[\s"=\\]/.test(s) || s === '' || hasUnsafeText(s) ? jsonQuoted(s) : s}`);
  }
  return parts.join(' ');
}

export interface FileLog {
  log: Log;
  close(): Promise<void>;
}

export function openLogFile(file: string): FileLog {
  const stream: WriteStream = createWriteStream(file, { flags: 'a' });
  stream.on('error', () => {}); // a log that cannot be written must not take the server down
  return {
    log: (event, fields) => {
      stream.write(formatLogLine(event, fields) + '\n');
    },
    close: () => new Promise((resolve) => stream.end(resolve)),
  };
}
