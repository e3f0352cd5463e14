/**
 * Says where a file stops being a valid ModelProto: walks the protobuf wire format with the schema's
 * field table (wire-schema.ts) and reports the first field that cannot be read, by its path
 * (e.g. `graph.initializer[3].raw_data`) and byte offset. Only used to explain a decode failure, so it
 * favours clear answers over speed.
 */
import { WIRE_SCHEMA, type FieldSpec } from './wire-schema.js';

export interface WireProblem {
  /** dotted path of the field, e.g. "graph.node[12].attribute[0].t.raw_data" */
  path: string;
  /** byte offset of the field's tag in the file */
  offset: number;
  /** what is wrong there */
  problem: string;
  /** true when the data simply ends too early (truncated file) */
  truncated: boolean;
}

const MAX_DEPTH = 100;

class Stop extends Error {
  constructor(readonly info: WireProblem) {
    super(info.problem);
  }
}

const FIXED: Partial<Record<FieldSpec[1], number>> = { float: 4, double: 8 };

function wireTypeFor(spec: FieldSpec): number {
  switch (spec[1]) {
    case 'message':
    case 'string':
    case 'bytes':
      return 2;
    case 'float':
      return 5;
    case 'double':
      return 1;
    default:
      return 0;
  }
}

/** Finds the first unreadable field of a ModelProto, or undefined when the wire format is sound. */
export function locateDecodeFailure(bytes: Uint8Array): WireProblem | undefined {
  try {
    walk(bytes, 'ModelProto', 0, bytes.length, '', 0, bytes.length);
    return undefined;
  } catch (err) {
    if (err instanceof Stop) return err.info;
    throw err;
  }
}

function readVarint(bytes: Uint8Array, pos: number, end: number, path: string, what: string, fileEnd: number): { value: bigint; next: number } {
  // fast path: up to 4 bytes (< 2^28) with plain numbers; tags and lengths almost always fit
  let small = 0;
  for (let i = 0; i < 4 && pos + i < end; i++) {
    const b = bytes[pos + i]!;
    small |= (b & 0x7f) << (7 * i);
    if ((b & 0x80) === 0) return { value: BigInt(small >>> 0), next: pos + i + 1 };
  }
  let value = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) {
      const truncated = end === fileEnd;
      throw new Stop({ path, offset: pos, truncated, problem: truncated ? `the file ends in the middle of ${what}` : `${what} runs past the end of its enclosing message` });
    }
    const b = bytes[pos++]!;
    value |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return { value, next: pos };
    shift += 7n;
  }
  throw new Stop({ path, offset: pos, truncated: false, problem: `${what} is a varint longer than 10 bytes` });
}

function walk(bytes: Uint8Array, type: string, start: number, end: number, path: string, depth: number, fileEnd: number): void {
  if (depth > MAX_DEPTH) throw new Stop({ path, offset: start, truncated: false, problem: `messages are nested more than ${MAX_DEPTH} deep` });
  const fields = WIRE_SCHEMA[type] ?? {};
  const counts = new Map<number, number>();
  let pos = start;
  while (pos < end) {
    const tagAt = pos;
    const tag = readVarint(bytes, pos, end, path || '(top level)', 'a field tag', fileEnd);
    pos = tag.next;
    const fieldNo = Number(tag.value >> 3n);
    const wire = Number(tag.value & 7n);
    const spec = fields[fieldNo];
    const index = counts.get(fieldNo) ?? 0;
    counts.set(fieldNo, index + 1);
    const name = spec ? spec[0] : `#${fieldNo}`;
    const fieldPath = `${path ? `${path}.` : ''}${name}${spec && spec[2] !== 'optional' && spec[1] === 'message' ? `[${index}]` : ''}`;
    if (fieldNo === 0) throw new Stop({ path: path || '(top level)', offset: tagAt, truncated: false, problem: 'a field tag has field number 0, which protobuf does not allow' });
    switch (wire) {
      case 0:
        pos = readVarint(bytes, pos, end, fieldPath, `the varint value of '${name}'`, fileEnd).next;
        break;
      case 1:
      case 5: {
        const n = wire === 1 ? 8 : 4;
        if (pos + n > end) {
          const truncated = end === fileEnd;
          throw new Stop({ path: fieldPath, offset: tagAt, truncated, problem: truncated ? `the file ends inside the ${n}-byte value of '${name}'` : `the ${n}-byte value of '${name}' runs past the end of its enclosing message` });
        }
        pos += n;
        break;
      }
      case 2: {
        const len = readVarint(bytes, pos, end, fieldPath, `the length of '${name}'`, fileEnd);
        pos = len.next;
        const left = end - pos;
        if (len.value > BigInt(left)) {
          const truncated = end === fileEnd;
          // a truncated message: say which of its own fields the file ends in
          if (truncated && spec && spec[1] === 'message') walk(bytes, spec[3]!, pos, end, fieldPath, depth + 1, fileEnd);
          throw new Stop({
            path: fieldPath,
            offset: tagAt,
            truncated,
            problem: truncated
              ? `the file ends inside '${name}': it declares ${len.value} bytes but only ${left} remain`
              : `'${name}' declares ${len.value} bytes but its enclosing message has only ${left} left`,
          });
        }
        const n = Number(len.value);
        if (spec && wireTypeFor(spec) === 2 && spec[1] === 'message') walk(bytes, spec[3]!, pos, pos + n, fieldPath, depth + 1, fileEnd);
        else if (spec && spec[2] === 'packed' && FIXED[spec[1]] && n % FIXED[spec[1]]! !== 0) {
          throw new Stop({ path: fieldPath, offset: tagAt, truncated: false, problem: `packed '${name}' has ${n} bytes, not a multiple of ${FIXED[spec[1]]}` });
        }
        pos += n;
        break;
      }
      case 3:
      case 4:
        throw new Stop({ path: fieldPath, offset: tagAt, truncated: false, problem: `'${name}' uses the deprecated group encoding (wire type ${wire}), which no ONNX writer produces` });
      default:
        throw new Stop({ path: fieldPath, offset: tagAt, truncated: false, problem: `'${name}' has wire type ${wire}, which does not exist in protobuf` });
    }
  }
}

