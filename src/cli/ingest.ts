/**
 * `usage-gateway ingest <file.ndjson>`: streams a file of usage events (one JSON event per line) to
 * a running gateway's `POST /ingest`, never holding the file in memory, with a progress bar on
 * stderr when it is a terminal.
 */
import { createReadStream, promises as fs } from 'node:fs';
import { Readable } from 'node:stream';
import cliProgress from 'cli-progress';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { addGatewayOptions, CliError, EXIT_CODES_HELP, gatewayFrom, httpError, networkError, notTheGateway, type GatewayOptions } from './client.js';

interface IngestOptions extends GatewayOptions {
  progress: boolean;
  json?: boolean;
  errors: number;
}

/** The gateway's 200 answer (see src/ingest/http.ts). */
interface IngestAnswer {
  accepted: number;
  duplicates: number;
  rejected: number;
  errors: Array<{ line: number; code: string; message: string }>;
  lines: number;
}

const CHUNK_BYTES = 256 * 1024;

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

const count = (n: number) => n.toLocaleString('en-US');

async function openInput(file: string): Promise<{ stream: NodeJS.ReadableStream; size: number | null; name: string }> {
  if (file === '-') return { stream: process.stdin, size: null, name: 'stdin' };
  let size: number;
  try {
    const stat = await fs.stat(file);
    if (!stat.isFile()) throw new CliError(`${file} is not a file`);
    size = stat.size;
  } catch (error) {
    if (error instanceof CliError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(`cannot read ${file}${code === 'ENOENT' ? ': no such file' : ` (${code ?? String(error)})`}`);
  }
  if (size === 0) return { stream: Readable.from([]), size, name: file };
  // Exactly `size` bytes (the Content-Length sent): a file that grows meanwhile is cut there.
  // Opening can still fail (permissions): that surfaces as the upload's failure, as one clear line.
  return { stream: createReadStream(file, { highWaterMark: CHUNK_BYTES, start: 0, end: size - 1 }), size, name: file };
}

function progressBar(total: number | null, enabled: boolean) {
  if (!enabled || total === null || total === 0 || !process.stderr.isTTY) return null;
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: 'uploading |{bar}| {percentage}% | {sent} / {size} | ETA {eta_formatted}',
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { sent: formatBytes(0), size: formatBytes(total) });
  return {
    update: (sent: number) => bar.update(sent, { sent: formatBytes(sent), size: formatBytes(total) }),
    stop: () => bar.stop(),
  };
}

export async function runIngest(file: string, options: IngestOptions): Promise<void> {
  const gateway = gatewayFrom(options);
  const input = await openInput(file);
  const bar = progressBar(input.size, options.progress);
  let sent = 0;
  let readError: unknown;
  input.stream.on('error', (error) => {
    readError = error;
  });
  const body = (Readable.toWeb(input.stream as Readable) as ReadableStream<Uint8Array>).pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        sent += chunk.byteLength;
        bar?.update(sent);
        controller.enqueue(chunk);
      },
    }),
  );
  const url = gateway.endpoint('/ingest');
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${gateway.key}`,
        'content-type': 'application/x-ndjson',
        accept: 'application/json',
        // Lets the gateway refuse a file over its limit before any byte is sent.
        ...(input.size !== null ? { 'content-length': String(input.size) } : {}),
      },
      body,
      // Required by Node's fetch for a streamed request body.
      duplex: 'half',
    } as RequestInit & { duplex: 'half' });
  } catch (error) {
    bar?.stop();
    if (readError) {
      const code = (readError as NodeJS.ErrnoException).code;
      throw new CliError(`cannot read ${input.name} (${code ?? String(readError)})`);
    }
    if (input.size !== null && sent !== input.size && /content-length|length/i.test(String((error as { cause?: unknown })?.cause ?? error))) {
      throw new CliError(`${input.name} changed while it was being sent (${sent} of ${input.size} bytes); send it again once it is complete`);
    }
    throw networkError(error, url);
  }
  bar?.stop();
  if (!response.ok) throw await httpError(response);
  let answer: IngestAnswer;
  try {
    answer = (await response.json()) as IngestAnswer;
  } catch {
    throw notTheGateway(`${response.headers.get('content-type')?.split(';')[0] ?? 'an answer'} that is not JSON`);
  }
  if (!isIngestAnswer(answer)) throw notTheGateway('JSON without accepted, duplicates, rejected, errors and lines');
  if (options.json) {
    process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
    return;
  }
  const rows: Array<[string, number]> = [
    ['accepted', answer.accepted],
    ['duplicates', answer.duplicates],
    ['rejected', answer.rejected],
    ['lines', answer.lines],
  ];
  const width = Math.max(...rows.map(([, n]) => count(n).length));
  let out = `${input.name} → ${gateway.base.origin}\n`;
  for (const [label, n] of rows) out += `${label.padEnd(11)}${count(n).padStart(width)}\n`;
  const shown = answer.errors.slice(0, Math.max(0, options.errors));
  if (shown.length > 0) {
    out += `\nrejected lines${answer.rejected > shown.length ? ` (first ${shown.length} of ${count(answer.rejected)})` : ''}:\n`;
    for (const error of shown) out += `  line ${error.line}: ${error.code}: ${error.message}\n`;
  }
  process.stdout.write(out);
}

export function registerIngest(program: Command): void {
  const command = program
    .command('ingest')
    .summary('send a file of usage events (NDJSON) to a running gateway')
    .description(
      'Streams <file> (one JSON usage event per line; "-" reads stdin) to the gateway\'s POST /ingest ' +
        'without reading it into memory, then prints how many events were accepted, were duplicates ' +
        '(same idempotency key and content: nothing changed) or were rejected, with the first rejected ' +
        'lines. Re-sending a file is safe. The key needs the usage:write scope.\n\n' +
        `${EXIT_CODES_HELP} Rejected lines are part of a successful answer: exit code 0.`,
    )
    .argument('<file>', 'the NDJSON file ("-" for stdin)');
  addGatewayOptions(command)
    .addOption(new Option('--no-progress', 'no progress bar (it is only shown when stderr is a terminal)'))
    .addOption(new Option('--errors <n>', 'rejected lines to print').default(20).argParser(parseCount))
    .option('--json', "print the gateway's JSON answer instead")
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  printf \'{"idempotencyKey":"evt-1","feature":"location.transactions","timestamp":"%s","quantity":"3"}\\n\' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > events.ndjson\n' +
        '  USAGE_GATEWAY_KEY=ugw_… usage-gateway ingest events.ndjson\n' +
        '  zcat events.ndjson.gz | usage-gateway ingest - --json\n\n' +
        'A timestamp must lie within the last 35 days (older: TOO_LATE) and at most 5 minutes ahead (TIMESTAMP_IN_FUTURE).',
    )
    .action((file: string, options: IngestOptions) => runIngest(file, options));
}

function isIngestAnswer(value: unknown): value is IngestAnswer {
  const answer = value as Partial<IngestAnswer> | null;
  return (
    !!answer &&
    typeof answer === 'object' &&
    [answer.accepted, answer.duplicates, answer.rejected, answer.lines].every((n) => typeof n === 'number') &&
    Array.isArray(answer.errors)
  );
}

function parseCount(raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('must be a whole number.');
  return n;
}
