// An example attnpass plugin: two passes, written as plain objects (no import needed).
//
//   attnpass convert model.onnx -o out.onnx --pass ast --plugin passes/examples/drop-identity.mjs --then drop-identity --then attention-summary
//
// A pass gets `ctx.model` (the graph IR), `ctx.options` (its options, defaults applied), `ctx.results`
// (what earlier passes returned, by name) and `ctx.report(line)`; it returns { modified, counts }.

/** Removes Identity nodes: every reader of an Identity's output reads its input instead. */
export const dropIdentity = {
  name: 'drop-identity',
  description: 'Remove Identity nodes (their readers read the input directly)',
  run(ctx) {
    const graph = ctx.model.graph;
    const identities = graph.nodes.filter((n) => n.opType === 'Identity' && n.inputs[0] && !n.output(0).isGraphOutput);
    for (const node of identities) graph.replaceAllUsesWith(node.output(0), node.input(0));
    graph.removeNodes(identities);
    ctx.report(`drop-identity: removed ${identities.length} Identity node(s)`);
    return { modified: identities.length > 0, counts: { removed: identities.length } };
  },
};

/** Reads what detect-attention found and reports the head layout of each layer. */
export const attentionSummary = {
  name: 'attention-summary',
  description: 'Report each attention layer’s heads, KV heads and head dim',
  requires: ['detect-attention'],
  options: {
    prefix: { type: 'string', default: 'layer', describe: 'word printed before each layer index' },
  },
  run(ctx) {
    const { sites } = ctx.results.get('detect-attention').data;
    for (const s of sites) ctx.report(`${ctx.options.prefix} ${s.layer}: ${s.heads} heads, ${s.kvHeads} KV heads, head dim ${s.headDim}, ${s.causal ? 'causal' : 'bidirectional'}`);
    return { modified: false, counts: { layers: sites.length } };
  },
};

export default { name: 'example-plugin', passes: [dropIdentity, attentionSummary] };
