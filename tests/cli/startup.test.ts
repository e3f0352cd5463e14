// Commands that never run a model must not pay for loading onnxruntime-node's native binding at start-up:
// every module the CLI imports statically must leave it out (verify, calibrate and report load it on use).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const main = join(root, 'dist', 'bin', 'main.js');

function loadsOrt(modulePath: string): boolean {
  const script = `
    import { createRequire } from 'node:module';
    const require = createRequire(import.meta.url);
    await import(${JSON.stringify(pathToFileURL(modulePath).href)});
    process.stdout.write(String(Object.keys(require.cache).some((k) => k.includes('onnxruntime-node'))));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout === 'true';
}

describe.skipIf(!existsSync(main))('CLI start-up', () => {
  it('the check sees onnxruntime-node when a module does load it', () => {
    expect(loadsOrt(join(root, 'dist', 'src', 'verify', 'index.js'))).toBe(true);
  });

  it('importing the CLI (every command definition) does not load onnxruntime-node', () => {
    expect(loadsOrt(main)).toBe(false);
  });
});
