import t from 'tap';
import { encodePacket, decodePacketHeader, packetHeaderSum, packetChecksumOk, PACKET_HEADER_BYTES, FLAG_LAST_IN_CHUNK } from '../lib/protocol/packet.js';
import { sum16 } from '../lib/protocol/checksum.js';
import { FRAME_PREFIX_BYTES } from '../lib/constants.js';
import { SwarmError } from '../lib/errors.js';
import { prng, randomBytes } from './helpers/prng.js';

function verify(wire: Buffer): boolean {
  const raw = wire.subarray(FRAME_PREFIX_BYTES, FRAME_PREFIX_BYTES + PACKET_HEADER_BYTES);
  let h;
  try {
    h = decodePacketHeader(raw);
  } catch {
    return false; // a flipped magic/version/length bit is caught by the header checks
  }
  const payload = wire.subarray(FRAME_PREFIX_BYTES + PACKET_HEADER_BYTES);
  if (h.length !== payload.length) return false;
  return packetChecksumOk(h, packetHeaderSum(raw), sum16(payload));
}

t.test('round trip with offsets above 2^32', async (t) => {
  const payload = randomBytes(prng(1), 4099);
  for (const offset of [0, 2 ** 32 - 1, 2 ** 32, 5 * 2 ** 32 + 12345, 2 ** 52]) {
    const wire = encodePacket({ flags: FLAG_LAST_IN_CHUNK, requestId: 77, chunk: 4097, offset }, payload);
    t.equal(wire.readUInt32BE(0), 0, 'frame header length 0 marks a data packet');
    t.equal(wire.readUInt32BE(4), PACKET_HEADER_BYTES + payload.length);
    const h = decodePacketHeader(wire.subarray(FRAME_PREFIX_BYTES));
    t.same(h.offset, offset);
    t.equal(h.chunk, 4097);
    t.equal(h.requestId, 77);
    t.equal(h.flags, FLAG_LAST_IN_CHUNK);
    t.equal(h.length, payload.length);
    t.ok(verify(wire));
  }
});

t.test('every single-bit flip in header or payload is detected', async (t) => {
  const payload = randomBytes(prng(2), 300);
  const wire = encodePacket({ flags: 0, requestId: 5, chunk: 3, offset: 2 ** 33 + 8 }, payload);
  t.ok(verify(wire));
  let detected = 0;
  let total = 0;
  for (let byte = FRAME_PREFIX_BYTES; byte < wire.length; byte++) {
    for (let bit = 0; bit < 8; bit++) {
      const bad = Buffer.from(wire);
      bad[byte]! ^= 1 << bit;
      total++;
      if (!verify(bad)) detected++;
    }
  }
  t.equal(detected, total, `${total} flips, all detected`);
});

t.test('bad headers are typed errors', async (t) => {
  const wire = encodePacket({ flags: 0, requestId: 1, chunk: 0, offset: 0 }, Buffer.alloc(8));
  const raw = Buffer.from(wire.subarray(FRAME_PREFIX_BYTES));
  raw[0] = 0;
  t.throws(() => decodePacketHeader(raw), { code: 'SWARM_ERR_BAD_PACKET' });
  t.throws(() => decodePacketHeader(Buffer.alloc(10)), SwarmError);
  const huge = Buffer.from(wire.subarray(FRAME_PREFIX_BYTES));
  huge.writeUInt32BE(0xffffffff, 20);
  t.throws(() => decodePacketHeader(huge), { code: 'SWARM_ERR_FRAME_TOO_LARGE' });
  t.throws(() => encodePacket({ flags: 0, requestId: 1, chunk: 0, offset: -1 }, Buffer.alloc(1)), { code: 'SWARM_ERR_BAD_PACKET' });
});
