// `attnpass calibrate` (node bin/attnpass.js, after `npm run build`): a run writes the model and the JSON
// report and prints the per-layer table; mistakes get one paragraph that names the fix and no output.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, REPO, tmp } from '../onnx/models.js';

const built = existsSync(join(REPO, 'dist/bin/commands/calibrate.js'));
const LLAMA = 'fixtures/models/llama-gqa-dynamo/model.onnx';

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: REPO, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(!built)('attnpass calibrate', () => {
  it('writes the model and the report, and prints one row per layer', () => {
    const dir = tmp('attnpass-calibrate-cli-');
    const out = join(dir, 'cal.onnx');
    const report = join(dir, 'cal.json');
    const r = cli(['calibrate', LLAMA, '-o', out, '--pass', 'ast', '--target-error', '0.01', '--random-tokens', '--seq-len', '64', '--windows', '1', '--densities', '0.5', '--report', report]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/layer\s+density\s+rel\. FLOPs\s+error alone/);
    expect(r.stdout).toMatch(/per layer \(the operators' settings are per node/);
    expect(existsSync(out)).toBe(true);
    const json = JSON.parse(readFileSync(report, 'utf8'));
    expect(json.layers.map((l: { layer: number }) => l.layer)).toEqual([0, 1]);
    expect(json.combined.error).toBeLessThanOrEqual(0.01);
  });

  it.each([
    [['--pass', 'ast'], /--target-error/, 2],
    [['--target-error', '0.1'], /no evaluation text: give --text FILE/, 2],
    [['--target-error', '0.1', '--text', 'fixtures/models/llama-gqa-dynamo/meta.json', '--seq-len', '2048', '--windows', '9'], /asked for 9\. Ask for fewer windows or a shorter --seq-len/, 2],
    [['--target-error', '0.1', '--text', 'missing.bin'], /'missing.bin' does not exist/, 1],
  ] as Array<[string[], RegExp, number]>)('%j fails with a message that names the fix', (extra, message, status) => {
    const out = join(tmp('attnpass-calibrate-cli-'), 'never.onnx');
    const r = cli(['calibrate', LLAMA, '-o', out, ...extra]);
    expect(r.stderr).toMatch(message);
    expect(r.status).toBe(status);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
    expect(existsSync(out)).toBe(false);
  });
});
