/** The attention part of `inspect`: sites found and sites left unproven. Filled in by detect-attention. */
import type { Model } from './ir/model.js';

export interface AttentionDescription {
  attentionSites: unknown[];
  unprovenSites: unknown[];
}

export function describeAttention(model: Model): AttentionDescription {
  void model;
  return { attentionSites: [], unprovenSites: [] };
}

export function formatAttention(d: AttentionDescription): string {
  return `attention    ${d.attentionSites.length} site(s)${d.unprovenSites.length ? `, ${d.unprovenSites.length} unproven` : ''}`;
}
