// The `tasuki` command run from the TypeScript sources, for tests (bin/tasuki.js runs dist/).
import { main } from '../../src/cli/main.js';

// Exit when the command is done, even if a handler left a connection or timer open.
process.exit(await main(process.argv));
