import { mkdtempSync, rmdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/**
 * Bad input from the user rather than a failure of the run: an invalid parameter, override, config
 * file, experiment file or backend choice, or a folder that is not a run. `lab` exits with code 2 on
 * these and with code 1 on anything else, so the class (not the wording of a message) decides.
 */
export class InputError extends Error {
  override name = 'InputError';
}

function kindOf(path: string): 'file' | 'folder' | 'other' | undefined {
  try {
    const stat = statSync(path);
    return stat.isFile() ? 'file' : stat.isDirectory() ? 'folder' : 'other';
  } catch {
    return undefined;
  }
}

/**
 * Checks that a path given on the command line is an existing file, before any work: the error names
 * the option, the path and what was expected (`expected` describes the file, e.g. "a CSV file").
 */
export function checkFileOption(option: string, path: string, expected: string): void {
  const kind = kindOf(path);
  if (kind === 'file') return;
  if (kind === undefined) throw new InputError(`${option}: ${path} does not exist; expected ${expected}`);
  throw new InputError(`${option}: ${path} is ${kind === 'folder' ? 'a folder' : 'not a regular file'}; expected ${expected}`);
}

/** Checks that a path given on the command line is an existing folder (`expected` describes it). */
export function checkFolderOption(option: string, path: string, expected: string): void {
  const kind = kindOf(path);
  if (kind === 'folder') return;
  if (kind === undefined) throw new InputError(`${option}: ${path} does not exist; expected ${expected}`);
  throw new InputError(`${option}: ${path} is ${kind === 'file' ? 'a file' : 'not a folder'}; expected ${expected}`);
}

/** Creates and removes an empty folder inside `dir`: the only test of writability that holds for root and read-only mounts alike. */
function probeWritable(dir: string): NodeJS.ErrnoException | undefined {
  try {
    rmdirSync(mkdtempSync(join(dir, '.write-test-')));
    return undefined;
  } catch (error) {
    return error as NodeJS.ErrnoException;
  }
}

function reason(error: NodeJS.ErrnoException): string {
  return error.code ? `${error.code}: ${ERRNO_TEXT[error.code] ?? error.message}` : error.message;
}

/** Why `path` is not a folder this process can write in or create (creating nothing), or undefined. */
function writableFolderProblem(path: string): string | undefined {
  const full = resolve(path);
  const kind = kindOf(full);
  if (kind !== undefined) {
    if (kind !== 'folder') return `${path} is ${kind === 'file' ? 'a file' : 'not a folder'}`;
    const failure = probeWritable(full);
    return failure ? `cannot write in ${path} (${reason(failure)})` : undefined;
  }
  let ancestor = dirname(full);
  while (kindOf(ancestor) === undefined && dirname(ancestor) !== ancestor) ancestor = dirname(ancestor);
  const ancestorKind = kindOf(ancestor);
  if (ancestorKind !== 'folder') return `cannot create ${path}: ${ancestor} is ${ancestorKind === 'file' ? 'a file' : 'not a folder'}`;
  const failure = probeWritable(ancestor);
  return failure ? `cannot create ${path}: ${ancestor} is not writable (${reason(failure)})` : undefined;
}

/**
 * Checks, before any work, that `path` is a folder the process can write in, or one it can create
 * (its nearest existing ancestor is a writable folder). Creates nothing. `expected` says what the
 * folder is for, e.g. "a folder for the run folders".
 */
export function checkWritableFolderOption(option: string, path: string, expected: string): void {
  const problem = writableFolderProblem(path);
  if (problem) throw new InputError(`${option}: ${problem}; expected ${expected} that this user can write in (created if absent)`);
}

/**
 * Checks that `path` can be written as a file: not a folder, and its folder exists as a writable folder
 * or can be created.
 */
export function checkWritableFileOption(option: string, path: string, expected: string): void {
  const kind = kindOf(path);
  if (kind === 'folder') throw new InputError(`${option}: ${path} is a folder; expected ${expected}`);
  if (kind === 'other') throw new InputError(`${option}: ${path} is not a regular file; expected ${expected}`);
  const problem = writableFolderProblem(dirname(resolve(path)));
  if (problem) throw new InputError(`${option}: cannot write ${path}: ${problem}; expected ${expected} in a folder this user can write in (created if absent)`);
}

/** Plain words for the file-system errors a full, read-only or foreign disk gives. */
const ERRNO_TEXT: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'is a folder, not a file',
  EEXIST: 'already exists',
  EMFILE: 'too many open files',
};

/**
 * A file-system error as one line that names where it happened. Node's messages for failed writes
 * through a descriptor carry no path ("ENOSPC: no space left on device, write"), so `where` (the
 * folder or file being written) is added whenever the message does not already contain it; other
 * errors are returned as their message.
 */
export function describeFileError(error: unknown, where: string): string {
  const e = error as NodeJS.ErrnoException;
  const message = e instanceof Error ? e.message : String(error);
  const code = typeof e?.code === 'string' ? e.code : /\b(E[A-Z]{3,})\b/.exec(message)?.[1];
  if (!code || !(code in ERRNO_TEXT)) return message;
  const path = typeof e?.path === 'string' ? e.path : undefined;
  // Node quotes the path it failed on ("ENOENT: no such file or directory, open '/data/x.wav'").
  if ((path && message.includes(path)) || message.includes(where) || /'[^']*[/\\][^']*'/.test(message)) return message;
  return `${where}: ${ERRNO_TEXT[code]} (${message})`;
}

/**
 * cac reads `--workers -1` as two flags and reports "Unknown option `-1`"; glued (`--workers=-1`),
 * the value reaches the option's own check, which names the option and what it expects.
 */
export function glueNegativeOptionValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const next = argv[i + 1];
    if (/^--[a-z][a-z-]*$/.test(argv[i]) && next !== undefined && /^-\d/.test(next)) out.push(`${argv[i]}=${argv[++i]}`);
    else out.push(argv[i]);
  }
  return out;
}
