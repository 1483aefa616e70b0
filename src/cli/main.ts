/**
 * The `usage-gateway` command line (bin/usage-gateway runs this file with tsx); the program itself
 * (every command, `main`) is ./program.ts.
 */
import { main } from './program.js';

// `usage-gateway ingest --help | head`: a closed stdout is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

process.exitCode = await main();
