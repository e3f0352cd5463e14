/**
 * Finding every attention in a model: each anchor (a Softmax that feeds a MatMul, or a fused
 * attention op) goes to the rule for its kind; a rule either proves a site or says which link failed.
 * Rules are plain entries in a list (adding a form is adding one entry); the driver records what each
 * anchor became.
 */
import { AttnpassError } from '../errors.js';
import type { Node } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import { fusedRules } from './fused.js';
import { MaskAnalyzer } from './mask.js';
import { Shapes } from './shapes.js';
import { Site, type SitePlan } from './site-impl.js';
import type { AttentionSite, UnprovenSite } from './site.js';
import { Unproven, feedsMatMul, proveSoftmax } from './softmax-rule.js';

export interface RuleContext {
  model: Model;
  masks: MaskAnalyzer;
  shapes: Shapes;
  /** default-domain opset of the model */
  opset: number;
}

export interface AnchorRule {
  /** tag of the sites it proves (refined by the rule itself) */
  name: string;
  /** whether `n` is this rule's anchor; 'skip' when it is an anchor kind that is plainly not an attention */
  anchors(n: Node, cx: RuleContext): boolean | 'skip';
  /** proves the site or throws `Unproven` with the failing link */
  prove(n: Node, cx: RuleContext): SitePlan;
}

export const softmaxRule: AnchorRule = {
  name: 'softmax-chain',
  anchors: (n) => (n.opType === 'Softmax' && n.domain === '' ? (feedsMatMul(n) ? true : 'skip') : false),
  prove: (n, cx) => proveSoftmax(n, { masks: cx.masks, shapes: cx.shapes, opset: cx.opset }),
};

export const defaultRules: ReadonlyArray<AnchorRule> = [softmaxRule, ...fusedRules];

export interface Detection {
  sites: AttentionSite[];
  unproven: UnprovenSite[];
  /** anchors seen that are plainly not attention (a Softmax that feeds no MatMul, e.g. a classifier head) */
  skipped: number;
  /** per anchor, what happened (for --explain) */
  log: Array<{ anchor: string; rule: string; outcome: 'site' | 'unproven' | 'skipped'; detail?: string }>;
}

export function detectAttention(model: Model, rules: ReadonlyArray<AnchorRule> = defaultRules): Detection {
  const cx: RuleContext = { model, masks: new MaskAnalyzer(model.graph), shapes: new Shapes(model.graph), opset: model.opsetVersion('') ?? 17 };
  const plans: SitePlan[] = [];
  const unproven: UnprovenSite[] = [];
  const log: Detection['log'] = [];
  const claimed = new Map<Node, SitePlan>();
  let skipped = 0;
  for (const n of model.graph.allNodes()) {
    for (const rule of rules) {
      const a = rule.anchors(n, cx);
      if (a === false) continue;
      if (a === 'skip') {
        skipped++;
        log.push({ anchor: n.describe(), rule: rule.name, outcome: 'skipped' });
        break;
      }
      try {
        const plan = rule.prove(n, cx);
        const clash = plan.nodes.find((x) => claimed.has(x));
        if (clash) throw new Unproven(`${n.describe()}: ${clash.describe()} also belongs to the site anchored at ${claimed.get(clash)!.anchor.describe()}`, clash);
        for (const x of plan.nodes) claimed.set(x, plan);
        plans.push(plan);
        log.push({ anchor: n.describe(), rule: plan.rule, outcome: 'site' });
      } catch (e) {
        if (!(e instanceof Unproven) && !(e instanceof AttnpassError)) throw e;
        const reason = e.message.startsWith(n.describe()) ? e.message : `${n.describe()}: ${e.message}`;
        unproven.push({ anchor: n.describe(), reason });
        log.push({ anchor: n.describe(), rule: rule.name, outcome: 'unproven', detail: reason });
      }
      break;
    }
  }
  return { sites: plans.map((p, i) => new Site(p, i)), unproven, skipped, log };
}
