// Child process for tests/onnx/atomic.test.ts: saves a large model to argv[2] (sync or async save) so the
// parent can kill it mid-write. Runs over dist/ (npm run build first).
import { onnx, Long } from '../../../dist/src/onnx/codec.js';
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
process.stdout.write('saving\n');
if (mode === 'async') await saveModelAsync(model, target);
else saveModel(model, target);
process.stdout.write('saved\n');
