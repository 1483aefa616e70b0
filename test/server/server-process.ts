import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A port nobody listens on right now (listen on 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** Settings the test runner's environment might carry and the server would read. */
const SERVER_VARIABLES = [
  'DATABASE_URL',
  'DATABASE_READ_URL',
  'PGLITE_DIR',
  'PORT',
  'HOST',
  'EXPOSE_QUERY_STATS',
  'LOG_LEVEL',
  'SEED_DEMO',
  'REDIS_URL',
  'GRAPHIQL',
  'GRAPHQL_INTROSPECTION',
  'GRAPHQL_MAX_BODY_BYTES',
  'METRICS_TOKEN',
];

export interface ServerProcess {
  child: ChildProcess;
  spawnedAt: number;
  stdout: string[];
  stderr: string[];
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
  /** Resolves with the first stdout line matching `pattern`; rejects if the process exits first. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** The stdout lines that are JSON log entries. */
  logEntries(): Array<Record<string, any>>;
  stop(): Promise<number | string>;
}

/** `node scripts/start.mjs` (`npm start`: src/server.ts, compiled) with only `env` as its settings. */
export function startServer(env: Record<string, string>): ServerProcess {
  const baseEnv = { ...process.env };
  for (const name of SERVER_VARIABLES) delete baseEnv[name];
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, ['scripts/start.mjs'], {
    cwd: projectRoot,
    env: { ...baseEnv, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters: Array<{ pattern: RegExp; resolve(line: string): void }> = [];
  const collect = (stream: NodeJS.ReadableStream, lines: string[], watch: boolean) => {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      rest += chunk;
      const parts = rest.split('\n');
      rest = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        if (!watch) continue;
        for (const waiter of [...waiters]) {
          if (waiter.pattern.test(line)) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve(line);
          }
        }
      }
    });
    stream.on('end', () => {
      if (rest) lines.push(rest);
    });
  };
  collect(child.stdout!, stdout, true);
  collect(child.stderr!, stderr, false);
  const exited = new Promise<number | string>((resolve) => {
    child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });

  return {
    child,
    spawnedAt,
    stdout,
    stderr,
    exited,
    waitForLine(pattern, timeoutMs = 90_000) {
      const seen = stdout.find((line) => pattern.test(line));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms\nstdout:\n${stdout.join('\n')}\nstderr:\n${stderr.join('\n')}`)), timeoutMs);
        waiters.push({
          pattern,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`the server exited (${code}) before printing ${pattern}\nstdout:\n${stdout.join('\n')}\nstderr:\n${stderr.join('\n')}`));
        });
      });
    },
    logEntries() {
      return stdout.flatMap((line) => {
        if (!line.startsWith('{')) return [];
        try {
          return [JSON.parse(line) as Record<string, any>];
        } catch {
          return [];
        }
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Runs the server until it exits on its own (bad settings). */
export async function runUntilExit(env: Record<string, string>, timeoutMs = 60_000) {
  const server = startServer(env);
  const timer = setTimeout(() => server.child.kill('SIGKILL'), timeoutMs);
  const code = await server.exited;
  clearTimeout(timer);
  return { code, stdout: server.stdout, stderr: server.stderr.filter((line) => line.trim() !== '') };
}

/** An app behind a real listening HTTP server on a free loopback port, and how to stop it. */
export async function listenOnFreePort(app: { handleNodeRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> }) {
  const server = http.createServer((req, res) => void app.handleNodeRequest(req, res));
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
    },
  };
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real CLI (bin/usage-gateway) as a child process, without blocking this process's event
 * loop (the gateway under test runs in it). Only `env` decides the gateway URL and key.
 */
export function runCli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  delete childEnv.USAGE_GATEWAY_URL;
  delete childEnv.USAGE_GATEWAY_KEY;
  for (const [name, value] of Object.entries(env)) if (value !== undefined) childEnv[name] = value;
  return outputOf(spawn(path.join(projectRoot, 'bin/usage-gateway'), args, { cwd: projectRoot, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** A spawned process's exit code and everything it wrote (spawned with stdout and stderr piped). */
export function outputOf(child: ChildProcess): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}
