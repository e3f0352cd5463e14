/** What the quality tools need to know of a model before running it: its attention sites and vocabulary. */
import { openModel } from '../index.js';
import { describeAttention, type AttentionSiteSummary } from '../attention-report.js';
import { fail } from '../errors.js';

export interface ModelFacts {
  sites: AttentionSiteSummary[];
  /** attention layer indices, ascending */
  layers: number[];
  causal: boolean;
  /** the logits' last dimension, when the graph states it */
  vocab: number | undefined;
}

export function modelFacts(modelPath: string): ModelFacts {
  const model = openModel(modelPath);
  const sites = describeAttention(model).attentionSites;
  if (sites.length === 0) fail('pass-failed', `no attention was found in ${modelPath}; run 'attnpass inspect ${modelPath}' to see why.`);
  const logits = model.graph.outputs.find((v) => /logits/i.test(v.name)) ?? model.graph.outputs[0];
  const last = logits?.type?.shape?.at(-1);
  return {
    sites,
    layers: [...new Set(sites.map((s) => s.layer))].sort((a, b) => a - b),
    causal: sites.every((s) => s.causal),
    vocab: typeof last === 'number' ? last : undefined,
  };
}
