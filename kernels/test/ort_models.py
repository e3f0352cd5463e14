"""Single-node ONNX models of the ai.attnpass operators, for the ONNX Runtime tests."""
import onnx
from onnx import TensorProto, helper

ONNX_T = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "bfloat16": TensorProto.BFLOAT16}


def model(op, dtype, B, Hq, Hkv, S, T, D, Dv=None, attrs=None, mask_shape=None, spans_shape=None, layout=False,
          scorer=False, empty_layout_slot=False):
    """op: BlockSparseAttention | TiledAttention | SpanAttention. mask_shape None: mask omitted."""
    Dv = Dv or D
    et = ONNX_T[dtype]
    ins = [helper.make_tensor_value_info("Q", et, [B, Hq, S, D]),
           helper.make_tensor_value_info("K", et, [B, Hkv, T, D]),
           helper.make_tensor_value_info("V", et, [B, Hkv, T, Dv])]
    names = ["Q", "K", "V"]
    if mask_shape is not None:
        ins.append(helper.make_tensor_value_info("mask", et, list(mask_shape)))
        names.append("mask")
    elif op in ("SpanAttention",) or scorer:
        names.append("")
    if op == "SpanAttention":
        ins.append(helper.make_tensor_value_info("spans", TensorProto.INT64, list(spans_shape)))
        names.append("spans")
    if op == "TiledAttention" and scorer:
        ins.append(helper.make_tensor_value_info("scorer", et, [D]))
        names.append("scorer")
    outs = [helper.make_tensor_value_info("O", et, [B, Hq, S, Dv])]
    onames = ["O"]
    if layout:
        outs.append(helper.make_tensor_value_info("layout", TensorProto.BOOL, None))
        onames.append("layout")
    if empty_layout_slot and not layout:
        onames.append("")  # every output slot listed, the unwanted layout named ''
    node = helper.make_node(op, names, onames, domain="ai.attnpass", **(attrs or {}))
    g = helper.make_graph([node], f"{op}_{dtype}", ins, outs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.attnpass", 1)])
    m.ir_version = 10
    return m


def save(m, path):
    onnx.save(m, path)
