import { Command, CommanderError } from 'commander';
import { TasukiError } from '../errors.js';
import { registerDev } from './dev.js';
import { registerDlq } from './dlq.js';
import { registerInspect } from './inspect.js';
import { registerKeys } from './keys.js';
import { registerWorker } from './worker.js';

/** Builds the `tasuki` command line. Each part registers its own subcommands. */
export function program(): Command {
  const p = new Command('tasuki')
    .description('distributed tasks on Redis: workers, results, locks and governed keys')
    .exitOverride()
    .showHelpAfterError();
  registerWorker(p);
  registerDev(p);
  registerDlq(p);
  registerInspect(p);
  registerKeys(p);
  return p;
}

/** Runs the CLI; resolves the exit code. Errors print one clear line, not a stack. */
export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof TasukiError) {
      console.error(`tasuki: ${err.message}`);
      return 2;
    }
    throw err;
  }
}
