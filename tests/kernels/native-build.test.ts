// CI has no GPU but has nvcc and cmake: every CUDA source must compile for sm_90a, and the CPU
// custom-op library must build against the ONNX Runtime headers (fetched from the npm registry).
// Where a tool is missing the test says so and is skipped; on the project's machines both are present.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

describe('native code', () => {
  it.skipIf(!has('nvcc'))('every kernels/cuda/*.cu and bench/kernels/*.cu compiles for sm_90a', () => {
    const r = spawnSync('bash', [join(root, 'kernels', 'cuda', 'check-compile.sh')], { encoding: 'utf8' });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/ok\s+bsa\.cu/);
    expect(r.stdout).toMatch(/ok\s+read_floor\.cu/);
  }, 900_000);

  it.skipIf(!has('cmake') || !has('g++'))('the CPU custom-op library builds and exports RegisterCustomOps', () => {
    const fetch = spawnSync('bash', [join(root, 'kernels', 'ort', 'fetch-ort.sh')], { encoding: 'utf8' });
    expect(fetch.status, fetch.stderr).toBe(0);
    const build = mkdtempSync(join(tmpdir(), 'attnpass-ort-'));
    try {
      const configure = spawnSync('cmake', ['-S', join(root, 'kernels', 'ort'), '-B', build, '-DATTNPASS_CUDA=OFF'], { encoding: 'utf8' });
      expect(configure.status, configure.stderr).toBe(0);
      const make = spawnSync('cmake', ['--build', build, '-j', '2'], { encoding: 'utf8' });
      expect(make.status, make.stderr).toBe(0);
      const lib = join(build, 'libattnpass_ort.so');
      expect(existsSync(lib)).toBe(true);
      const symbols = spawnSync('nm', ['-D', '--defined-only', lib], { encoding: 'utf8' });
      expect(symbols.stdout).toMatch(/RegisterCustomOps/);
    } finally {
      rmSync(build, { recursive: true, force: true });
    }
  }, 600_000);
});
