/** What `attnpass inspect` reports about a model. */
import { elementType } from './onnx/dtype.js';
import { externalDataRef, isExternal } from './onnx/external.js';
import { allInitializers } from './onnx/save.js';
import { deferredPayload } from './onnx/payload.js';
import { tensorByteLength } from './onnx/tensor.js';
import type { Dim, Value } from './ir/graph.js';
import type { Model } from './ir/model.js';
import { toNumber } from './onnx/codec.js';

export interface TensorSummary {
  name: string;
  type: string;
  shape: Array<number | string | null> | null;
}

export interface ModelSummary {
  path: string | null;
  irVersion: number;
  producer: string;
  opsets: Record<string, number>;
  inputs: TensorSummary[];
  outputs: TensorSummary[];
  nodes: number;
  opHistogram: Record<string, number>;
  functions: string[];
  initializers: { count: number; embeddedBytes: number; externalBytes: number };
  externalDataFiles: string[];
}

export function summarizeValue(v: Value): TensorSummary {
  return {
    name: v.name,
    type: v.type ? elementType(v.type.elemType).name : 'unknown',
    shape: v.type?.shape ? v.type.shape.map((d: Dim) => (d === undefined ? null : d)) : null,
  };
}

export function formatShape(shape: TensorSummary['shape']): string {
  return shape ? `[${shape.map((d) => (d === null ? '?' : d)).join(', ')}]` : '[?]';
}

export function summarizeModel(model: Model): ModelSummary {
  const histogram: Record<string, number> = {};
  let nodes = 0;
  for (const n of model.graph.allNodes()) {
    nodes++;
    const key = n.domain ? `${n.domain}.${n.opType}` : n.opType;
    histogram[key] = (histogram[key] ?? 0) + 1;
  }
  const inits = allInitializers(model.proto);
  let embeddedBytes = 0;
  let externalBytes = 0;
  const files = new Set<string>();
  for (const t of inits) {
    if (isExternal(t)) {
      externalBytes += tensorByteLength(t);
      files.add(externalDataRef(t).location);
    } else {
      embeddedBytes += deferredPayload(t)?.length ?? t.rawData?.length ?? tensorByteLength(t);
    }
  }
  const sorted = Object.fromEntries(Object.entries(histogram).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
  return {
    path: model.path ?? null,
    irVersion: model.irVersion,
    producer: [model.proto.producerName, model.proto.producerVersion].filter(Boolean).join(' '),
    opsets: Object.fromEntries([...model.opsets].map(([d, v]) => [d || 'ai.onnx', v])),
    inputs: model.graph.inputs.filter((v) => !v.initializer).map(summarizeValue),
    outputs: model.graph.outputs.map(summarizeValue),
    nodes,
    opHistogram: sorted,
    functions: model.functions.map((f) => `${f.domain}.${f.name}`),
    initializers: { count: inits.length, embeddedBytes, externalBytes },
    externalDataFiles: [...files],
  };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function formatSummary(s: ModelSummary): string {
  const lines: string[] = [];
  lines.push(`model        ${s.path ?? '<bytes>'}`);
  lines.push(`ir version   ${s.irVersion}${s.producer ? `   producer ${s.producer}` : ''}`);
  lines.push(`opsets       ${Object.entries(s.opsets).map(([d, v]) => `${d} ${v}`).join(', ')}`);
  lines.push('inputs');
  for (const t of s.inputs) lines.push(`  ${t.name}: ${t.type} ${formatShape(t.shape)}`);
  lines.push('outputs');
  for (const t of s.outputs) lines.push(`  ${t.name}: ${t.type} ${formatShape(t.shape)}`);
  lines.push(`initializers ${s.initializers.count} (${formatBytes(s.initializers.embeddedBytes)} embedded, ${formatBytes(s.initializers.externalBytes)} external)`);
  if (s.externalDataFiles.length) lines.push(`external     ${s.externalDataFiles.join(', ')}`);
  if (s.functions.length) lines.push(`functions    ${s.functions.join(', ')}`);
  lines.push(`nodes        ${s.nodes}`);
  const ops = Object.entries(s.opHistogram);
  const width = Math.max(...ops.map(([k]) => k.length), 4);
  for (const [op, count] of ops) lines.push(`  ${op.padEnd(width)} ${String(count).padStart(5)}`);
  return lines.join('\n');
}

export { toNumber };
