/**
 * Atomic file output: everything is written to temporary files in the target folder and renamed into
 * place only once complete, so a failed or interrupted write never leaves a partial file behind.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fail } from '../errors.js';

const live = new Set<string>();
let cleanupInstalled = false;

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  const cleanup = () => {
    for (const path of live) rmSync(path, { force: true });
    live.clear();
  };
  process.once('exit', cleanup);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanup();
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }
}

export function temporaryPathFor(target: string): string {
  return join(dirname(target), `.attnpass-tmp-${process.pid}-${Date.now().toString(36)}-${basename(target)}`);
}

/** A file being written: write chunks, then `commit()` renames it into place, or `abort()`. */
export class AtomicFile {
  readonly tempPath: string;
  private fd: number;
  private position = 0;

  constructor(readonly target: string) {
    installCleanup();
    this.tempPath = temporaryPathFor(target);
    try {
      this.fd = openSync(this.tempPath, 'wx', 0o644);
    } catch (err) {
      fail('io', `cannot write in ${dirname(target)} (${(err as NodeJS.ErrnoException).code}): check that the folder exists and is writable.`, err);
    }
    live.add(this.tempPath);
  }

  get bytesWritten(): number {
    return this.position;
  }

  write(chunk: Uint8Array): void {
    let done = 0;
    while (done < chunk.length) done += writeSync(this.fd, chunk, done, chunk.length - done, this.position + done);
    this.position += chunk.length;
  }

  /** Flushes and closes; the temporary file stays until `rename()`. */
  close(): void {
    if (this.fd < 0) return;
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
  }

  rename(): void {
    this.close();
    renameSync(this.tempPath, this.target);
    live.delete(this.tempPath);
  }

  abort(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    rmSync(this.tempPath, { force: true });
    live.delete(this.tempPath);
  }
}

/** Writes several files so that either all appear (renamed in order) or none does. */
export function writeAtomically(files: AtomicFile[], fill: () => void): void {
  try {
    fill();
    for (const f of files) f.close();
  } catch (err) {
    for (const f of files) f.abort();
    throw err;
  }
  for (const f of files) f.rename();
}
