/**
 * Text from the network made safe to show: names and messages that peers and trackers send reach
 * terminals (bin/) and log files (log.ts), and a hostile one may carry escape sequences that move a
 * cursor, retitle a window, ring a bell or reorder what a reader sees. This module owns the one
 * list of characters that are never written raw and the two ways they are escaped.
 */

// C0 and C1 controls, DEL, U+2028/2029, and the bidi/zero-width/BOM format characters
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'g');
/** The unsafe characters and the backslash (escaped so that an escape cannot be faked). */
const UNSAFE_OR_BACKSLASH = new RegExp(`[\\\\${UNSAFE.source.slice(1, -1)}]`, 'g');

/**
 * A string from the network made safe for a terminal: C0 and C1 control characters (ESC, CSI,
 * OSC introducers, BEL, backspace...), DEL, the Unicode line and paragraph separators (U+2028,
 * U+2029: a line break to some terminals and log tools), and the format characters that reorder or
 * hide text (bidi embeddings, overrides and isolates, marks, zero-width joiners, BOM) are shown as
 * \xNN or \u{NNNN} escapes, and a backslash as \\ so an escape cannot be faked. Every name that
 * came from a peer or a tracker goes through this before it is printed.
 */
export function printable(s: string): string {
  return s.replace(UNSAFE_OR_BACKSLASH, (c) => {
    if (c === '\\') return '\\\\';
    const code = c.codePointAt(0)!;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

/** True when `s` holds a character that must not be written raw. */
export function hasUnsafeText(s: string): boolean {
  return UNSAFE.test(s);
}

/**
 * `s` as a JSON string literal with every unsafe character escaped as \uNNNN (JSON.stringify
 * escapes C0 controls only, and leaves C1 controls and the format characters raw).
 */
export function jsonQuoted(s: string): string {
  return JSON.stringify(s).replace(UNSAFE_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
