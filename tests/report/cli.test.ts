// `attnpass report` from the command line (in process): writes the page and its pictures; a wrong
// model gets a usage error that names the fix, and no page.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { run } from '../../bin/main.js';
import { FIXTURE_ROOT } from '../support/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'attnpass-report-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const model = join(FIXTURE_ROOT, 'llama-gqa-dynamo', 'model.onnx');

describe('attnpass report', () => {
  it('writes the page and its pictures', async () => {
    const rewritten = join(work, 'ast.onnx');
    expect(await run(['convert', model, '-o', rewritten, '--pass', 'ast', '--block-size', '16', '--quiet'])).toBe(0);
    const html = join(work, 'out', 'page.html');
    expect(await run(['report', model, rewritten, '-o', html, '--seq-len', '48', '--windows', '1', '--no-sweep', '--quiet'])).toBe(0);
    expect(existsSync(html)).toBe(true);
    expect(readdirSync(join(work, 'out', 'page-files'))).toHaveLength(8); // 2 layers × 4 heads
  });

  it('refuses a rewritten model without attnpass operators, naming the fix', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const html = join(work, 'bad.html');
      expect(await run(['report', model, model, '-o', html, '--seq-len', '32', '--no-sweep', '--quiet'])).toBe(2);
      expect(String(stderr.mock.calls.map((c) => c[0]).join(''))).toMatch(/no ai\.attnpass operator.*attnpass convert/);
      expect(existsSync(html)).toBe(false);
    } finally {
      stderr.mockRestore();
    }
  });
});
