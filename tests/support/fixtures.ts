/** The real-exporter fixtures under fixtures/models/<name>/ (model.onnx, meta.json, io.json). */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ExpectedSite {
  layer: number;
  kind: 'self' | 'cross';
  causal: boolean;
  heads: number;
  kvHeads: number;
  headDim: number;
  scale: number;
  slidingWindow?: number | null;
  op?: string;
}

export interface FixtureMeta {
  name: string;
  family: string;
  exporter: string;
  kind: string;
  expected_sites: ExpectedSite[];
}

export interface Fixture {
  name: string;
  dir: string;
  model: string;
  io: string;
  meta: FixtureMeta;
}

export const FIXTURE_ROOT = join(import.meta.dirname, '..', '..', 'fixtures', 'models');

export function fixtures(): Fixture[] {
  if (!existsSync(FIXTURE_ROOT)) return [];
  return readdirSync(FIXTURE_ROOT)
    .filter((name) => existsSync(join(FIXTURE_ROOT, name, 'model.onnx')) && existsSync(join(FIXTURE_ROOT, name, 'meta.json')))
    .sort()
    .map((name) => {
      const dir = join(FIXTURE_ROOT, name);
      return { name, dir, model: join(dir, 'model.onnx'), io: join(dir, 'io.json'), meta: JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as FixtureMeta };
    });
}
