#!/usr/bin/env node
import { main } from '../dist/cli/main.js';

main(process.argv).then(
  // Exit when the command is done, even if a handler left a connection or timer open.
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  },
);
