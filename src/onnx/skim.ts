/**
 * Reads a model file's structure without its large tensor payloads. Walks the protobuf wire format with
 * the schema's field table (wire-schema.ts), reading only the tags and lengths of the messages that can
 * hold a TensorProto (model, graph, node, attribute, function, sparse tensor, training info, tensor) and
 * copying everything else as it is, except that each TensorProto `raw_data` of at least `minBytes` is
 * replaced by a 1-byte placeholder (the lengths of the enclosing messages are rewritten to match). The
 * result decodes with the ordinary codec; each placeholder's position says which file region it stands
 * for, so load.ts can make that tensor's `rawData` read the region on first use (payload.ts).
 *
 * Anything unusual (a truncated or malformed file, a group, nesting past 100) returns undefined and the
 * caller reads the whole file the ordinary way, which explains the problem precisely (wire.ts).
 */
import type { TensorProto } from './codec.js';
import { readRange } from './read-range.js';
import { encodeVarint } from './stream.js';
import { WIRE_SCHEMA } from './wire-schema.js';

export interface SkimmedPayload {
  /** position of the 1-byte placeholder in `bytes` */
  at: number;
  /** where the payload lies in the file */
  offset: number;
  length: number;
}

export interface Skimmed {
  /** the model's bytes with each large payload replaced by a 1-byte placeholder */
  bytes: Buffer;
  payloads: SkimmedPayload[];
}

const RAW = 'raw';
/** per message type that can lead to a TensorProto's raw_data: field number → RAW or the field's message type */
const CARRIERS = new Map<string, Map<number, string>>();
/** the same per type as decoded-message property names (protobufjs camelCase) → message type */
const CARRIER_PROPS = new Map<string, Array<[string, string]>>();
{
  const reaches = new Set<string>(['TensorProto']);
  for (let changed = true; changed; ) {
    changed = false;
    for (const [type, fields] of Object.entries(WIRE_SCHEMA)) {
      if (reaches.has(type)) continue;
      if (Object.values(fields).some((f) => f[1] === 'message' && reaches.has(f[3]!))) {
        reaches.add(type);
        changed = true;
      }
    }
  }
  for (const type of reaches) {
    const fields = new Map<number, string>();
    for (const [id, spec] of Object.entries(WIRE_SCHEMA[type] ?? {})) {
      if (type === 'TensorProto' && spec[0] === 'raw_data') fields.set(Number(id), RAW);
      else if (spec[1] === 'message' && reaches.has(spec[3]!)) fields.set(Number(id), spec[3]!);
    }
    CARRIERS.set(type, fields);
    CARRIER_PROPS.set(
      type,
      Object.values(WIRE_SCHEMA[type] ?? {})
        .filter((spec) => spec[1] === 'message' && reaches.has(spec[3]!))
        .map((spec) => [spec[0].replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()), spec[3]!]),
    );
  }
}

/** Calls `fn` on every TensorProto of a decoded model, wherever it sits (the places `skimModel` looks). */
export function visitTensors(model: object, fn: (t: TensorProto) => void): void {
  const visit = (message: Record<string, unknown>, type: string, depth: number): void => {
    if (depth > MAX_DEPTH) return;
    if (type === 'TensorProto') fn(message as TensorProto);
    for (const [prop, sub] of CARRIER_PROPS.get(type) ?? []) {
      if (!Object.prototype.hasOwnProperty.call(message, prop)) continue;
      const value = message[prop];
      if (Array.isArray(value)) for (const item of value) item && visit(item as Record<string, unknown>, sub, depth + 1);
      else if (value && typeof value === 'object') visit(value as Record<string, unknown>, sub, depth + 1);
    }
  };
  visit(model as Record<string, unknown>, 'ModelProto', 0);
}

class Unusual extends Error {}

const MAX_DEPTH = 100;
/** bytes read at a time for tags and lengths (small: after each skipped payload the next read starts afresh) */
const WINDOW = 64 << 10;

/** A part of the output: a file range [start, end), or literal bytes. */
type Part = { start: number; end: number } | { literal: Uint8Array };

/** Reads a file through one window, for the tags and lengths the walk looks at. */
class Window {
  private readonly buf = Buffer.allocUnsafe(WINDOW);
  private base = 0;
  private filled = 0;

  constructor(private readonly fd: number, private readonly size: number) {}

