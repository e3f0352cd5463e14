/** The passes the CLI knows: built-ins plus any --plugin modules (loaded before argument parsing). */
import { builtinPasses } from '../passes/index.js';
import { PassRegistry } from '../src/pipeline/manager.js';
import { loadPlugin } from '../src/pipeline/plugins.js';

export function pluginPaths(argv: string[]): string[] {
  const out: string[] = [];
  argv.forEach((a, i) => {
    if (a === '--plugin' && argv[i + 1]) out.push(argv[i + 1]!);
    else if (a.startsWith('--plugin=')) out.push(a.slice('--plugin='.length));
  });
  return out;
}

export async function passRegistry(argv: string[]): Promise<PassRegistry> {
  const registry = new PassRegistry(builtinPasses);
  for (const path of pluginPaths(argv)) for (const pass of await loadPlugin(path)) registry.add(pass, `plugin ${path}`);
  return registry;
}
