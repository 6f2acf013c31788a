import t from 'tap';
import { formatLogLine } from '../lib/log.js';
import { printable } from '../lib/text.js';

const at = new Date('2026-11-26T12:00:00.000Z');

t.test('plain values are written bare, others quoted', async (t) => {
  t.equal(formatLogLine('peer-connected', { peer: '127.0.0.1:9', n: 3, ok: true, gone: undefined }, at), '2026-11-26T12:00:00.000Z peer-connected peer=127.0.0.1:9 n=3 ok=true');
  t.equal(formatLogLine('x', { name: 'a b', empty: '', q: 'say "hi"', eq: 'a=b' }, at), '2026-11-26T12:00:00.000Z x name="a b" empty="" q="say \\"hi\\"" eq="a=b"');
});

t.test('control and format characters from the network never reach the line raw', async (t) => {
  const hostile = ['\u001b]0;owned\u0007', '\u009b2J', 'evil\u202egpj.exe', 'a\u2028b', 'zero\u200bwidth', 'back\\slash', '\u0085next', '\u0000nul'];
  for (const name of hostile) {
    const line = formatLogLine('legacy-file-request-failed', { name }, at);
    t.notMatch(line, /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/, `${printable(name)}: no raw control or format character`);
    const value = line.slice(line.indexOf('name=') + 5);
    t.equal(JSON.parse(value), name, `${printable(name)}: the value reads back as JSON`);
  }
});

t.test('printable escapes what a terminal would act on, and backslashes so escapes cannot be faked', async (t) => {
  t.equal(printable('a\u001b[2Jb'), 'a\\x1b[2Jb');
  t.equal(printable('\u009b'), '\\x9b');
  t.equal(printable('x\u202ey'), 'x\\u{202e}y');
  t.equal(printable('\\x1b'), '\\\\x1b');
  t.equal(printable('ñandú.jpg'), 'ñandú.jpg');
});
