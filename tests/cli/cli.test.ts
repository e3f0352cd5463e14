/**
 * The CLI (node bin/attnpass.js, after `npm run build`): a good model is inspected; bad input — not ONNX,
 * truncated, missing external data, external data leaving the model's folder — gets one clear paragraph
 * naming the file and the field, a non-zero exit code, no stack trace, and no output file.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { onnx, type ModelProto } from '../../src/onnx/codec.js';
import { attentionModel, CLI, encode, F32, REPO, tmp, writeModel } from '../onnx/models.js';

const built = existsSync(join(REPO, 'dist/bin/main.js'));

function cli(args: string[], cwd = REPO): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** attention model with its float weights in weights.bin; `location` for Wq only. */
function externalModel(dir: string, location: string): string {
  const m: ModelProto = attentionModel();
  const chunks: Uint8Array[] = [];
  let offset = 0;
  m.graph!.initializer = m.graph!.initializer!.map((t) => {
    if (t.dataType !== F32) return t;
    const entry = (key: string, value: string) => onnx.StringStringEntryProto.create({ key, value });
    const ext = onnx.TensorProto.create({
      name: t.name,
      dims: t.dims,
      dataType: t.dataType,
      dataLocation: 1,
      externalData: [entry('location', t.name === 'Wq' ? location : 'weights.bin'), entry('offset', String(offset)), entry('length', String(t.rawData!.length))],
    });
    chunks.push(t.rawData!);
    offset += t.rawData!.length;
    return ext;
  });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'weights.bin'), Buffer.concat(chunks));
  return writeModel(dir, 'model.onnx', m);
}

let hasConvert = false;
beforeAll(() => {
  if (built) hasConvert = /\bconvert\b/.test(cli(['--help']).stdout);
});

describe.skipIf(!built)('attnpass inspect', () => {
  it('summarises a good model (text and --json)', () => {
    const path = writeModel(tmp(), 'model.onnx', attentionModel({ mask: true }));
    const text = cli(['inspect', path]);
    expect(text.status).toBe(0);
    expect(text.stderr).toBe('');
    expect(text.stdout).toMatch(/ir version\s+8/);
    expect(text.stdout).toMatch(/x: float32 \[batch, seq, 16\]/);
    expect(text.stdout).toMatch(/Softmax\s+1/);
    const json = cli(['inspect', path, '--json']);
    expect(json.status).toBe(0);
    const parsed = JSON.parse(json.stdout) as { irVersion: number; nodes: number; opHistogram: Record<string, number> };
    expect(parsed.irVersion).toBe(8);
    expect(parsed.opHistogram.MatMul).toBe(6);
  });

  it('reads external data beside the model', () => {
    const path = externalModel(tmp(), 'weights.bin');
    const r = cli(['inspect', path]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/initializers 6 \(.* embedded, 4\.00 KiB external\)/);
    expect(r.stdout).toMatch(/external\s+weights\.bin/);
  });
});

const bad: Array<[string, (dir: string) => string, RegExp]> = [
  ['not ONNX (a text file)', (dir) => (writeFileSync(join(dir, 'notes.onnx'), 'hello\n'), join(dir, 'notes.onnx')), /notes\.onnx: .*(not an ONNX model|truncated|damaged|no 'graph' field)/],
  ['not ONNX (an empty file)', (dir) => (writeFileSync(join(dir, 'empty.onnx'), ''), join(dir, 'empty.onnx')), /empty\.onnx: the file is empty, not an ONNX model/],
  [
    'truncated',
    (dir) => {
      const bytes = encode(attentionModel());
      writeFileSync(join(dir, 'cut.onnx'), bytes.subarray(0, 2500));
      return join(dir, 'cut.onnx');
    },
    /cut\.onnx: the file is truncated \(2500 bytes\) at byte \d+, in field graph\.initializer\[\d\]\.raw_data: the file ends inside 'raw_data'/,
  ],
  ['a missing external data file', (dir) => externalModel(dir, 'missing.bin'), /model\.onnx: the model is not valid.*\n- tensor 'Wq': external_data location 'missing\.bin' does not exist/],
  ['external data leaving the folder (..)', (dir) => externalModel(dir, '../weights.bin'), /model\.onnx: the model is not valid.*\n- tensor 'Wq': external_data location '\.\.\/weights\.bin' has a '\.\.' segment and would leave the model's folder/],
  ['external data at an absolute path', (dir) => externalModel(dir, '/etc/hosts'), /tensor 'Wq': external_data location '\/etc\/hosts' is an absolute path/],
  ['a model that does not exist', (dir) => join(dir, 'nothing.onnx'), /nothing\.onnx: cannot open the model \(no such file\)/],
];

describe.skipIf(!built)('bad input', () => {
  for (const [what, make, message] of bad) {
    it(`${what}: inspect exits 1 with the message, no stack trace`, () => {
      const dir = tmp();
      const path = make(dir);
      const before = readdirSync(dir).sort();
      const r = cli(['inspect', path]);
      expect(r.status).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^attnpass: /);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(readdirSync(dir).sort()).toEqual(before);
    });

    it(`${what}: convert exits non-zero and writes no output (when the CLI has convert)`, () => {
      if (!hasConvert) return;
      const dir = tmp();
      const path = make(dir);
      const out = join(tmp(), 'out');
      mkdirSync(out);
      const r = cli(['convert', path, '-o', join(out, 'converted.onnx')]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(readdirSync(out)).toEqual([]);
    });
  }
});

describe.skipIf(!built)('usage', () => {
  it('an unknown command exits 2 with a hint', () => {
    const r = cli(['inspekt', 'x.onnx']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/attnpass --help/);
  });

  it('a missing argument exits 2', () => {
    const r = cli(['inspect']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/Not enough non-option arguments|model/);
  });

  it('--help lists inspect', () => {
    const r = cli(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/inspect <model>/);
  });
});
