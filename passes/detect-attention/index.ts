/**
 * detect-attention: every dense attention of the model as one canonical AttentionSite (softmax chains
 * from any exporter, ONNX Attention, com.microsoft Attention / MultiHeadAttention / GroupQueryAttention).
 * It changes nothing; the rewrite passes read `data.sites` and splice their operators in through each
 * site's `materializeInputs()` / `replaceOutput()`. Anchors that look like attention but cannot be
 * proven are listed in `data.unproven` with the failing link, and never rewritten.
 */
import { definePass, type Pass } from '../../src/pipeline/pass.js';
import { detectAttention } from '../../src/attention/detect.js';
import type { AttentionSite, UnprovenSite } from '../../src/attention/site.js';

export interface DetectAttentionData {
  sites: AttentionSite[];
  unproven: UnprovenSite[];
}

export const detectAttentionPass: Pass = definePass({
  name: 'detect-attention',
  description: 'Find every dense attention (softmax chains from any exporter, ONNX Attention, com.microsoft fused ops) and describe each as an AttentionSite',
  run(ctx) {
    const d = detectAttention(ctx.model);
    for (const s of d.sites) {
      ctx.report(
        `${s.id}: ${s.heads}/${s.kvHeads} heads × ${s.headDim}, scale ${Number(s.scale.toPrecision(6))}${s.causal ? ', causal' : ''}${s.slidingWindow ? `, window ${s.slidingWindow}` : ''} (${s.rule} at ${s.anchor.describe()})`,
      );
    }
    for (const u of d.unproven) ctx.report(`unproven: ${u.reason}`);
    const data: DetectAttentionData = { sites: d.sites, unproven: d.unproven };
    return {
      modified: false,
      data,
      counts: {
        sites: d.sites.length,
        unproven: d.unproven.length,
        causal: d.sites.filter((s) => s.causal).length,
        gqa: d.sites.filter((s) => s.kvHeads !== s.heads).length,
        cross: d.sites.filter((s) => s.kind === 'cross').length,
        kvCache: d.sites.filter((s) => s.kvCache?.pastKey).length,
      },
    };
  },
});

export default detectAttentionPass;
