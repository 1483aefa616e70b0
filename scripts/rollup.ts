import { parseDatabaseTarget } from '../src/db/adapters.js';
import { openDatabase } from '../src/db/database.js';
import { rollUpUsage } from '../src/usage/rollups.js';

/** `npm run rollup [-- <realm id>]`: runs the rollup job once, now (the gateway runs it every ROLLUP_INTERVAL_MS). */
const db = await openDatabase(parseDatabaseTarget(process.env.DATABASE_URL, process.env.PGLITE_DIR));
try {
  const realmId = process.argv[2];
  const run = await rollUpUsage(db.prisma, realmId ? { realmId } : {});
  console.log(`${db.description}: rolled up ${run.days} day(s) and ${run.months} month(s) of ${run.features} feature(s)`);
} finally {
  await db.close();
}
process.exit(0);
