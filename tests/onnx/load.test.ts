/**
 * Loading: anything that is not a complete ONNX model is refused with a message that names the file, the
 * field where decoding stopped (with its byte offset) and what to do. And the wire-layout table the
 * messages rely on matches the pinned schema.
 */
import { describe, expect, it } from 'vitest';
import protobuf from 'protobufjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../../src/onnx/load.js';
import { locateDecodeFailure } from '../../src/onnx/wire.js';
import { WIRE_SCHEMA } from '../../src/onnx/wire-schema.js';
import { AttnpassError } from '../../src/errors.js';
import { Long, onnx } from '../../src/onnx/codec.js';
import { attentionModel, encode, REPO, tmp } from './models.js';

function loadError(source: string | Uint8Array): AttnpassError {
  try {
    loadModel(source);
  } catch (err) {
    expect(err).toBeInstanceOf(AttnpassError);
    return err as AttnpassError;
  }
  throw new Error('expected loadModel to fail');
}

describe('wire schema table', () => {
  it('matches src/onnx/schema/onnx-ml.proto field for field', () => {
    const root = new protobuf.Root().loadSync(join(REPO, 'src/onnx/schema/onnx-ml.proto'), { keepCase: true });
    root.resolveAll();
    const table: Record<string, Record<number, unknown[]>> = {};
    const visit = (ns: protobuf.NamespaceBase): void => {
      for (const obj of ns.nestedArray) {
        if (obj instanceof protobuf.Type) {
          const fields: Record<number, unknown[]> = {};
          for (const f of obj.fieldsArray) {
            const kind = f.resolvedType instanceof protobuf.Type ? 'message' : f.resolvedType instanceof protobuf.Enum ? 'enum' : f.type;
            fields[f.id] = [f.name, kind, f.repeated ? (f.packed ? 'packed' : 'repeated') : 'optional', ...(kind === 'message' ? [f.resolvedType!.fullName.replace(/^\.onnx\./, '')] : [])];
          }
          table[obj.fullName.replace(/^\.onnx\./, '')] = fields;
        }
        if (obj instanceof protobuf.Namespace) visit(obj);
      }
    };
    visit(root);
    expect(JSON.parse(JSON.stringify(WIRE_SCHEMA))).toEqual(JSON.parse(JSON.stringify(table)));
  });
});

