/** A client of a peer's `swarm serve` (LISTR, manifests); data transfer lives in the peer worker. */
import { FramedClient, type PeerClientHandler } from '../net/framed-client.js';
import type { FileInfo, Manifest } from '../types.js';
import type { Hasher } from '../hashing.js';
import { manifestFromWire } from '../manifest.js';

export class PeerClient extends FramedClient {
  constructor(host: string, port: number, handler: PeerClientHandler = {}, timeoutMs = 10_000) {
    super(host, port, handler, timeoutMs, 'peerReply');
  }

  async list(): Promise<FileInfo[]> {
    const { header } = await this.request({ t: 'list' });
    return header.files as FileInfo[];
  }

  /** Fetch and check a manifest; `expectCid` is what the directory says the content is. */
  async manifest(hasher: Hasher, name: string, expectCid?: string): Promise<Manifest> {
    const { header, body } = await this.request({ t: 'manifest', name }, 30_000);
    return manifestFromWire(hasher, header as unknown as Parameters<typeof manifestFromWire>[1], body, expectCid);
  }
}

export { parseHostPort } from '../net/framed-client.js';
