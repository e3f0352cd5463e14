/** Building AttributeProtos for emitted nodes. */
import { Long, onnx, type AttributeProto } from '../../src/onnx/codec.js';

export function intAttr(name: string, value: number): AttributeProto {
  return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: Long.fromNumber(value) });
}

export function floatAttr(name: string, value: number): AttributeProto {
  return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.FLOAT, f: value });
}

/** Attributes from a plain record: integers become INT, other numbers FLOAT. `floats` names force FLOAT. */
export function attributesFrom(values: Record<string, number>, floats: ReadonlySet<string>): AttributeProto[] {
  return Object.entries(values).map(([k, v]) => (floats.has(k) || !Number.isInteger(v) ? floatAttr(k, v) : intAttr(k, v)));
}
