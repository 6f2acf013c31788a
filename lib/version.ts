/** The package version, read once from package.json (two levels above dist/lib). */
import { readFileSync } from 'node:fs';
import { packageJsonUrl } from './paths.js';

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(packageJsonUrl(), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export const VERSION = readVersion();
