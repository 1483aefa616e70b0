/**
 * The `usage-gateway` program: every command registered, and `main`, which runs one command line
 * and returns its exit code (./main.ts is the executable; tests call `main` in-process too).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerAudit } from './audit.js';
import { registerCatalogBilling } from './catalog-billing.js';
import { BAD_INPUT_EXIT_CODE, CliError, EXIT_CODES, EXIT_CODES_HELP } from './client.js';
import { registerIngest } from './ingest.js';
import { registerKeys } from './keys.js';
import { registerOperator } from './operator.js';
import { registerRealms } from './realms.js';
import { registerUsage } from './usage.js';
import { registerWorker } from './worker.js';
import { registerWorkspaces } from './workspaces.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command()
    .name('usage-gateway')
    .description(
      'Command line of the usage gateway: talks to a running gateway over HTTP (--url or USAGE_GATEWAY_URL, ' +
        'default http://localhost:4000) with an API key (--key or USAGE_GATEWAY_KEY). Every command takes --help and --json.',
    )
    .version(version, '-V, --version', 'print the version')
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .exitOverride();
  registerIngest(program);
  registerUsage(program);
  registerKeys(program);
  registerCatalogBilling(program);
  registerWorkspaces(program);
  registerRealms(program);
  registerOperator(program);
  registerAudit(program);
  registerWorker(program);
  return program;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    if (argv.length <= 2) {
      program.outputHelp({ error: true });
      return BAD_INPUT_EXIT_CODE;
    }
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version exit 0; parse errors (printed by commander) are a wrong command line: 2.
      return error.exitCode === 0 ? EXIT_CODES.ok : BAD_INPUT_EXIT_CODE;
    }
    if (error instanceof CliError) {
      process.stderr.write(`error: ${error.message}\n`);
      return error.exitCode;
    }
    process.stderr.write(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return EXIT_CODES.error;
  }
}
