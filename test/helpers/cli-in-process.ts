/**
 * Runs the CLI's `main` (src/cli/program.ts) inside the test process: what bin/usage-gateway runs,
 * without the seconds a spawned Node with tsx costs per command. It answers like a spawned run:
 * the exit code and everything written to stdout and stderr, with only `env` deciding the gateway
 * URL and key (and any other variable it names). test/cli.test.ts keeps spawning the real executable (bin/usage-gateway).
 */
import { main } from '../../src/cli/program.js';
import type { CliRun } from '../server/server-process.js';

const GATEWAY_VARIABLES = ['USAGE_GATEWAY_URL', 'USAGE_GATEWAY_KEY'] as const;

let running: Promise<unknown> = Promise.resolve();

/** One command at a time: stdout, stderr and the environment are the process's own. */
export function runCliInProcess(args: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  const run = running.then(() => runNow(args, env));
  running = run.catch(() => undefined);
  return run;
}

async function runNow(args: string[], env: Record<string, string | undefined>): Promise<CliRun> {
  // The gateway's variables, and any other a test passes (e.g. DATABASE_URL), hold only for this run; undefined unsets one.
  const names = [...new Set([...GATEWAY_VARIABLES, ...Object.keys(env)])];
  const saved = new Map(names.map((name) => [name, process.env[name]]));
  for (const name of names) delete process.env[name];
  for (const [name, value] of Object.entries(env)) if (value !== undefined) process.env[name] = value;
  const output = { stdout: '', stderr: '' };
  const writes = { stdout: process.stdout.write, stderr: process.stderr.write };
  for (const stream of ['stdout', 'stderr'] as const) {
    process[stream].write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      output[stream] += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    }) as typeof process.stdout.write;
  }
  try {
    const code = await main(['node', 'usage-gateway', ...args]);
    return { code, ...output };
  } finally {
    process.stdout.write = writes.stdout;
    process.stderr.write = writes.stderr;
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}
