/**
 * A short-lived client of a peer (LISTR, name lookups, manifests); data transfer lives in the peer
 * worker. Every answer is checked: listings element by element (bad entries dropped and counted),
 * manifests against the content id they were asked for.
 */
import { FramedClient, type ClientHandler, type FramedClientOptions } from '../net/framed-client.js';
import { checkFiles, fileProblem, toFileInfo, type Dropped } from '../protocol/entries.js';
import { ERROR_CODES, SwarmError } from '../errors.js';
import { manifestFromWire, type Manifest } from '../manifest.js';
import type { FileInfo } from '../types.js';

/** Most pages a listing follows (1,000 files each): a peer cannot keep us listing forever. */
const MAX_LIST_PAGES = 1_000;

export class PeerClient extends FramedClient<'peerReply'> {
  constructor(host: string, port: number, opts: Omit<FramedClientOptions<'peerReply'>, 'side'> & { handler?: ClientHandler<'peerReply'> } = {}) {
    super(host, port, { ...opts, side: 'peerReply' });
  }

  /** Every file the peer shares, following pages. */
  async list(): Promise<{ files: FileInfo[]; dropped: Dropped[] }> {
    const files: FileInfo[] = [];
    const dropped: Dropped[] = [];
    let after: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const { message } = await this.request({ t: 'list', ...(after !== undefined ? { after } : {}) }, 'files');
      const c = checkFiles(message.files);
      files.push(...c.ok);
      dropped.push(...c.dropped);
      if (message.next === undefined || message.next === after) return { files, dropped };
      after = message.next;
    }
    throw new SwarmError(ERROR_CODES.LIMIT, `${this.address} lists more than ${MAX_LIST_PAGES} pages`);
  }

  /** What the peer shares under `name`. */
  async stat(name: string, timeoutMs?: number): Promise<FileInfo> {
    const { message } = await this.request({ t: 'stat', name }, 'entry', timeoutMs);
    const problem = fileProblem(message);
    if (problem) throw new SwarmError(ERROR_CODES.BAD_MESSAGE, `${this.address} described ${name} badly: ${problem}`);
    if (message.name !== name) throw new SwarmError(ERROR_CODES.BAD_MESSAGE, `${this.address} answered for another name`);
    return toFileInfo(message as unknown as Record<string, unknown>);
  }

  /** The manifest of content `cid`, accepted only if it hashes to `cid`. */
  async manifest(cid: string, timeoutMs = 30_000): Promise<Manifest> {
    const { message, body } = await this.request({ t: 'manifest', cid }, 'manifest-ok', timeoutMs);
    return manifestFromWire(message, body, cid);
  }
}

export { parseHostPort } from '../net/framed-client.js';
