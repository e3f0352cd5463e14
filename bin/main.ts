/** The attnpass CLI: parses arguments with yargs and calls the library. */
import yargs from 'yargs';
import { inspectCommand } from './commands/inspect.js';
import { convertCommand } from './commands/convert.js';
import { verifyCommand } from './commands/verify.js';
import { passesCommand } from './commands/passes.js';
import { calibrateCommand } from './commands/calibrate.js';
import { reportCommand } from './commands/report.js';
import { passRegistry } from './registry.js';
import { EXIT, reportError } from './errors.js';
import { AttnpassError } from '../src/errors.js';

export async function run(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  let registry;
  try {
    registry = await passRegistry(argv);
  } catch (err) {
    return reportError(err, debug);
  }
  const cli = yargs(argv)
    .scriptName('attnpass')
    .usage('$0 <command> [options]\n\nFind every dense attention in an ONNX Transformer model and rewrite it into efficient sparse attention operators.')
    .option('debug', { type: 'boolean', default: false, describe: 'print stack traces on errors' })
    .option('quiet', { type: 'boolean', default: false, describe: 'no progress output' })
    .command(inspectCommand as never)
    .command(convertCommand(registry, { describeOptions: helpRequested(argv) }) as never)
    .command(verifyCommand as never)
    .command(passesCommand(registry) as never)
    .command(calibrateCommand as never)
    .command(reportCommand(registry) as never)
    .demandCommand(1, 'Name a command (see the list above).')
    .strict()
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .version(false)
    // yargs lays out the whole help text after every command, shown or not: only lay it out to a width when it is asked for
    .wrap(helpRequested(argv) ? Math.min(110, process.stdout.columns || 100) : null)
    .fail((msg, err) => {
      if (err) throw err;
      throw new AttnpassError('usage', `${msg}\nRun 'attnpass --help' (or 'attnpass <command> --help') for usage.`);
    });
  try {
    await cli.parseAsync();
  } catch (err) {
    return reportError(err, debug);
  }
  return EXIT.ok;
}

function helpRequested(argv: string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}
