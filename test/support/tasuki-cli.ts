// The `tasuki` command run from the TypeScript sources, for tests (bin/tasuki.js runs dist/).
import { main } from '../../src/cli/main.js';

process.exitCode = await main(process.argv);
