/** Converting a model with one rewrite pass at given options, quietly (the quality tools' conversions). */
import { convertModel, type ConvertReport } from '../convert.js';
import { PassRegistry } from '../pipeline/manager.js';
import { builtinPasses } from '../../passes/index.js';

let registry: PassRegistry | undefined;

export async function convertAt(input: string, output: string, pass: string, passOptions: Record<string, unknown>, seqLen: number): Promise<ConvertReport> {
  registry ??= new PassRegistry(builtinPasses);
  return convertModel({ input, output, pass, passOptions: { [pass]: passOptions }, registry, seqLen });
}
