/**
 * What every command that talks to a running gateway shares: `--url` / `--key` (with their
 * environment variables), one GraphQL request, a spinner while waiting, and turning HTTP and
 * network failures into one clear line.
 */
import { STATUS_CODES } from 'node:http';
import { Option, type Command } from 'commander';
import { createSpinner } from 'nanospinner';

export const DEFAULT_URL = 'http://localhost:4000';

/**
 * Exit codes, the same for every command (as `--help` and the README say): 0 success, 1 an error
 * (the gateway refused or failed, cannot be reached, answered something that is not the gateway's,
 * a file cannot be read), 2 a wrong command line (an unknown command, option or column, a bad
 * value, no key, an unknown team, a range the gateway refuses as bad input).
 */
export const EXIT_CODES = { ok: 0, error: 1, usage: 2 } as const;
export const BAD_INPUT_EXIT_CODE = EXIT_CODES.usage;

export const EXIT_CODES_HELP = 'Exit codes: 0 success; 1 an error (the gateway refused or failed, cannot be reached, or its answer is not the gateway\'s); 2 a wrong command line (unknown option, column or team, bad value, no key, a range the gateway refuses).';

/** A failure the user can act on: printed as `error: <message>`, exit code 1 unless the input was wrong (2). */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number = EXIT_CODES.error,
  ) {
    super(message);
  }
}

/** The command was called wrongly: exit code 2. */
export function badInput(message: string): CliError {
  return new CliError(message, BAD_INPUT_EXIT_CODE);
}

/** An answer that is not the gateway's (a proxy's HTML page, another service's JSON). */
export function notTheGateway(what: string): CliError {
  return new CliError(`the answer is not the gateway's (${what}); is --url (USAGE_GATEWAY_URL) the gateway?`);
}

/**
 * Runs `work` with a spinner on stderr, only when stderr is a terminal (never in pipes, files or
 * tests' captured output), so a command that waits seconds shows it is alive.
 */
export async function withSpinner<T>(text: string, work: () => Promise<T>): Promise<T> {
  // A terminal of unknown width (0 columns: a pseudo-terminal nobody sized) makes nanospinner's
  // line count infinite when it clears: no spinner there either.
  if (!process.stderr.isTTY || !(process.stderr.columns > 0)) return work();
  const spinner = createSpinner(text, { stream: process.stderr }).start();
  try {
    return await work();
  } finally {
    spinner.clear();
    spinner.reset();
    // nanospinner hides the cursor while spinning.
    process.stderr.write('\x1b[?25h');
  }
}

export interface GatewayOptions {
  url: string;
  key?: string;
}

/** Adds `--url` and `--key` to a command that calls the gateway. */
export function addGatewayOptions(command: Command): Command {
  return command
    .addOption(new Option('--url <url>', 'the gateway\'s base URL').env('USAGE_GATEWAY_URL').default(DEFAULT_URL))
    .addOption(new Option('--key <key>', 'the API key (prefer the environment variable: arguments show in `ps`)').env('USAGE_GATEWAY_KEY'));
}

export interface Gateway {
  base: URL;
  key: string;
  endpoint(path: string): URL;
}

