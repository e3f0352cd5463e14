/**
 * The canonical description of one attention, whatever exporter wrote it. `detect-attention` produces
 * these; the rewrite passes consume them and never look at the exporter's pattern again.
 */
import type { Node, Value } from '../ir/graph.js';

export type AttentionKind = 'self' | 'cross';

/** How the mask reaches the softmax, after the site's own causal masking is taken out. */
export interface AttentionMask {
  /** 'additive': a float tensor added to the scaled scores; 'boolean': true = keep (applied with Where) */
  kind: 'additive' | 'boolean';
  /** the mask value as the site's scores see it, broadcastable to [B, Hq, S, T] (rank ≤ 4) */
  value: Value;
  /** where it comes from, for reports: the graph input it derives from (e.g. 'attention_mask'), if any */
  source: string | undefined;
  /** for boolean masks, the float that Where puts in masked places (e.g. -inf or finfo.min) */
  fillValue?: number;
  /** (added) how many terms the site adds to its scores (additive terms and Where conditions); `value` is the first */
  parts?: number;
  /** (added) the graph input proven (by evaluating the mask) to hide key j of batch b when its entry [b, j] is 0 */
  keyPadding?: string;
}

export interface KvCache {
  /** past key / value graph inputs ([B, Hkv, P, D]) */
  pastKey: Value | undefined;
  pastValue: Value | undefined;
  /** present key / value outputs (the Concat of past and new) */
  presentKey: Value | undefined;
  presentValue: Value | undefined;
}

export interface AttentionSite {
  /** stable id within the model, e.g. "layer3.self" */
  id: string;
  /** 0-based index among the model's attention layers (in graph order) */
  layer: number;
  kind: AttentionKind;
  /**
   * Query, key and value as the graph holds them (for reports). Their layout may differ from
   * [B, H, S, D] (packed QKV, heads folded into the hidden dim); `materializeInputs` gives the canonical form.
   */
  q: Value;
  k: Value;
  v: Value;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** value head dim (usually = headDim) */
  valueHeadDim: number;
  /** the softmax scale applied to Q·Kᵀ (all factors multiplied: √s on Q and K, Div, Mul) */
  scale: number;
  causal: boolean;
  /**
   * sliding-window size when the causal mask also limits how far back a query sees: a query at position p
   * sees keys j with p − W < j ≤ p (W keys, itself included)
   */
  slidingWindow: number | undefined;
  mask: AttentionMask | undefined;
  kvCache: KvCache | undefined;
  /** the value that carries the attention result as the graph holds it (for reports) */
  output: Value;
  /** nodes that only this site uses and that the rewrite replaces (from Q·Kᵀ through softmax·V, or the fused op) */
  nodes: Node[];
  /**
   * Q [B, Hq, S, D], K [B, Hkv, T, D], V [B, Hkv, T, Dv] with the KV cache already concatenated, inserting
   * layout changes before the site where the graph holds them otherwise. Called by a rewrite (it mutates).
   */
  materializeInputs(): { q: Value; k: Value; v: Value; mask: Value | undefined };
  /**
   * Routes a new attention result [B, Hq, S, Dv] to the site's consumers (inserting the layout change back
   * where needed), keeps present K/V outputs produced, and removes the replaced nodes. Called once.
   */
  replaceOutput(result: Value): void;
  /** the node the recognizer anchored on (Softmax or the fused attention op) */
  anchor: Node;
  /** which recognizer rule proved it (e.g. "softmax-chain", "onnx-attention", "com.microsoft.Attention") */
  rule: string;
  /**
   * (added) true when the mask is exactly the causal triangle (and sliding window) for every size tried and reads
   * no graph input: `materializeInputs` then returns no mask, `causal` (and `slidingWindow`) say it all.
   */
  maskImpliedByCausal?: boolean;
  /**
   * (added) true when the mask `materializeInputs` returns already hides the keys after each query (the
   * causal triangle); false when causality comes only from `causal` (fused ops with a causal attribute).
   */
  maskIncludesCausal?: boolean;
  /**
   * (added) a node before which a rewrite may insert the nodes that read the materialized inputs and produce the
   * result (the site's last node); `replaceOutput` keeps the graph in topological order either way.
   */
  insertBefore?: Node;
  /** (added) what recognition could not decide and how it chose safely (e.g. why `causal` is false although masked) */
  notes?: string[];
}

/** A softmax or fused op that looked like attention but could not be proven; never rewritten. */
export interface UnprovenSite {
  anchor: string;
  /** the link that failed and where, e.g. "Softmax 'x': input is not scale·Q·Kᵀ: MatMul 'm' second operand is not a transposed K" */
  reason: string;
}
