import { parseDatabaseTarget } from '../src/db/adapters.js';
import { openDatabase } from '../src/db/database.js';
import { reconcile } from '../src/ingest/reconcile.js';

/** `npm run verify`: recompute every bucket from the raw events; exit 1 on any difference. */
const db = await openDatabase(parseDatabaseTarget(process.env.DATABASE_URL, process.env.PGLITE_DIR));
try {
  const report = await reconcile(db.prisma);
  console.log(`${db.description}: ${report.bucketsChecked} buckets recomputed from raw events, ${report.importedBuckets} imported buckets without raw events (not checkable)`);
  if (report.checkableFrom) {
    console.log(
      `could not check ${report.uncheckedBuckets} buckets older than ${report.checkableFrom.toISOString()}: their raw events are past the event retention (EVENT_RETENTION_DAYS) and were dropped`,
    );
  }
  for (const d of report.differences) {
    console.log(`bucket differs: realm ${d.realmId} feature ${d.featureId} hour ${d.hour} [${d.dimensionKey}]: stored ${d.actualQuantity ?? 'nothing'} (${d.actualEvents ?? 0} events), events say ${d.expectedQuantity} (${d.expectedEvents} events)`);
  }
  for (const k of report.uniqueKeyDifferences) console.log(`unique key ${k.problem}: feature ${k.featureId} hour ${k.hour} [${k.dimensionKey}] key ${k.key}`);
  console.log(`${report.rollupUnitsChecked} rolled-up days and months recomputed from hourly buckets`);
  for (const r of report.rollupDifferences) {
    const what = r.key === null ? `stored ${r.stored ?? 'nothing'}, hourly buckets say ${r.expected ?? 'nothing'}` : `key ${r.key} ${r.stored ? 'unexpected' : 'missing'}`;
    console.log(`rollup differs: realm ${r.realmId} feature ${r.featureId} ${r.unit} ${r.start} (${r.timeZone}) [${r.dimensionKey}]: ${what}`);
  }
  const total = report.differences.length + report.uniqueKeyDifferences.length + report.rollupDifferences.length;
  console.log(total === 0 ? 'no differences' : `${total} difference(s)`);
  process.exitCode = total === 0 ? 0 : 1;
} finally {
  await db.close();
}
process.exit(process.exitCode ?? 0);
