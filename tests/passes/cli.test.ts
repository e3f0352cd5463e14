// The README's commands, end to end through the CLI: convert a fixture, verify it, list passes, use a plugin.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtures } from '../support/fixtures.js';

const root = join(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'attnpass-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'attnpass.js'), ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  expect(existsSync(join(root, 'dist', 'bin', 'main.js')), 'run `npm run build` first').toBe(true);
});

const fixture = fixtures().find((f) => f.meta.expected_sites.length > 0 && f.meta.kind === 'decoder');

describe('convert and verify', () => {
  it("the README's first command works in a folder with no out/: it makes out/ and writes there", () => {
    const cwd = mkdtempSync(join(work, 'fresh-'));
    const r = spawnSync(process.execPath, [join(root, 'bin', 'attnpass.js'), 'convert', fixture!.model, '--quiet'], { cwd, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(readdirSync(join(cwd, 'out')).filter((f) => f.endsWith('.ast.onnx'))).toHaveLength(1);
  });

  it('converts a fixture exactly, and verify passes', () => {
    const out = join(work, 'exact.onnx');
    const c = cli('convert', fixture!.model, '-o', out, '--pass', 'ast', '--exact', '--report', join(work, 'r.json'));
    expect(c.stderr).toBe('');
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/attention sites rewritten/);
    const report = JSON.parse(readFileSync(join(work, 'r.json'), 'utf8'));
    expect(report.sitesRewritten).toBe(fixture!.meta.expected_sites.length);
    const v = cli('verify', fixture!.model, out, '--seq-lens', '9');
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/PASS/);
  });

  it('verify fails with exit code 3 when a sparse rewrite is over the tolerance', () => {
    const out = join(work, 'sparse.onnx');
    expect(cli('convert', fixture!.model, '-o', out, '--pass', 'window', '--local-window', '2', '--sink-tokens', '0').code).toBe(0);
    const v = cli('verify', fixture!.model, out, '--seq-lens', '40', '--tolerance', '1e-9');
    expect(v.code).toBe(3);
    expect(v.stderr).toMatch(/over the tolerance/);
    expect(v.stderr).not.toMatch(/\n\s+at /);
  });

  it('a failed conversion leaves no output and no temporary file', () => {
    const out = join(work, 'never.onnx');
    const c = cli('convert', join(work, 'missing.onnx'), '-o', out);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/missing\.onnx/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(work).filter((f) => f.includes('attnpass-tmp'))).toEqual([]);
  });

  it('lists passes, including a plugin’s', () => {
    const p = cli('passes', '--plugin', 'passes/examples/drop-identity.mjs');
    expect(p.code).toBe(0);
    for (const name of ['detect-attention', 'att', 'ast', 'span', 'window', 'cleanup', 'drop-identity', 'attention-summary']) expect(p.stdout).toContain(name);
  });

  it('runs a plugin pass after the rewrite', () => {
    const out = join(work, 'plugin.onnx');
    const c = cli('convert', fixture!.model, '-o', out, '--pass', 'att', '--plugin', 'passes/examples/drop-identity.mjs', '--then', 'attention-summary', '--prefix', 'L');
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/L 0: \d+ heads/);
  });

  it('--help teaches each command', () => {
    for (const cmd of ['convert', 'verify', 'inspect', 'passes']) {
      const h = cli(cmd, '--help');
      expect(h.code).toBe(0);
      expect(h.stdout.length).toBeGreaterThan(200);
    }
    expect(cli('convert', '--help').stdout).toMatch(/--density/);
  });
});
