/**
 * Output is atomic: a save that fails or is killed leaves the previous output (or none) intact.
 *
 * - error during the write: temporary files removed, previous output untouched.
 * - SIGINT during saveModelAsync (what the CLI uses): stopped before the rename; temporary file removed,
 *   previous output intact, exit code 130.
 * - SIGINT during the synchronous saveModel: Node runs signal handlers only between event-loop turns, so
 *   the save completes and renames first; then the process exits 130, or 0 when it had nothing left to do
 *   (the pending signal is never delivered). Either way the output is the complete new model and no
 *   temporary file is left. Hence the CLI should use saveModelAsync.
 * - SIGKILL: nothing can clean up. The previous output is intact, and the temporary file
 *   (.attnpass-tmp-<pid>-…) is the one leftover (documented in src/onnx/atomic.ts).
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AtomicFile, writeAtomically } from '../../src/onnx/atomic.js';
import { saveModel } from '../../src/onnx/save.js';
import { loadModel } from '../../src/onnx/load.js';
import { attentionModel, REPO, tmp } from './models.js';

const CHILD = join(import.meta.dirname, 'helpers', 'save-child.mjs');
const built = existsSync(join(REPO, 'dist/src/onnx/save.js'));
const PREVIOUS = 'previous output\n';

function temps(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.startsWith('.attnpass-tmp-'));
}

/** Starts the child, waits until its temporary file has bytes in it, sends `signal`; resolves with the exit. */
function killMidWrite(dir: string, mode: 'sync' | 'async' | 'deferred', signal: NodeJS.Signals, megabytes = 256): Promise<{ code: number | null; signal: string | null; sawTemp: number; stdout: string }> {
  const target = join(dir, 'model.onnx');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, target, mode, String(megabytes)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    let sawTemp = 0;
    const poll = setInterval(() => {
      const t = temps(dir)[0];
      if (!t) return;
      let size = 0;
      try {
        size = statSync(join(dir, t)).size;
      } catch {
        return;
      }
      if (size > 0 && !sawTemp) {
        sawTemp = size;
        child.kill(signal);
      }
    }, 1);
    child.on('error', reject);
    child.on('exit', (code, sig) => {
      clearInterval(poll);
      if (stderr && !/^\s*$/.test(stderr) && code !== 130) reject(new Error(stderr));
      else resolve({ code, signal: sig, sawTemp, stdout });
    });
  });
}

describe.skipIf(!built)('a save killed mid-write (child process over dist/)', () => {
  it('SIGKILL: the previous output is intact; the temporary file is the only leftover', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'model.onnx'), PREVIOUS);
    const r = await killMidWrite(dir, 'sync', 'SIGKILL');
    expect(r.signal).toBe('SIGKILL');
    expect(r.sawTemp).toBeGreaterThan(0);
    expect(readFileSync(join(dir, 'model.onnx'), 'utf8')).toBe(PREVIOUS);
    const left = temps(dir);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^\.attnpass-tmp-\d+-\w+-model\.onnx$/);
    expect(readdirSync(dir).sort()).toEqual([left[0], 'model.onnx'].sort());
  });

  it('SIGKILL with no previous output: no model.onnx appears', async () => {
    const dir = tmp();
    const r = await killMidWrite(dir, 'sync', 'SIGKILL');
    expect(r.signal).toBe('SIGKILL');
    expect(existsSync(join(dir, 'model.onnx'))).toBe(false);
  });

  it('SIGINT during saveModelAsync: stopped before the rename, temporary file removed, exit 130', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'model.onnx'), PREVIOUS);
    const r = await killMidWrite(dir, 'async', 'SIGINT');
    expect(r.sawTemp).toBeGreaterThan(0);
    expect(r.code).toBe(130);
    expect(r.stdout).not.toContain('saved');
    expect(readFileSync(join(dir, 'model.onnx'), 'utf8')).toBe(PREVIOUS);
    expect(temps(dir)).toEqual([]);
  });

  it('SIGTERM during saveModelAsync: same as SIGINT, exit 143', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'model.onnx'), PREVIOUS);
    const r = await killMidWrite(dir, 'async', 'SIGTERM');
    expect(r.code).toBe(143);
    expect(readFileSync(join(dir, 'model.onnx'), 'utf8')).toBe(PREVIOUS);
    expect(temps(dir)).toEqual([]);
  });

  it('SIGINT while weights are copied from the input file (a model loaded as convert loads it): same as saveModelAsync', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'model.onnx'), PREVIOUS);
    const r = await killMidWrite(dir, 'deferred', 'SIGINT');
    expect(r.sawTemp).toBeGreaterThan(0);
    expect(r.code).toBe(130);
    expect(r.stdout).not.toContain('saved');
    expect(readFileSync(join(dir, 'model.onnx'), 'utf8')).toBe(PREVIOUS);
    expect(temps(dir)).toEqual([]);
  });

  it('SIGKILL while weights are copied from the input file: the previous output is intact', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'model.onnx'), PREVIOUS);
    const r = await killMidWrite(dir, 'deferred', 'SIGKILL');
    expect(r.signal).toBe('SIGKILL');
    expect(readFileSync(join(dir, 'model.onnx'), 'utf8')).toBe(PREVIOUS);
    expect(temps(dir)).toHaveLength(1);
  });

  it('SIGINT during the synchronous saveModel: completes first (exit 0 or 130); never partial, no temporary file', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'model.onnx'), PREVIOUS);
    const r = await killMidWrite(dir, 'sync', 'SIGINT', 64);
    expect([0, 130]).toContain(r.code);
    expect(temps(dir)).toEqual([]);
    const out = readFileSync(join(dir, 'model.onnx'));
    // either the previous output or the complete new model, never a partial file
    if (out.toString('utf8') !== PREVIOUS) expect(loadModel(join(dir, 'model.onnx')).proto.graph!.initializer![0]!.rawData!.length).toBe(64 << 20);
  });
});

describe('in-process failures', () => {
  it('an error while writing removes the temporary files and keeps the previous output', () => {
    const dir = tmp();
    const target = join(dir, 'model.onnx');
    writeFileSync(target, PREVIOUS);
    const a = new AtomicFile(join(dir, 'model.onnx.data'));
    const b = new AtomicFile(target);
    expect(() =>
      writeAtomically([a, b], () => {
        a.write(new Uint8Array(100));
        b.write(new Uint8Array(100));
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(readFileSync(target, 'utf8')).toBe(PREVIOUS);
    expect(readdirSync(dir)).toEqual(['model.onnx']);
  });

  it('a successful save replaces the previous output in one rename and leaves nothing else', () => {
    const dir = tmp();
    const target = join(dir, 'model.onnx');
    writeFileSync(target, PREVIOUS);
    saveModel(attentionModel(), target);
    expect(loadModel(target).proto.graph!.name).toBe('attention_block');
    expect(readdirSync(dir)).toEqual(['model.onnx']);
  });

  it('two files for one target in the same millisecond get distinct temporary names', () => {
    const dir = tmp();
    const a = new AtomicFile(join(dir, 'x.onnx'));
    const b = new AtomicFile(join(dir, 'x.onnx'));
    expect(a.tempPath).not.toBe(b.tempPath);
    a.abort();
    b.abort();
    expect(readdirSync(dir)).toEqual([]);
  });
});
