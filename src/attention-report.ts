/**
 * The attention part of `inspect`: every site detect-attention proves, as plain JSON, and every anchor
 * it could not prove with the reason; `formatAttention` prints them as a per-layer table.
 */
import type { Model } from './ir/model.js';
import { detectAttention } from './attention/detect.js';
import type { AttentionSite } from './attention/site.js';

export interface AttentionSiteSummary {
  id: string;
  layer: number;
  kind: 'self' | 'cross';
  heads: number;
  kvHeads: number;
  headDim: number;
  valueHeadDim: number;
  scale: number;
  causal: boolean;
  slidingWindow: number | null;
  mask: {
    kind: 'additive' | 'boolean';
    /** the graph input the mask reads, if any (e.g. attention_mask) */
    source: string | null;
    /** terms added to the scores (additive masks, Where conditions, biases) */
    parts: number;
    /** the input proven to act as a key padding mask */
    keyPadding: string | null;
    /** the mask is exactly the causal triangle: the rewrite gets no mask, only causal */
    impliedByCausal: boolean;
  } | null;
  kvCache: { pastKey: string | null; pastValue: string | null; presentKey: string | null; presentValue: string | null } | null;
  q: string;
  k: string;
  v: string;
  output: string;
  rule: string;
  anchor: string;
  replacedNodes: number;
  notes: string[];
}

export interface UnprovenSiteSummary {
  anchor: string;
  reason: string;
}

export interface AttentionDescription {
  attentionSites: AttentionSiteSummary[];
  unprovenSites: UnprovenSiteSummary[];
}

export function summarizeSite(s: AttentionSite): AttentionSiteSummary {
  return {
    id: s.id,
    layer: s.layer,
    kind: s.kind,
    heads: s.heads,
    kvHeads: s.kvHeads,
    headDim: s.headDim,
    valueHeadDim: s.valueHeadDim,
    scale: s.scale,
    causal: s.causal,
    slidingWindow: s.slidingWindow ?? null,
    mask: s.mask
      ? {
          kind: s.mask.kind,
          source: s.mask.source ?? null,
          parts: s.mask.parts ?? 1,
          keyPadding: s.mask.keyPadding ?? null,
          impliedByCausal: !!s.maskImpliedByCausal,
        }
      : null,
    kvCache: s.kvCache
      ? {
          pastKey: s.kvCache.pastKey?.name ?? null,
          pastValue: s.kvCache.pastValue?.name ?? null,
          presentKey: s.kvCache.presentKey?.name ?? null,
          presentValue: s.kvCache.presentValue?.name ?? null,
        }
      : null,
    q: s.q.name,
    k: s.k.name,
    v: s.v.name,
    output: s.output.name,
    rule: s.rule,
    anchor: s.anchor.describe(),
    replacedNodes: s.nodes.length,
    notes: s.notes ?? [],
  };
}

/** Runs detection on `model` (shapes should be inferred first) and describes what it found. */
export function describeAttention(model: Model): AttentionDescription {
  const d = detectAttention(model);
  return { attentionSites: d.sites.map(summarizeSite), unprovenSites: d.unproven.map((u) => ({ anchor: u.anchor, reason: u.reason })) };
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => `  ${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}`.trimEnd());
}

const num = (x: number): string => String(Number(x.toPrecision(6)));

export function formatAttention(d: AttentionDescription): string {
  const lines = [`attention    ${d.attentionSites.length} site(s)${d.unprovenSites.length ? `, ${d.unprovenSites.length} unproven` : ''}`];
  if (d.attentionSites.length) {
    const rows = [['layer', 'kind', 'heads', 'kv', 'dim', 'scale', 'causal', 'window', 'mask', 'cache', 'rule']];
    for (const s of d.attentionSites) {
      const mask = s.mask ? (s.mask.impliedByCausal ? 'causal only' : `${s.mask.kind}${s.mask.source ? ` ← ${s.mask.source}` : ''}${s.mask.parts > 1 ? ` (${s.mask.parts} terms)` : ''}`) : '-';
      const cache = s.kvCache ? [s.kvCache.pastKey ? 'past' : '', s.kvCache.presentKey ? 'present' : ''].filter(Boolean).join('+') || '-' : '-';
      rows.push([
        String(s.layer),
        s.kind,
        String(s.heads),
        String(s.kvHeads),
        s.valueHeadDim === s.headDim ? String(s.headDim) : `${s.headDim}/${s.valueHeadDim}`,
        num(s.scale),
        s.causal ? 'yes' : 'no',
        s.slidingWindow === null ? '-' : String(s.slidingWindow),
        mask,
        cache,
        s.rule,
      ]);
    }
    lines.push(...table(rows));
  }
  if (d.unprovenSites.length) {
    lines.push('unproven (left dense)');
    for (const u of d.unprovenSites) lines.push(`  ${u.reason}`);
  }
  return lines.join('\n');
}
