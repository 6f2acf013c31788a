/**
 * The device id of a synced folder: 16 hex digits made once per folder and kept in
 * DIR/.swarm/device-id, so a conflict copy (`NAME.sync-conflict-…-DEVICEID.EXT`, its first 7
 * digits) names the same device across restarts (a hello peer id is new in every process).
 * A file that is not a device id (damaged, edited) is replaced by a new one. Sync entries name the
 * device that made their version (`maker`, plan.ts): a conflict copy of it is named after that.
 */
import { randomBytes } from 'node:crypto';
import { rename } from 'node:fs/promises';
import { createOnce, readState, stateFile } from './state-file.js';

export const DEVICE_ID_FILE = 'device-id';
const DEVICE_ID = /^[0-9a-f]{16}$/;

/** Exactly a device id (16 lowercase hex digits): what a sync entry's `maker` must be (readers.ts). */
export function isDeviceId(v: unknown): v is string {
  return typeof v === 'string' && DEVICE_ID.test(v);
}

export async function deviceIdOf(root: string): Promise<string> {
  const file = stateFile(root, DEVICE_ID_FILE);
  for (let i = 0; i < 3; i++) {
    const text = (await readState(file))?.trim();
    if (isDeviceId(text)) return text;
    // not a device id: set aside (never destroyed), then made again
    if (text !== undefined) await rename(file, `${file}.bad-${Date.now()}`).catch(() => {});
    await createOnce(file, randomBytes(8).toString('hex') + '\n');
  }
  throw new Error(`cannot make ${file}`);
}
