/**
 * `tasuki payloads gc|migrate`: the payload store's upkeep from the command line, over the app's
 * store (`--app`) or one named directly (`--store`, default `TASUKI_PAYLOAD_STORE`). A thin layer
 * over `app.gcPayloads()` / `app.migratePayloads()` and the stores' `gc()` / `migrate()`.
 */
import type { Command } from 'commander';
import { openPayloadStore, TasukiError, type PayloadStore } from '../index.js';
import { loadApp } from './load-app.js';

interface PayloadCli {
  app?: string;
  store?: string;
  json?: boolean;
}

/** Runs `fn` on the store the options name, and closes what was opened for it. */
async function withStore<T>(o: PayloadCli, fn: (store: PayloadStore) => Promise<T>): Promise<T> {
  if (o.app !== undefined && o.store !== undefined) {
    throw new TasukiError('E_OPTIONS', 'give --app or --store, not both: the app names its own store');
  }
  if (o.app !== undefined) {
    const { app } = await loadApp(o.app);
    try {
      if (!app.payloadStore) {
        throw new TasukiError(
          'E_CONFIG',
          `the app in ${o.app} has no payload store (payloads.store, or TASUKI_PAYLOAD_STORE); nothing to do`,
        );
      }
      return await fn(app.payloadStore);
    } finally {
      await app.close();
    }
  }
  const spec = o.store ?? (process.env.TASUKI_PAYLOAD_STORE || undefined);
  if (spec === undefined) {
    throw new TasukiError(
      'E_OPTIONS',
      'which payload store? Pass --app <module>, --store <directory | postgres://...>, or set TASUKI_PAYLOAD_STORE',
    );
  }
  const store = openPayloadStore(spec);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

function storeOptions(cmd: Command): Command {
  return cmd
    .option('--app <module>', "module that exports the tasuki app (uses the app's payload store)")
    .option('--store <store>', 'a directory or a postgres:// URL (default TASUKI_PAYLOAD_STORE)')
    .option('--json', 'print JSON');
}

export function registerPayloads(program: Command): void {
  const payloads = program
    .command('payloads')
    .description('upkeep of the payload store that keeps big task arguments (claim checks)');

  storeOptions(payloads.command('gc'))
    .description('delete payloads whose TTL has passed')
    .action(async (o: PayloadCli) => {
      const { deleted, store } = await withStore(o, async (s) => ({
        deleted: await s.gc(),
        store: s.description,
      }));
      process.stdout.write(
        (o.json ? JSON.stringify({ deleted, store }) : `deleted ${deleted} expired payloads (${store})`) +
          '\n',
      );
    });

  storeOptions(payloads.command('migrate'))
    .description('create what the payload store needs (PostgreSQL: its table; filesystem: its directory)')
    .action(async (o: PayloadCli) => {
      const store = await withStore(o, async (s) => {
        await s.migrate();
        return s.description;
      });
      process.stdout.write((o.json ? JSON.stringify({ migrated: store }) : `migrated ${store}`) + '\n');
    });
}
