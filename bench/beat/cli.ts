// The `tasuki` command from the TypeScript sources (as test/support/tasuki-cli.ts), for bench/beat.ts.
import { run } from '../../src/cli/main.js';

await run(process.argv);
