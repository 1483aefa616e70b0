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
import { keyFromAuthorizationHeader, parseApiKey } from '../auth/api-key-secret.js';
import { Authenticator } from '../auth/authenticate.js';
import type { PrismaClient } from '../generated/prisma/client.js';
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
  authenticator?: Pick<Authenticator, 'authenticate'>;
  /** The clock (tests fix it). */
  now?: () => Date;
  onUnexpectedError?: (error: unknown) => void;
  logger?: Logger;
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

function errorResponse(status: number, code: string, message: string, options: { headers?: Record<string, string>; extensions?: Record<string, unknown> } = {}) {
  return new Response(JSON.stringify({ errors: [{ message, extensions: { code, ...options.extensions } }] }), {
    status,
    headers: { ...JSON_HEADERS, ...options.headers },
  });
}

export function useUsageExportEndpoints(options: UsageExportEndpointOptions): Plugin {
  const authenticator = options.authenticator ?? new Authenticator(options.prisma);

  const handle = async (request: Request, url: URL, kind: ExportKind, note: { realmId?: string; rows?: number }): Promise<Response> => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return errorResponse(405, 'METHOD_NOT_ALLOWED', `Use GET ${url.pathname}.`, { headers: { allow: 'GET, HEAD' } });
    }
    const viewer = await authenticator.authenticate(request.headers.get('authorization'));
    if (!viewer) {
      return errorResponse(401, 'UNAUTHENTICATED', 'A valid API key is required: send "Authorization: Bearer <key>".', {
        headers: { 'www-authenticate': 'Bearer' },
      });
    }
    note.realmId = viewer.realmId;
    if (!viewer.scopes.includes(EXPORT_SCOPE)) {
      return errorResponse(403, 'FORBIDDEN', `This needs an API key with the \`${EXPORT_SCOPE}\` scope.`, { extensions: { requiredScope: EXPORT_SCOPE } });
    }
    const params = url.searchParams;
    let exportRequest;
    try {
      const timeZone = await realmTimeZone(options.prisma, viewer.realmId);
      exportRequest = resolveExportRequest(
        kind,
        { month: params.get('month'), startDate: params.get('start'), endDate: params.get('end') },
        options.now?.() ?? new Date(),
        timeZone,
      );
    } catch (error) {
      if (error instanceof ExportInputError) return errorResponse(400, 'BAD_USER_INPUT', error.message, { extensions: { reason: error.reason } });
      throw error;
    }
    const rows = await loadExportRows(options.prisma, viewer, exportRequest);
    note.rows = rows.length;
    const filename = `usage-${kind === 'MONTHLY' ? 'monthly' : 'daily'}-${exportRequest.label}.csv`;
    const headers = {
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': `attachment; filename="${filename}"`,
      'cache-control': 'no-store',
    };
    if (request.method === 'HEAD') return new Response(null, { status: 200, headers });
    // RFC 4180: CRLF line ends, fields with commas, quotes or line breaks quoted, quotes doubled.
    const csv = stringify({ header: true, columns: [...EXPORT_COLUMNS[kind]], record_delimiter: 'windows' });
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

  return {
    async onRequest({ request, url, endResponse }) {
      const kind = EXPORT_PATHS[url.pathname];
      if (!kind) return;
      const started = performance.now();
      const note: { realmId?: string; rows?: number } = {};
      let response: Response;
      try {
        response = await handle(request, url, kind, note);
      } catch (error) {
        options.onUnexpectedError?.(error);
        response = errorResponse(500, 'INTERNAL_SERVER_ERROR', 'Unexpected error.');
      }
      if (options.logger) {
        const key = keyFromAuthorizationHeader(request.headers.get('authorization'));
        const line = {
          path: url.pathname,
          method: request.method,
          status: response.status,
          durationMs: Math.round((performance.now() - started) * 100) / 100,
          rows: note.rows ?? null,
          apiKeyPrefix: (key && parseApiKey(key)?.prefix) ?? null,
          realmId: note.realmId ?? null,
        };
        options.logger[response.status >= 500 ? 'error' : 'info'](line, `export ${line.path} ${line.status} ${line.durationMs}ms`);
      }
      endResponse(response);
    },
  };
}
