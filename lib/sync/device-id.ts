/**
 * The device id of a synced folder: 16 hex digits made once per folder and kept in
 * DIR/.swarm/device-id, so a conflict copy (`NAME.sync-conflict-…-DEVICEID.EXT`, its first 7
 * digits) names the same device across restarts (a hello peer id is new in every process).
 * A file that is not a device id (damaged, edited) is replaced by a new one.
 */
import { randomBytes } from 'node:crypto';
import { rename } from 'node:fs/promises';
import { createOnce, readState, stateFile } from './state-file.js';

export const DEVICE_ID_FILE = 'device-id';
const DEVICE_ID = /^[0-9a-f]{16}$/;

export async function deviceIdOf(root: string): Promise<string> {
  const file = stateFile(root, DEVICE_ID_FILE);
  for (let i = 0; i < 3; i++) {
    const text = (await readState(file))?.trim();
    if (text !== undefined && DEVICE_ID.test(text)) return text;
    // not a device id: set aside (never destroyed), then made again
    if (text !== undefined) await rename(file, `${file}.bad-${Date.now()}`).catch(() => {});
    await createOnce(file, randomBytes(8).toString('hex') + '\n');
  }
  throw new Error(`cannot make ${file}`);
}
