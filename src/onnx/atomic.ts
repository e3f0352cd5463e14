/**
 * Atomic file output: everything is written to temporary files in the target folder and renamed into
 * place only once complete, so a failed or interrupted write never leaves a partial file behind.
 *
 * What an interruption leaves:
 * - an error or exception during the write: the temporary files are removed; the previous output (or
 *   none) is untouched.
 * - SIGINT / SIGTERM / SIGHUP: the temporary files are removed and the process exits with 128 + signal
 *   (when attnpass's handler is the only listener; otherwise the host's listeners decide). Node delivers
 *   signals only between turns of the event loop, so a synchronous `saveModel` finishes (and renames)
 *   first; `saveModelAsync` yields between chunks and is stopped mid-write, before the rename.
 * - SIGKILL (or a power cut): nothing can run. The previous output is intact (it is only ever replaced by
 *   rename), and the temporary file `.attnpass-tmp-<pid>-<stamp>-<name>` beside it is the one leftover;
 *   delete it by hand.
 */
import { closeSync, fdatasync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { AttnpassError, fail } from '../errors.js';

const live = new Set<AtomicFile>();
let cleanupInstalled = false;

const SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;

/** Removes every temporary file still being written (the process is going away). */
function removeLive(): void {
  for (const f of live) f.abort();
  live.clear();
}

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.once('exit', removeLive);
  for (const signal of Object.keys(SIGNALS) as Array<keyof typeof SIGNALS>) {
    const onSignal = (): void => {
      removeLive();
      // when someone else listens too, let them decide what the signal means; otherwise behave as Node's default would
      if (process.listenerCount(signal) > 1) return;
      process.exit(128 + SIGNALS[signal]);
    };
    process.on(signal, onSignal);
  }
}

/**
 * Bytes per write(2) call. The kernel sizes page-cache folios by the length of a write: one 8 MiB call
 * asks for 2 MiB folios, which must come from high-order free memory. Where that memory is cold — on VMs
 * with free page reporting (Firecracker, this benchmark machine) the host has taken those blocks back and
 * every page faults in again — writing 650 MB took 1.9 s in 8 MiB calls and 0.22 s in 128 KiB calls; on
 * other machines the smaller calls cost a few thousand more system calls (~20 ms per GB). cp writes 128 KiB
 * at a time too.
 */
export const WRITE_CALL_BYTES = 128 << 10;

let counter = 0;
export function temporaryPathFor(target: string): string {
  return join(dirname(target), `.attnpass-tmp-${process.pid}-${Date.now().toString(36)}${(counter++).toString(36)}-${basename(target)}`);
}

/** Temporary files are named with this prefix (a leftover after SIGKILL can be recognised by it). */
export const TEMP_PREFIX = '.attnpass-tmp-';

/** A file being written: write chunks, then `rename()` moves it into place, or `abort()` removes it. */
export class AtomicFile {
  readonly tempPath: string;
  private fd: number;
  private position = 0;
  /** a write-back started by `flushInBackground` and not yet finished */
  private flushing: Promise<void> | undefined;
  /** what a background write-back failed with: reported by the close, as the final fsync may not see it again */
  private flushError: NodeJS.ErrnoException | undefined;

  constructor(readonly target: string) {
    installCleanup();
    this.tempPath = temporaryPathFor(target);
    try {
      this.fd = openSync(this.tempPath, 'wx', 0o644);
    } catch (err) {
      fail('io', `cannot write in ${dirname(target)} (${(err as NodeJS.ErrnoException).code}): check that the folder exists and is writable.`, err);
    }
    live.add(this);
  }

  get bytesWritten(): number {
    return this.position;
  }

  write(chunk: Uint8Array): void {
    let done = 0;
    try {
      while (done < chunk.length) done += writeSync(this.fd, chunk, done, Math.min(chunk.length - done, WRITE_CALL_BYTES), this.position + done);
    } catch (err) {
      fail('io', `writing ${this.target} failed (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); nothing was written there. Check the free space and permissions of ${dirname(this.target)}.`, err);
    }
    this.position += chunk.length;
  }

  /**
   * Like `write`, in slices, letting the event loop run between them (so a signal can stop a long write),
   * with the disk writing back in the background meanwhile.
   */
  async writeAsync(chunk: Uint8Array, slice = 8 << 20): Promise<void> {
    for (let at = 0; at < chunk.length; at += slice) {
      this.write(chunk.subarray(at, Math.min(chunk.length, at + slice)));
      this.flushInBackground();
      await new Promise<void>((resolveTurn) => setImmediate(resolveTurn));
      if (this.fd < 0) fail('io', `writing ${this.target} was interrupted; nothing was written there.`);
    }
  }

  /**
   * Starts writing what the file holds so far to disk on libuv's thread pool (unless that is still running
   * from an earlier call), so that the disk works while more is written and the final fsync has little
   * left to do. Only for files closed with `closeAsync()`, which waits for it.
   */
  flushInBackground(): void {
    if (this.flushing || this.fd < 0) return;
    this.flushing = new Promise((done) => {
      fdatasync(this.fd, (err) => {
        if (err) this.flushError ??= err;
        this.flushing = undefined;
        done();
      });
    });
  }

  /** Flushes and closes; the temporary file stays until `rename()`. */
  close(): void {
    if (this.fd < 0) return;
    try {
      if (this.flushError) throw this.flushError;
      fsyncSync(this.fd);
    } catch (err) {
      fail('io', `flushing ${this.target} failed (${(err as NodeJS.ErrnoException).code}); nothing was written there.`, err);
    } finally {
      closeSync(this.fd);
      this.fd = -1;
    }
  }

  /** `close()` once a background write-back has finished (it uses the file descriptor). */
  async closeAsync(): Promise<void> {
    await this.flushing;
    this.close();
  }

  rename(): void {
    this.close();
    try {
      renameSync(this.tempPath, this.target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      fail('io', `cannot replace ${this.target} (${code})${code === 'EISDIR' ? ': it is a folder' : ''}. Choose another output path.`, err);
    }
    live.delete(this);
  }

  abort(): void {
    if (this.fd >= 0) {
      try {
        closeSync(this.fd);
      } catch {
        // already closed
      }
    }
    this.fd = -1;
    rmSync(this.tempPath, { force: true });
    live.delete(this);
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
  renameAll(files);
}

/** `writeAtomically` for a fill that yields to the event loop (see `AtomicFile.writeAsync`). */
export async function writeAtomicallyAsync(files: AtomicFile[], fill: () => Promise<void>): Promise<void> {
  try {
    await fill();
    for (const f of files) await f.closeAsync();
    // one more turn of the event loop: a signal that arrived during the flush stops us before the rename
    await new Promise<void>((resolveTurn) => setImmediate(resolveTurn));
    if (files.some((f) => !live.has(f))) fail('io', `writing ${files[files.length - 1]!.target} was interrupted; nothing was written there.`);
  } catch (err) {
    for (const f of files) f.abort();
    throw err;
  }
  renameAll(files);
}

function renameAll(files: AtomicFile[]): void {
  let renamed = 0;
  try {
    for (const f of files) {
      f.rename();
      renamed++;
    }
  } catch (err) {
    for (const f of files.slice(renamed)) f.abort();
    if (err instanceof AttnpassError) throw err;
    fail('io', `renaming the output into place failed: ${(err as Error).message}`, err);
  }
}
