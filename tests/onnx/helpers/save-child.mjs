// Child process for tests/onnx/atomic.test.ts: saves a large model to argv[2] (sync or async save) so the
// parent can kill it mid-write. Mode 'deferred' first writes the model to argv[2] + '.src', loads it back with
// its payload left in that file (as convert does) and saves it asynchronously: the weights are copied from
// file to file while the parent kills it. Runs over dist/ (npm run build first).
import { writeFileSync } from 'node:fs';
import { onnx, Long } from '../../../dist/src/onnx/codec.js';
import { loadModelAsync } from '../../../dist/src/onnx/load.js';
import { saveModel, saveModelAsync } from '../../../dist/src/onnx/save.js';

const [target, mode = 'sync', megabytes = '200'] = process.argv.slice(2);
const n = Number(megabytes) * (1 << 20) / 4;
const raw = new Uint8Array(n * 4);
for (let i = 0; i < raw.length; i += 4096) raw[i] = i & 0xff;
const model = onnx.ModelProto.create({
  irVersion: Long.fromNumber(8),
  opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: Long.fromNumber(17) })],
  graph: onnx.GraphProto.create({
    name: 'big',
    node: [onnx.NodeProto.create({ opType: 'Identity', input: ['w'], output: ['y'], name: 'id' })],
    initializer: [onnx.TensorProto.create({ name: 'w', dims: [Long.fromNumber(n)], dataType: 1, rawData: raw })],
    output: [onnx.ValueInfoProto.create({ name: 'y' })],
  }),
});
if (mode === 'deferred') {
  writeFileSync(`${target}.src`, onnx.ModelProto.encode(model).finish());
  const loaded = await loadModelAsync(`${target}.src`, { deferPayloads: { minFileBytes: 0 } });
  process.stdout.write('saving\n');
  await saveModelAsync(loaded.proto, target, { external: loaded.external });
  loaded.external.close();
} else {
  process.stdout.write('saving\n');
  if (mode === 'async') await saveModelAsync(model, target);
  else saveModel(model, target);
}
process.stdout.write('saved\n');
