// Compiles the TypeScript sources to dist/ and copies the generated protobuf codec beside them.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync } from 'node:fs';

execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
mkdirSync('dist/src/onnx/generated', { recursive: true });
cpSync('src/onnx/generated/onnx.js', 'dist/src/onnx/generated/onnx.js');
