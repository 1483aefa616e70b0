/**
 * `npm run seed`: (re)creates the demo data in the database the server would open
 * (DATABASE_URL, else the PGlite directory PGLITE_DIR, default ./data/pglite), migrating it first.
 * Existing data is wiped; on a PostgreSQL database that holds data, only with --force.
 */
import { SingleBar, Presets } from 'cli-progress';
import { parseDatabaseTarget } from '../src/db/adapters.js';
import { openDatabase, type Database } from '../src/db/database.js';
import { isDatabaseEmpty, seedDemo } from '../src/db/seed.js';

/** Show a bar only when seeding takes longer than this and stderr is a terminal. */
const BAR_AFTER_MS = 400;

function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const lines = message
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  // Prisma errors start with "Invalid `…` invocation:"; the cause is the last line.
  return lines.at(-1) ?? 'unknown error';
}

async function main(): Promise<void> {
  const force = process.argv.includes('--force');
  const target = parseDatabaseTarget(process.env.DATABASE_URL, process.env.PGLITE_DIR);
  const started = performance.now();
  let db: Database | undefined;
  let bar: SingleBar | undefined;
  try {
    db = await openDatabase(target, {
      onMigrated(applied) {
        if (applied.length > 0) console.error(`applied migrations: ${applied.join(', ')}`);
      },
    });
    if (target.kind === 'postgres' && !force && !(await isDatabaseEmpty(db.prisma))) {
      throw new Error(`${db.description} already holds data; seeding replaces all of it: run again with --force (npm run seed -- --force)`);
    }
    const seedStarted = performance.now();
    const result = await seedDemo(db.prisma, {
      onProgress(done, total) {
        if (!bar && process.stderr.isTTY && performance.now() - seedStarted > BAR_AFTER_MS && done < total) {
          bar = new SingleBar(
            { stream: process.stderr, format: 'Seeding the demo [{bar}] {percentage}% | step {value}/{total}', hideCursor: true, clearOnComplete: true },
            Presets.shades_classic,
          );
          bar.start(total, done);
        }
        bar?.update(done);
      },
    });
    bar?.stop();
    const ms = Math.round(performance.now() - started);
    console.log(`Seeded ${db.description} in ${ms} ms`);
    console.log(`API key: ${result.apiKey}`);
  } catch (error) {
    bar?.stop();
    throw error;
  } finally {
    await db?.close().catch(() => {});
  }
}

/** Exit once our output is flushed: a timer left behind by the migration engine would keep the process alive ~10 s. */
function exit(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

main().then(
  () => exit(0),
  (error: unknown) => {
    console.error(`seed failed: ${oneLine(error)}`);
    exit(1);
  },
);
