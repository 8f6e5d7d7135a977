// The `tasuki` command run from the TypeScript sources, for tests: the same `run()` as
// bin/tasuki.js (which runs the built dist/), so tests never exercise a stale build.
import { run } from '../../src/cli/main.js';

await run(process.argv);
