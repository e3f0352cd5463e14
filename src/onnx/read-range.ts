/**
 * Reading a byte range of an open file in full: read(2) may return fewer bytes than asked, and one call
 * takes at most 2 GiB. Each caller decides what a short count (the file ended first) means.
 */
import { read, readSync } from 'node:fs';

/** bytes asked of one read call */
const MAX_CALL = 1 << 30;

/** Reads `length` bytes at file `offset` into `out` at `at`; returns how many the file held (fewer only at its end). */
export function readRange(fd: number, out: Uint8Array, at: number, length: number, offset: number): number {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, at + done, Math.min(length - done, MAX_CALL), offset + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** `readRange` on libuv's thread pool. */
export async function readRangeAsync(fd: number, out: Uint8Array, at: number, length: number, offset: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const n = await new Promise<number>((resolveRead, rejectRead) => {
      read(fd, out, at + done, Math.min(length - done, MAX_CALL), offset + done, (err, bytes) => (err ? rejectRead(err) : resolveRead(bytes)));
    });
    if (n === 0) break;
    done += n;
  }
  return done;
}
