import type { PassRegistry } from '../../src/pipeline/manager.js';

export function passesCommand(registry: PassRegistry) {
  return {
    command: 'passes',
    describe: 'List the passes available (built-in and from --plugin modules) with their options',
    builder: (y: import('yargs').Argv) => y.option('plugin', { type: 'array', string: true, default: [], describe: 'ES module exporting passes' }),
    handler: () => {
      for (const p of registry.list()) {
        process.stdout.write(`${p.name}${p.requires?.length ? `  (runs after ${p.requires.join(', ')})` : ''}\n  ${p.description}\n`);
        for (const [name, o] of Object.entries(p.options ?? {})) {
          process.stdout.write(`    --${name.padEnd(16)} ${o.describe}${o.default !== undefined ? ` [default ${o.default}]` : ''}\n`);
        }
      }
    },
  };
}
