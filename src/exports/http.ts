/**
 * `GET /exports/usage/monthly.csv?month=YYYY-MM` and
 * `GET /exports/usage/daily.csv?start=YYYY-MM-DD&end=YYYY-MM-DD`: usage exports as CSV (RFC 4180,
 * csv-stringify), streamed. Same key auth as `POST /ingest`; the key needs `usage:read`.
 *
 * A yoga plugin (like `useIngestEndpoint`): it answers these paths itself in `onRequest`.
 */
import { stringify } from 'csv-stringify';
import { Readable } from 'node:stream';
import type { Plugin } from 'graphql-yoga';
import { authorizeRoute, errorResponse, useRoute, type RouteNote } from '../plugins/http-route.js';
import { Authenticator } from '../auth/authenticate.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import { DATA_REFRESHED_AT_HEADER, routeReadTarget } from '../db/read-replica.js';
import type { Logger } from '../observability.js';
import {
  csvRecord,
  EXPORT_COLUMNS,
  ExportInputError,
  loadExportRows,
  realmTimeZone,
  resolveExportRequest,
  type ExportKind,
} from './usage-export.js';

export const EXPORT_SCOPE = 'usage:read' as const;
export const EXPORT_PATHS: Record<string, ExportKind> = {
  '/exports/usage/monthly.csv': 'MONTHLY',
  '/exports/usage/daily.csv': 'DAILY',
};

export interface UsageExportEndpointOptions {
  prisma: PrismaClient;
  /** A streaming replica (DATABASE_READ_URL) the exported rows are read from. */
  readPrisma?: PrismaClient;
  /** A replica that failed a request's freshness check (that request read the primary). */
  onReplicaError?: (error: unknown) => void;
  authenticator?: Pick<Authenticator, 'authenticate'>;
  /** The clock (tests fix it). */
  now?: () => Date;
  onUnexpectedError?: (error: unknown) => void;
  logger?: Logger;
}

function withNoSniff(response: Response): Response {
  response.headers.set('x-content-type-options', 'nosniff');
  return response;
}

export function useUsageExportEndpoints(options: UsageExportEndpointOptions): Plugin {
  const authenticator = options.authenticator ?? new Authenticator(options.prisma);

  const handle = async (request: Request, url: URL, kind: ExportKind, note: RouteNote): Promise<Response> => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return errorResponse(405, 'METHOD_NOT_ALLOWED', `Use GET ${url.pathname}.`, { headers: { allow: 'GET, HEAD' } });
    }
    const { viewer, response } = await authorizeRoute(authenticator, request, EXPORT_SCOPE);
    note.realmId = viewer?.realmId;
    if (response) return response;
    const params = url.searchParams;
    const now = options.now?.() ?? new Date();
    let exportRequest;
    try {
      const timeZone = await realmTimeZone(options.prisma, viewer.realmId);
      exportRequest = resolveExportRequest(
        kind,
        { month: params.get('month'), startDate: params.get('start'), endDate: params.get('end') },
        now,
        timeZone,
      );
    } catch (error) {
      if (error instanceof ExportInputError) return errorResponse(400, 'BAD_USER_INPUT', error.message, { extensions: { reason: error.reason } });
      throw error;
    }
    const read = await routeReadTarget(options);
    const rows = await loadExportRows(read.readPrisma ?? options.prisma, viewer, exportRequest);
    note.fields = { rows: rows.length };
    const filename = `usage-${kind === 'MONTHLY' ? 'monthly' : 'daily'}-${exportRequest.label}.csv`;
    const headers = {
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': `attachment; filename="${filename}"`,
      'cache-control': 'no-store',
      [DATA_REFRESHED_AT_HEADER]: (read.dataRefreshedAt ?? now).toISOString(),
    };
    if (request.method === 'HEAD') return new Response(null, { status: 200, headers });
    // RFC 4180: CRLF line ends, fields with commas, quotes or line breaks quoted, quotes doubled
    // (csv-stringify quotes a lone CR or LF only when told: without it a name could start a row).
    const csv = stringify({ header: true, columns: [...EXPORT_COLUMNS[kind]], record_delimiter: 'windows', quoted_match: /[\r\n]/ });
    (async () => {
      try {
        for (const row of rows) {
          if (!csv.write(csvRecord(row))) await new Promise((resolve) => csv.once('drain', resolve));
        }
        csv.end();
      } catch (error) {
        csv.destroy(error as Error);
      }
    })();
    return new Response(Readable.toWeb(csv) as unknown as ReadableStream<Uint8Array>, { status: 200, headers });
  };

  return useRoute({
    match: (url) => EXPORT_PATHS[url.pathname],
    // Every answer of these routes, errors included: a browser must not sniff a CSV or JSON body as HTML.
    handle: async (...args) => withNoSniff(await handle(...args)),
    describe: (line) => `export ${line.path} ${line.status} ${line.durationMs}ms`,
    logger: options.logger,
    onUnexpectedError: options.onUnexpectedError,
  });
}
