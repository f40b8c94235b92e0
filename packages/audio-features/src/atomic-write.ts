import { randomBytes } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';

/**
 * A temporary name beside `path`: same folder, so the final rename stays on one file system and is
 * atomic; pid + random suffix, so concurrent writers of the same path never share a temporary file.
 */
function temporaryPathFor(path: string): string {
  return `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
}

/** Writes `bytes` to `path` so that readers see the old file or the whole new one, never a part. */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const temporary = temporaryPathFor(path);
  try {
    await writeFile(temporary, bytes);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/** `writeFileAtomic` without the promise, for callers whose work around the write is synchronous. */
export function writeFileAtomicSync(path: string, bytes: Uint8Array): void {
  const temporary = temporaryPathFor(path);
  try {
    writeFileSync(temporary, bytes);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}
