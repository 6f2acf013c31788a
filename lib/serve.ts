/**
 * `serve(dir, options)`: share a folder. A SwarmNode (node/node.ts) with a library: scan and hash
 * the folder, answer peers, register with a tracker (an external one, or one it embeds when none
 * is given and none runs locally), and adopt what downloads finish inside it.
 */
import { SwarmNode, type NodeOptions } from './node/node.js';
import type { Library } from './share/library.js';

export type ServeOptions = Omit<NodeOptions, 'share'>;

/** A serving node: its library is always there. */
export type ServeHandle = SwarmNode & { library: Library };

export async function serve(dir: string, opts: ServeOptions = {}): Promise<ServeHandle> {
  return (await SwarmNode.start({ ...opts, share: dir })) as ServeHandle;
}
