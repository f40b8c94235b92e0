import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Writes a whole file atomically: a temporary file in the same folder, fsync, then rename, so a
 * reader (or a resumed run after kill -9) sees either the old content or the new one, never half.
 * `fsync: false` keeps the atomic rename but skips the flush to disk (about 7 ms here): for files
 * whose loss in a power cut costs nothing but a rerun.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, options: { fsync?: boolean } = {}): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    if (options.fsync !== false) fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

export function writeJsonAtomic(path: string, value: unknown, options: { fsync?: boolean } = {}): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, options);
}

/**
 * Appends one line with a single write(2) on an O_APPEND descriptor. On a local file system such a
 * write lands whole and is never interleaved with another process's line, which is what lets
 * several worker processes share one metrics.jsonl. A line cut short by kill -9 has no newline and
 * is dropped by the readers (see `readJsonLines`).
 */
export function appendLine(path: string, line: string): void {
  if (line.includes('\n')) throw new Error(`appendLine(${path}): a line must not contain a newline`);
  const fd = openSync(path, 'a');
  try {
    const bytes = Buffer.from(`${line}\n`, 'utf8');
    const written = writeSync(fd, bytes, 0, bytes.length);
    if (written !== bytes.length) throw new Error(`appendLine(${path}): short write (${written} of ${bytes.length} bytes)`);
  } finally {
    closeSync(fd);
  }
}

/** Flushes a file's data to disk (no-op when it does not exist). */
export function fsyncFile(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
