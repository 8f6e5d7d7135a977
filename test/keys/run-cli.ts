/** Runs the tasuki CLI from the TypeScript sources (`node --import tsx test/keys/run-cli.ts ...`). */
import { main } from '../../src/cli/main.js';

process.exitCode = await main(process.argv);