export interface WireTypeMismatch {
  path: string;
  offset: number;
  expected: number;
  found: number;
}

/**
 * Fields whose wire type disagrees with the schema (the decoder keeps them as unknown fields). It runs on
 * every load, so it reads varints as plain numbers and builds a field's path only for a mismatch.
 */
export function wireTypeMismatches(bytes: Uint8Array, limit = 5): WireTypeMismatch[] {
  const out: WireTypeMismatch[] = [];
  const varint = new VarintReader(bytes);
  const visit = (type: string, start: number, end: number, path: () => string, depth: number): void => {
    if (depth > MAX_DEPTH || out.length >= limit) return;
    const fields = WIRE_SCHEMA[type] ?? {};
    const counts: number[] = [];
    let pos = start;
    while (pos < end && out.length < limit) {
      const tagAt = pos;
      // a field that cannot be read ends this message; decode problems are reported elsewhere
      if (!varint.read(pos, end)) return;
      pos = varint.next;
      const wire = bytes[tagAt]! & 7;
      const fieldNo = (varint.value - wire) / 8;
      const spec = fields[fieldNo];
      const indexed = spec !== undefined && spec[2] !== 'optional' && spec[1] === 'message';
      const index = indexed ? (counts[fieldNo] ?? 0) : 0;
      if (indexed) counts[fieldNo] = index + 1;
      if (spec) {
        const expected = wireTypeFor(spec);
        const packedOk = wire === 2 && spec[2] !== 'optional' && spec[1] !== 'message' && spec[1] !== 'string' && spec[1] !== 'bytes';
        if (wire !== expected && !packedOk) out.push({ path: fieldPath(path(), spec, indexed ? index : undefined), offset: tagAt, expected, found: wire });
      }
      if (wire === 0) {
        if (!varint.read(pos, end)) return;
        pos = varint.next;
      } else if (wire === 1) pos += 8;
      else if (wire === 5) pos += 4;
      else if (wire === 2) {
        if (!varint.read(pos, end)) return;
        pos = varint.next;
        const n = varint.value;
        if (spec && spec[1] === 'message') visit(spec[3]!, pos, Math.min(end, pos + n), () => fieldPath(path(), spec, indexed ? index : undefined), depth + 1);
        pos += n;
      } else return;
    }
  };
  visit('ModelProto', 0, bytes.length, () => '', 0);
  return out;
}

/** `graph.node[3]`: a field's path below its message's (`index` for a repeated message field). */
function fieldPath(parent: string, spec: FieldSpec, index: number | undefined): string {
  return `${parent ? `${parent}.` : ''}${spec[0]}${index === undefined ? '' : `[${index}]`}`;
}

/** Reads varints as numbers (exact below 2^53, which every offset and length is) without allocating. */
class VarintReader {
  value = 0;
  next = 0;

  constructor(private readonly bytes: Uint8Array) {}

  /** Reads the varint at `pos`; false when it runs past `end` or over 10 bytes. */
  read(pos: number, end: number): boolean {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10 && pos + i < end; i++) {
      const b = this.bytes[pos + i]!;
      value += (b & 0x7f) * scale;
      scale *= 128;
      if ((b & 0x80) === 0) {
        this.value = value;
        this.next = pos + i + 1;
        return true;
      }
    }
    return false;
  }
}
