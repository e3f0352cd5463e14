// Preloaded into each benchmarked child (`node --import ./bench/convert/trace-io.mjs ...`): counts, per
// file, the opens and bytes read through node:fs (sync and callback APIs, readFileSync, read streams'
// fs.read), the largest single read, and at exit writes them with peak RSS (process.resourceUsage().maxRSS)
// and the kernel's I/O counters (/proc/self/io) to the JSON file named by ATTNPASS_TRACE_OUT.
// It lets the benchmark prove that a conversion with `--external-data reference` never reads the
// external data file and that `copy` streams it in bounded chunks.
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { resolve } from 'node:path';

const out = process.env.ATTNPASS_TRACE_OUT;
if (out) {
  const fdPath = new Map();
  const files = new Map();
  const entry = (path) => {
    let e = files.get(path);
    if (!e) files.set(path, (e = { opens: 0, reads: 0, bytesRead: 0, maxRead: 0 }));
    return e;
  };
  const count = (fd, n) => {
    const path = fdPath.get(fd) ?? `fd:${fd}`;
    const e = entry(path);
    e.reads++;
    e.bytesRead += n;
    if (n > e.maxRead) e.maxRead = n;
  };
  const { openSync, readSync, closeSync, readFileSync, open, read, close } = fs;
  fs.openSync = function (path, ...rest) {
    const fd = openSync.call(this, path, ...rest);
    if (typeof path === 'string') {
      fdPath.set(fd, resolve(path));
      entry(resolve(path)).opens++;
    }
    return fd;
  };
  fs.readSync = function (fd, ...rest) {
    const n = readSync.call(this, fd, ...rest);
    count(fd, n);
    return n;
  };
  fs.closeSync = function (fd) {
    fdPath.delete(fd);
    return closeSync.call(this, fd);
  };
  fs.readFileSync = function (path, ...rest) {
    const data = readFileSync.call(this, path, ...rest);
    if (typeof path === 'string') {
      const e = entry(resolve(path));
      e.opens++;
      e.reads++;
      e.bytesRead += data.length;
      e.maxRead = Math.max(e.maxRead, data.length);
    }
    return data;
  };
  fs.open = function (path, ...rest) {
    const cb = rest.pop();
    return open.call(this, path, ...rest, (err, fd) => {
      if (!err && typeof path === 'string') {
        fdPath.set(fd, resolve(path));
        entry(resolve(path)).opens++;
      }
      cb(err, fd);
    });
  };
  fs.read = function (fd, ...rest) {
    const cb = rest.pop();
    return read.call(this, fd, ...rest, (err, n, buf) => {
      if (!err) count(fd, n);
      cb(err, n, buf);
    });
  };
  fs.close = function (fd, cb) {
    fdPath.delete(fd);
    return close.call(this, fd, cb);
  };
  syncBuiltinESMExports();

  process.once('exit', () => {
    let io = {};
    try {
      for (const line of readFileSync.call(fs, '/proc/self/io', 'utf8').split('\n')) {
        const [k, v] = line.split(':');
        if (k && v) io[k.trim()] = Number(v.trim());
      }
    } catch {
      io = {};
    }
    const record = {
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      io,
      files: Object.fromEntries([...files].filter(([p]) => !p.includes('/node_modules/') && !p.endsWith('.js') && !p.endsWith('.json') && !p.startsWith('/proc/'))),
    };
    fs.writeFileSync(out, JSON.stringify(record));
  });
}
