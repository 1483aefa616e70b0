/**
 * The `usage-gateway` command line (bin/usage-gateway runs this file with tsx). Each command lives
 * in its own module and registers itself here; commands that talk to a running gateway share
 * `--url` / `--key` through ./client.ts.
 */
import { Command, CommanderError } from 'commander';
import { BAD_INPUT_EXIT_CODE, CliError } from './client.js';
import { registerIngest } from './ingest.js';
import { registerKeys } from './keys.js';
import { registerUsage } from './usage.js';

export function buildProgram(): Command {
  const program = new Command()
    .name('usage-gateway')
    .description('Command line of the usage gateway: talks to a running gateway over HTTP.')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  registerIngest(program);
  registerUsage(program);
  registerKeys(program);
  return program;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    if (argv.length <= 2) {
      program.outputHelp();
      return 1;
    }
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version exit 0; parse errors (printed by commander) are wrong input: 2.
      return error.exitCode === 0 ? 0 : BAD_INPUT_EXIT_CODE;
    }
    if (error instanceof CliError) {
      process.stderr.write(`error: ${error.message}\n`);
      return error.exitCode;
    }
    process.stderr.write(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  }
}

// `usage-gateway ingest --help | head`: a closed stdout is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

process.exitCode = await main();
