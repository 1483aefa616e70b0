import type { ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Viewer } from '../context.js';
import { outsideRecording } from '../db/statement-recorder.js';
import type { TrafficRecorder, TrafficSample } from './recorder.js';
import { endpointName, operationNameOf, statusClass } from './status.js';

interface PendingRequest {
  started: number;
  at: Date;
  apiKeyId?: string;
  operationName?: string;
  errorCodes: (string | undefined)[];
}

function resultsOf(result: unknown): ExecutionResult[] {
  if (Array.isArray(result)) return result as ExecutionResult[];
  if (result && typeof result === 'object' && !(Symbol.asyncIterator in result)) return [result as ExecutionResult];
  return [];
}

function sampleOf(record: PendingRequest, apiKeyId: string, httpStatus: number, latencyMs: number): TrafficSample {
  return { apiKeyId, at: record.at, endpoint: endpointName(record.operationName), status: statusClass(record.errorCodes, httpStatus), latencyMs };
}

export interface RequestTrafficOptions {
  now?: () => Date;
  graphqlEndpoint?: string;
  /**
   * Requests that fail before their context is built (an unparsable or invalid query) never
   * learn their key on the way; this looks it up after the response, in the background.
   */
  identifyLate?: (request: Request) => Promise<string | null>;
}

/**
 * Feeds every authenticated GraphQL request to a TrafficRecorder when its response is ready:
 * API key, endpoint (operation name), status class and latency. Requests refused while their
 * context is built (rate-limited ones) are attributed through `identify`, which the context
 * factory calls as soon as it knows the key; those failing before it through `identifyLate`.
 */
export class RequestTraffic {
  private readonly pending = new WeakMap<Request, PendingRequest>();

  constructor(
    private readonly recorder: TrafficRecorder,
    private readonly options: RequestTrafficOptions = {},
  ) {}

  /** The request's API key, once authenticated (before anything else can refuse the request). */
  identify(request: Request, viewer: Pick<Viewer, 'apiKeyId'>): void {
    const pending = this.pending.get(request);
    if (pending) pending.apiKeyId = viewer.apiKeyId;
  }

  plugin(): Plugin {
    const pending = this.pending;
    const endpoint = this.options.graphqlEndpoint ?? '/graphql';
    const now = this.options.now ?? (() => new Date());
    const recorder = this.recorder;
    const identifyLate = this.options.identifyLate;
    return {
      onRequest({ request, url }) {
        if (url.pathname === endpoint) pending.set(request, { started: performance.now(), at: now(), errorCodes: [] });
      },
      onParams({ request, params }) {
        const record = pending.get(request);
        if (record) record.operationName = params.operationName ?? operationNameOf(params.query);
      },
      onExecute({ args }) {
        const context = args.contextValue as { request?: Request; viewer?: Viewer };
        const record = context.request && pending.get(context.request);
        if (record && context.viewer) record.apiKeyId ??= context.viewer.apiKeyId;
      },
      onResultProcess({ request, result }) {
        const record = pending.get(request);
        if (!record) return;
        for (const single of resultsOf(result)) {
          for (const error of single.errors ?? []) {
            const code = error.extensions?.code;
            record.errorCodes.push(typeof code === 'string' ? code : undefined);
          }
        }
      },
      onResponse({ request, response }) {
        const record = pending.get(request);
        if (!record) return;
        pending.delete(request);
        if (response.headers.get('content-type')?.startsWith('text/html')) return;
        const latencyMs = performance.now() - record.started;
        if (record.apiKeyId) {
          recorder.record(sampleOf(record, record.apiKeyId, response.status, latencyMs));
        } else if (identifyLate && response.status !== 401 && request.headers.has('authorization')) {
          const status = response.status;
          outsideRecording(() => recorder.recordWhenKnown(identifyLate(request).then((apiKeyId) => (apiKeyId ? sampleOf(record, apiKeyId, status, latencyMs) : null))));
        }
      },
    };
  }
}
