/**
 * The transport alone: fetch a file from swarm serve peers and only count the bytes (no copy,
 * checksum, hash or write). `node dist/bench/lib/raw-receive.js NAME host:port...` prints
 * {"seconds", "bytes"} and exits non-zero unless it counted exactly the file's size. It is the
 * floor for `swarm get` on the same peers.
 */
import { FramedClient } from '../../lib/net/framed-client.js';
import { PeerClient } from '../../lib/peer/client.js';
import { chunksOf } from '../../lib/manifest.js';
import { parseHostPort } from '../../lib/net/framed-client.js';

const [name, ...peers] = process.argv.slice(2);
const addrs = peers.map((p) => parseHostPort(p, 7070));
const pc = new PeerClient(addrs[0]!.host, addrs[0]!.port);
await pc.connect();
const entry = await pc.stat(name!);
const m = await pc.manifest(entry.cid);
pc.destroy();
const chunks = chunksOf(m);
const per = Math.ceil(chunks / addrs.length);
const t0 = process.hrtime.bigint();
let total = 0;
// one contiguous range per peer; with more peers than chunks, the last ones have none (an empty
// range is not a request a peer accepts)
const ranges = addrs.map((a, i) => ({ a, from: i * per, to: Math.min(chunks, (i + 1) * per) })).filter((r) => r.from < r.to);
await Promise.all(
  ranges.map(
    ({ a, from, to }) =>
      new Promise<void>((resolve, reject) => {
        const c = new FramedClient(a.host, a.port, {
          side: 'peerReply',
          handler: {
            onPacket(h) {
              total += h.length;
            },
            onMessage(msg) {
              if (msg.t === 'done') {
                c.destroy();
                resolve();
              }
            },
            onClose(err) {
              if (err) reject(err);
            },
          },
        });
        c.connect().then(() => c.write({ t: 'get', id: 1, cid: m.cid, from, to }), reject);
      }),
  ),
);
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
if (total !== m.size) throw new Error(`received ${total} of ${m.size} bytes`);
console.log(JSON.stringify({ seconds: secs, bytes: total }));
