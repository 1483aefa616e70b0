/**
 * `usage-gateway operator:create-key`: the one command that opens the database itself (DATABASE_URL,
 * else PGLITE_DIR or the embedded default, as the server does, migrating it first if needed) instead
 * of calling a gateway: the API never creates an operator key, so the first one comes from here.
 */
import type { Command } from 'commander';
import type { DatabaseTarget } from '../db/adapters.js';
import { encodeId } from '../global-id.js';
import { badInput, CliError, EXIT_CODES_HELP, withSpinner } from './client.js';

// The database drivers and the Prisma client are loaded by this command only: the other commands start without them.
async function databaseTarget(): Promise<DatabaseTarget> {
  const { DatabaseConfigError, parseDatabaseTarget } = await import('../db/adapters.js');
  const value = (name: string) => process.env[name]?.trim() || undefined;
  try {
    return parseDatabaseTarget(value('DATABASE_URL'), value('PGLITE_DIR'));
  } catch (error) {
    if (error instanceof DatabaseConfigError) throw badInput(error.message);
    throw error;
  }
}

interface CreateKeyOptions {
  name: string;
  json?: boolean;
}

export async function runCreateOperatorKey(options: CreateKeyOptions): Promise<void> {
  const target = await databaseTarget();
  const { describeTarget } = await import('../db/adapters.js');
  const { openDatabase } = await import('../db/database.js');
  const { createOperatorKey } = await import('../admin/operators.js');
  const created = await withSpinner('creating the operator key', async () => {
    let db;
    try {
      db = await openDatabase(target);
    } catch (error) {
      throw new CliError(`cannot open ${describeTarget(target)} (${error instanceof Error ? error.message.split('\n')[0] : String(error)}); check DATABASE_URL / PGLITE_DIR`);
    }
    try {
      return await createOperatorKey(db.prisma, { name: options.name });
    } finally {
      await db.close();
    }
  });
  if ('userErrors' in created) throw badInput(`--name: ${created.userErrors[0]!.message}`);
  const id = encodeId('OperatorKey', created.id);
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ id, name: created.name, prefix: created.prefix, created: created.createdAt.toISOString(), secret: created.secret }, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    `created operator key "${created.name}" in ${describeTarget(target)}\n` +
      `id:      ${id}\n` +
      `prefix:  ${created.prefix}\n` +
      `secret:  ${created.secret}\n\n` +
      'Store the secret now: it is shown this once. It manages every realm (realms:manage): keep it like a root password.\n',
  );
}

export function registerOperator(program: Command): void {
  program
    .command('operator:create-key')
    .summary('create an operator key in the database (prints its secret once)')
    .description(
      'Creates an operator key (scope realms:manage: create, list, update, suspend and resume realms) directly in the database ' +
        '(DATABASE_URL, else the embedded database in PGLITE_DIR, default ./data/pglite; migrated first if needed), writes an audit ' +
        'entry (operatorKey.create, by SYSTEM) and prints the secret, once. The API never creates operator keys. With the embedded ' +
        `database, stop the gateway first: one PGlite directory is one process's.\n\n${EXIT_CODES_HELP}`,
    )
    .requiredOption('--name <name>', 'a name for the key (who holds it)')
    .option('--json', 'print the key (with its secret) as JSON')
    .addHelpText('after', '\nExample:\n  DATABASE_URL=postgresql://… usage-gateway operator:create-key --name "on-call"')
    .action((options: CreateKeyOptions) => runCreateOperatorKey(options));
}
