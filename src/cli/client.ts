/**
 * What every command that talks to a running gateway shares: `--url` / `--key` (with their
 * environment variables) and turning HTTP and network failures into one clear line.
 */
import { STATUS_CODES } from 'node:http';
import { Option, type Command } from 'commander';

export const DEFAULT_URL = 'http://localhost:4000';

/**
 * A failure the user can act on: printed as `error: <message>`. Exit code 2 for input that is
 * wrong (options, columns, dates — also when the gateway says BAD_USER_INPUT), 1 for everything else.
 */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export const BAD_INPUT_EXIT_CODE = 2;

/** The command was called wrongly: exit code 2. */
export function badInput(message: string): CliError {
  return new CliError(message, BAD_INPUT_EXIT_CODE);
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
  let base: URL;
  try {
    base = new URL(options.url);
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
  const text = await response.text().catch(() => '');
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
  const line = text.trim().split('\n')[0]?.slice(0, 300);
  return line || 'no message';
}

/** An HTTP error answer as a CliError: `the gateway answered 401 Unauthorized: <message>`. */
export async function httpError(response: Response): Promise<CliError> {
  const message = await serverMessage(response);
  const reason = response.statusText || STATUS_CODES[response.status];
  return new CliError(`the gateway answered ${response.status}${reason ? ` ${reason}` : ''}: ${message}`, response.status === 400 ? BAD_INPUT_EXIT_CODE : 1);
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
