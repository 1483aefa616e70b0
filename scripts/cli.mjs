/** `usage-gateway` (bin/usage-gateway): src/cli/main.ts, compiled (scripts/compiled.mjs). */
import { runCompiled } from './compiled.mjs';

await runCompiled({ entry: 'src/cli/main.ts', name: 'usage-gateway-cli' });
