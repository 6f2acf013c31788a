/** Temporary folders outside any tap fixture, removed at teardown. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type tap from 'tap';

export type TestLike = Pick<typeof tap, 'testdir' | 'teardown'>;

export function tempDir(t: Pick<TestLike, 'teardown'>, prefix = 'swarm-test-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
