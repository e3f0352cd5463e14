/** `cleanup`: removes dead nodes and unused initializers after a rewrite. */
import { definePass } from '../../src/pipeline/pass.js';
import type { Graph, Node } from '../../src/ir/graph.js';

/** ops whose removal could change behaviour even when their outputs are unused */
const EFFECTFUL = new Set(['If', 'Loop', 'Scan', 'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial', 'Bernoulli']);

export function removeDeadCode(graph: Graph): { nodes: number; initializers: number } {
  let nodes = 0;
  for (;;) {
    const dead = graph.nodes.filter((n: Node) => !EFFECTFUL.has(n.opType) && n.outputs.every((o) => !o || (o.useCount === 0 && !o.isGraphOutput)));
    if (dead.length === 0) break;
    graph.removeNodes(dead);
    nodes += dead.length;
  }
  let initializers = 0;
  for (const v of [...graph.initializers]) {
    if (v.useCount === 0 && !v.isGraphOutput && !v.isGraphInput) {
      graph.removeInitializer(v);
      initializers++;
    }
  }
  return { nodes, initializers };
}

export const cleanupPass = definePass({
  name: 'cleanup',
  description: 'Remove nodes whose results nobody uses and initializers nobody reads',
  run(ctx) {
    const removed = removeDeadCode(ctx.model.graph);
    if (removed.nodes || removed.initializers) ctx.report(`cleanup: removed ${removed.nodes} dead node(s), ${removed.initializers} unused initializer(s)`);
    return { modified: removed.nodes + removed.initializers > 0, typesUnchanged: true, counts: { deadNodes: removed.nodes, unusedInitializers: removed.initializers } };
  },
});