describe('refusing what is not a complete model', () => {
  const bytes = encode(attentionModel());

  it('empty file', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'empty.onnx'), '');
    const e = loadError(join(dir, 'empty.onnx'));
    expect(e.code).toBe('not-onnx');
    expect(e.message).toMatch(/empty\.onnx: the file is empty, not an ONNX model/);
  });

  it('missing file, folder, device', () => {
    const dir = tmp();
    expect(loadError(join(dir, 'nope.onnx')).message).toMatch(/nope\.onnx: cannot open the model \(no such file\)\. Check the path/);
    mkdirSync(join(dir, 'folder.onnx'));
    expect(loadError(join(dir, 'folder.onnx')).message).toMatch(/folder\.onnx: is a folder, not a model file/);
    expect(loadError('/dev/null').message).toMatch(/\/dev\/null: is not a regular file/);
  });

  it('truncated at several points: names the field and the byte offset', () => {
    const dir = tmp();
    const points = [5, 30, 200, 1000, Math.floor(bytes.length / 2), bytes.length - 40, bytes.length - 1];
    for (const n of points) {
      const path = join(dir, `t${n}.onnx`);
      writeFileSync(path, bytes.subarray(0, n));
      const e = loadError(path);
      expect(e.code, `cut at ${n}`).toBe('truncated');
      expect(e.message).toMatch(new RegExp(`t${n}\\.onnx: the file is truncated \\(${n} bytes\\) at byte \\d+, in field [a-z_.\\[\\]0-9]+: the file ends`));
      expect(e.message).toMatch(/Re-export or re-download the model/);
    }
  });

  it('truncation inside a weight names it', () => {
    const where = locateDecodeFailure(bytes.subarray(0, 1000));
    expect(where).toMatchObject({ path: 'graph.initializer[0].raw_data', truncated: true });
  });

  it('random bytes and text', () => {
    let s = 12345;
    const random = Uint8Array.from({ length: 4096 }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 24));
    const e1 = loadError(random);
    expect(e1.message).toMatch(/<bytes>: (not an ONNX model|the file is truncated|the file is damaged)/);
    const e2 = loadError(new TextEncoder().encode('hello, this is a text file\n'));
    expect(e2.message).toMatch(/<bytes>: (not an ONNX model|the file is truncated|the file is damaged|decodes as protobuf but has no 'graph')/);
  });

  it('a field with a wire type its schema does not allow', () => {
    // ModelProto.graph (field 7) sent as a varint
    const e = loadError(Uint8Array.from([0x08, 0x08, 0x38, 0x01]));
    expect(e.message).toMatch(/graph at byte 2 has wire type 0 where the schema says 2/);
    // NodeProto.op_type (field 4) sent as a varint inside a real model
    const m = attentionModel();
    const good = encode(m);
    const nodeBytes = onnx.NodeProto.encode(m.graph!.node![0]!).finish();
    const at = Buffer.from(good).indexOf(Buffer.from(nodeBytes));
    const opTag = Buffer.from(nodeBytes).indexOf(Buffer.from([0x22, 0x06, ...Buffer.from('MatMul')]));
    const bad = Uint8Array.from(good);
    // replace "22 06 'MatMul'" (8 bytes) by "20 05" + 6 bytes of an unknown varint field (field 15)
    bad.set([0x20, 0x05, 0x78, 0x01, 0x78, 0x01, 0x78, 0x01], at + opTag);
    expect(loadError(bad).message).toMatch(/graph\.node\[0\]\.op_type at byte \d+ has wire type 0 where the schema says 2/);
  });

  it('wire types 6 and 7 do not exist', () => {
    const e = loadError(Uint8Array.from([0x08, 0x08, 0x3f]));
    expect(e.message).toMatch(/not an ONNX model: its bytes do not decode as onnx\.ModelProto at byte 2, in field graph: 'graph' has wire type 7, which does not exist in protobuf/);
  });

  it('not a model: a bare TensorProto, no graph, unsupported IR versions', () => {
    const t = onnx.TensorProto.encode(onnx.TensorProto.create({ name: 'x', dims: [Long.fromNumber(1)], dataType: 1, rawData: new Uint8Array(4) })).finish();
    expect(loadError(t).message).toMatch(/<bytes>: (not an ONNX model|decodes as protobuf but has no 'graph'|the file is damaged)/);
    const noGraph = onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: Long.fromNumber(8) })).finish();
    expect(loadError(noGraph).message).toMatch(/no 'graph' field \(ModelProto field 7\)/);
    for (const [ir, text] of [[99, 'ir_version is 99'], [0, 'ir_version is 0'], ['4611686018427387904', 'ir_version is 4611686018427387904']] as const) {
      const m = attentionModel();
      m.irVersion = Long.fromValue(ir);
      const e = loadError(encode(m));
      expect(e.code).toBe('unsupported');
      expect(e.message).toContain(text);
    }
    const m = attentionModel();
    delete (m as { irVersion?: unknown }).irVersion;
    expect(loadError(encode(m)).message).toMatch(/ir_version is 0 \(the field is missing\)/);
  });

  it('nesting deeper than protobuf allows', () => {
    // 120 nested If subgraphs, written by hand (the encoder refuses to write them)
    const varint = (n: number): number[] => {
      const out: number[] = [];
      while (n > 127) {
        out.push((n & 127) | 128);
        n >>>= 7;
      }
      out.push(n);
      return out;
    };
    const field = (no: number, payload: number[]): number[] => [...varint((no << 3) | 2), ...varint(payload.length), ...payload];
    const text = (s: string): number[] => [...Buffer.from(s)];
    let graph: number[] = field(2, text('leaf'));
    for (let i = 0; i < 120; i++) {
      const attribute = [...field(1, text('then_branch')), 0xa0, 0x01, 0x05, ...field(6, graph)];
      const node = [...field(1, text('c')), ...field(2, text(`o${i}`)), ...field(4, text('If')), ...field(5, attribute)];
      graph = field(1, node);
    }
    const e = loadError(Uint8Array.from([0x08, 0x08, ...field(7, graph)]));
    expect(e.code).toBe('not-onnx');
    expect(e.message).toMatch(/messages are nested more than 100 deep/);
  });
});