  /** The byte at `pos` (which must be inside the file). */
  byte(pos: number): number {
    if (pos < this.base || pos >= this.base + this.filled) this.fill(pos);
    return this.buf[pos - this.base]!;
  }

  private fill(pos: number): void {
    const want = Math.min(WINDOW, this.size - pos);
    if (readRange(this.fd, this.buf, 0, want, pos) !== want) throw new Unusual('the file shrank while it was read');
    this.base = pos;
    this.filled = want;
  }
}


const PLACEHOLDER = Uint8Array.of(1, 0); // length 1, then the placeholder byte

/**
 * The file's bytes with payloads of at least `minBytes` left out, or undefined when there are none (read the
 * file whole) or the file is not an ordinary ONNX model (read it whole; decoding explains what is wrong).
 */
export function skimModel(fd: number, size: number, minBytes: number): Skimmed | undefined {
  const window = new Window(fd, size);
  let pos = 0;
  const varint = (end: number): number => {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw new Unusual('a varint runs past its message');
      const b = window.byte(pos++);
      value += (b & 0x7f) * scale;
      scale *= 128;
      if ((b & 0x80) === 0) return value;
    }
    throw new Unusual('a varint longer than 10 bytes');
  };
  const payloads: Array<{ offset: number; length: number }> = [];
  const placeholders: Array<{ part: Part; index: number }> = [];

  /** Parts of the message in [start, end) and their total length; `changed` when a payload was left out below it. */
  const walk = (type: string, start: number, end: number, depth: number): { parts: Part[]; length: number; changed: boolean } => {
    if (depth > MAX_DEPTH) throw new Unusual('nested too deep');
    const fields = CARRIERS.get(type)!;
    const parts: Part[] = [];
    let length = 0;
    let copyFrom = start;
    let changed = false;
    const copyTo = (at: number): void => {
      if (at > copyFrom) {
        parts.push({ start: copyFrom, end: at });
        length += at - copyFrom;
      }
    };
    pos = start;
    while (pos < end) {
      const tag = varint(end);
      const wire = tag % 8;
      const field = (tag - wire) / 8;
      if (field === 0) throw new Unusual('field number 0');
      if (wire === 0) varint(end);
      else if (wire === 1 || wire === 5) pos += wire === 1 ? 8 : 4;
      else if (wire === 2) {
        const lengthAt = pos;
        const n = varint(end);
        const content = pos;
        if (content + n > end) throw new Unusual('a field runs past its message');
        const carrier = fields.get(field);
        if (carrier === RAW && n >= minBytes) {
          copyTo(lengthAt); // through the tag
          const part = { literal: PLACEHOLDER };
          parts.push(part);
          length += PLACEHOLDER.length;
          placeholders.push({ part, index: payloads.length });
          payloads.push({ offset: content, length: n });
          copyFrom = content + n;
          changed = true;
        } else if (carrier !== undefined && carrier !== RAW) {
          const inner = walk(carrier, content, content + n, depth + 1);
          if (inner.changed) {
            copyTo(lengthAt); // through the tag
            const header = { literal: encodeVarint(inner.length) };
            parts.push(header);
            for (const part of inner.parts) parts.push(part);
            length += header.literal.length + inner.length;
            copyFrom = content + n;
            changed = true;
          }
        }
        pos = content + n;
      } else throw new Unusual(`wire type ${wire}`);
      if (pos > end) throw new Unusual('a field runs past its message');
    }
    copyTo(end);
    return { parts, length, changed };
  };

  let top: { parts: Part[]; length: number; changed: boolean };
  try {
    top = walk('ModelProto', 0, size, 0);
  } catch (err) {
    if (err instanceof Unusual) return undefined;
    throw err;
  }
  if (!top.changed) return undefined;

  const bytes = Buffer.allocUnsafeSlow(top.length);
  const at = new Map<Part, number>();
  let o = 0;
  for (const part of top.parts) {
    at.set(part, o);
    if ('literal' in part) {
      bytes.set(part.literal, o);
      o += part.literal.length;
    } else {
      if (readRange(fd, bytes, o, part.end - part.start, part.start) !== part.end - part.start) return undefined;
      o += part.end - part.start;
    }
  }
  return {
    bytes,
    payloads: placeholders.map(({ part, index }) => ({ at: at.get(part)! + 1, ...payloads[index]! })),
  };
}