export function gatewayFrom(options: GatewayOptions): Gateway {
  // An empty USAGE_GATEWAY_URL counts as unset.
  const raw = options.url.trim() || DEFAULT_URL;
  let base: URL;
  try {
    base = new URL(raw);
  } catch {
    throw badInput(`--url "${options.url}" is not a URL; pass something like ${DEFAULT_URL}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw badInput(`--url must be an http:// or https:// URL (got "${options.url}")`);
  }
  const key = options.key?.trim();
  if (!key) throw badInput('no API key: pass --key <key> or set USAGE_GATEWAY_KEY');
  return {
    base,
    key,
    endpoint: (path) => new URL(path.replace(/^\//, ''), base.href.endsWith('/') ? base : new URL(`${base.href}/`)),
  };
}

/**
 * The server's error message (GraphQL-style `{ errors: [{ message, extensions }] }`), else the first
 * line of the text. An upload cut short also says what was stored before it stopped.
 */
export async function serverMessage(response: Response): Promise<string> {
  return messageOf(await response.text().catch(() => ''), response.headers.get('content-type'));
}

function messageOf(text: string, contentType: string | null): string {
  try {
    const body = JSON.parse(text) as { errors?: Array<{ message?: string; extensions?: Record<string, unknown> }> };
    const error = body.errors?.[0];
    if (error?.message) {
      const counts = error.extensions ?? {};
      const stored = ['accepted', 'duplicates', 'rejected'].filter((name) => typeof counts[name] === 'number');
      if (stored.length === 0) return error.message;
      return `${error.message} (before it stopped: ${stored.map((name) => `${Number(counts[name]).toLocaleString('en-US')} ${name}`).join(', ')})`;
    }
  } catch {
    // Not JSON: a proxy's page, say.
  }
  if (/html/i.test(contentType ?? '') || /^\s*</.test(text)) {
    return 'an HTML page, not the gateway\'s answer; is --url (USAGE_GATEWAY_URL) the gateway?';
  }
  const line = text.trim().split('\n')[0]?.slice(0, 300);
  return line || 'no message';
}

/** An HTTP error answer as a CliError: `the gateway answered 401 Unauthorized: <message>`. */
export async function httpError(response: Response): Promise<CliError> {
  const message = await serverMessage(response);
  const reason = response.statusText || STATUS_CODES[response.status];
  return new CliError(`the gateway answered ${response.status}${reason ? ` ${reason}` : ''}: ${message}`, response.status === 400 ? BAD_INPUT_EXIT_CODE : EXIT_CODES.error);
}

/** A fetch that failed before any answer (refused, unknown host, reset) as a CliError. */
export function networkError(error: unknown, url: URL): CliError {
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  const code = cause?.code;
  const where = url.origin;
  switch (code) {
    case 'ECONNREFUSED':
      return new CliError(`cannot connect to the gateway at ${where} (connection refused); is it running? Set --url or USAGE_GATEWAY_URL`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new CliError(`cannot resolve the host "${url.hostname}"; check --url or USAGE_GATEWAY_URL`);
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
      return new CliError(`the gateway at ${where} closed the connection during the upload (${code}); try again`);
  }
  const message = cause?.message ?? (error instanceof Error ? error.message : String(error));
  return new CliError(`the request to ${where} failed (${code ? `${code}: ` : ''}${message})`);
}

interface GraphQLAnswer {
  data?: unknown;
  errors?: Array<{ message?: unknown; extensions?: { code?: unknown } }>;
}

/**
 * One GraphQL request with the key; a GraphQL error becomes a CliError with the server's message
 * (exit code 2 for BAD_USER_INPUT), an answer that is not GraphQL JSON a "not the gateway's" error.
 */
export async function graphqlRequest(gateway: Gateway, query: string, variables: Record<string, unknown> = {}): Promise<unknown> {
  const url = gateway.endpoint('/graphql');
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${gateway.key}`, 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
      body: JSON.stringify({ query, variables }),
    });
  } catch (error) {
    throw networkError(error, url);
  }
  const text = await response.text().catch(() => '');
  let answer: GraphQLAnswer | null = null;
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed) && ('data' in parsed || 'errors' in parsed)) answer = parsed as GraphQLAnswer;
  } catch {
    // Not JSON: handled below.
  }
  const error = Array.isArray(answer?.errors) ? answer.errors[0] : undefined;
  if (error && typeof error.message === 'string') {
    const code = typeof error.extensions?.code === 'string' ? error.extensions.code : undefined;
    const status = response.ok ? '' : `the gateway answered ${response.status}${response.statusText ? ` ${response.statusText}` : ''}: `;
    const wrongInput = code === 'BAD_USER_INPUT' || code === 'GRAPHQL_VALIDATION_FAILED' || response.status === 400;
    throw new CliError(`${status}${error.message}${code ? ` (${code})` : ''}`, wrongInput ? BAD_INPUT_EXIT_CODE : EXIT_CODES.error);
  }
  if (!response.ok) {
    const reason = response.statusText || STATUS_CODES[response.status];
    throw new CliError(`the gateway answered ${response.status}${reason ? ` ${reason}` : ''}: ${messageOf(text, response.headers.get('content-type'))}`);
  }
  if (!answer || !answer.data || typeof answer.data !== 'object') {
    throw notTheGateway(/^\s*</.test(text) ? 'an HTML page' : answer ? 'GraphQL JSON without data' : 'not GraphQL JSON');
  }
  return answer.data;
}

/** The value at `path` in a GraphQL answer, checked to be what the command expects. */
export function answerAt<T>(data: unknown, path: string[], check: (value: unknown) => value is T, what: string): T {
  let value: unknown = data;
  for (const key of path) value = value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
  if (!check(value)) throw notTheGateway(`no ${what} at ${path.join('.')}`);
  return value;
}

/**
 * Every node of a connection, page by page: `query` takes `$after` (and `variables`) and answers the
 * connection at `path` with `pageInfo { hasNextPage endCursor } edges { node { … } }`.
 */
export async function allNodes<T>(gateway: Gateway, query: string, path: string[], what: string, variables: Record<string, unknown> = {}): Promise<T[]> {
  const nodes: T[] = [];
  let after: string | null = null;
  do {
    const data = await graphqlRequest(gateway, query, { ...variables, after });
    const connection = answerAt(data, path, isObject, what);
    const edges = answerAt(connection, ['edges'], isArray, what) as Array<{ node: T }>;
    nodes.push(...edges.map((edge) => edge.node));
    const pageInfo = connection.pageInfo as { hasNextPage?: boolean; endCursor?: string | null } | undefined;
    after = pageInfo?.hasNextPage && pageInfo.endCursor ? pageInfo.endCursor : null;
  } while (after);
  return nodes;
}

/** A command's `--json` answer on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export const isArray = (value: unknown): value is unknown[] => Array.isArray(value);
export const isObject = (value: unknown): value is Record<string, unknown> => !!value && typeof value === 'object' && !Array.isArray(value);


interface UserErrorFields {
  field: string[];
  message: string;
  code: string;
}

/** A mutation payload's object, or a CliError (exit code 2) naming the first user error. */
export function payloadObject<T>(data: unknown, mutation: string, objectField: string): T {
  const payload = answerAt(data, [mutation], isObject, 'payload');
  const errors = answerAt(payload, ['userErrors'], isArray, 'userErrors') as UserErrorFields[];
  const problem = errors[0];
  if (problem) throw badInput(`${problem.message} (${problem.field.length ? `${problem.field.join('.')}, ` : ''}${problem.code})`);
  const object = payload[objectField];
  if (!isObject(object)) throw new CliError(`the gateway answered without the ${objectField}`);
  return object as T;
}
