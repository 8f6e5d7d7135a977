#!/usr/bin/env node
// The `tasuki` command, from the built package (dist/). Tests run the same `run()` from the
// TypeScript sources through test/support/tasuki-cli.ts.
import { run } from '../dist/cli/main.js';

await run(process.argv);
