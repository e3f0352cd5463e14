// Regenerates src/onnx/generated/onnx.{js,d.ts} from the pinned schema src/onnx/schema/onnx-ml.proto
// (ONNX 1.23.1, IR version 14). Run after changing the schema: npm run codegen
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';

const schema = 'src/onnx/schema/onnx-ml.proto';
const outDir = 'src/onnx/generated';
mkdirSync(outDir, { recursive: true });
const bin = (name) => `node_modules/.bin/${name}`;
execFileSync(bin('pbjs'), ['-t', 'static-module', '-w', 'es6', '--force-long', '--no-verify', '--no-convert',
  '--no-delimited', '-o', `${outDir}/onnx.js`, schema], { stdio: 'inherit' });
// Node's ESM loader needs the file extension on the runtime import.
const js = readFileSync(`${outDir}/onnx.js`, 'utf8').replace('from "protobufjs/minimal"', 'from "protobufjs/minimal.js"');
writeFileSync(`${outDir}/onnx.js`, js);
execFileSync(bin('pbts'), ['-o', `${outDir}/onnx.d.ts`, `${outDir}/onnx.js`], { stdio: 'inherit' });
