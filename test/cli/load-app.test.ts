/**
 * Loading `--app`: every way it can fail is one `tasuki: ...` line that names the module (and the
 * line of a syntax error), with exit code 2, never a raw stack.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCli } from '../support/cli.js';

// An app project of its own (ESM), outside this repository.
const dir = mkdtempSync(join(tmpdir(), 'tasuki-load-app-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const files: Record<string, string> = {
  'package.json': '{ "type": "module" }\n',
  'syntax.ts': "import { z } from 'zod';\n\nexport const app = z.object({ a: });\n",
  'syntax.mjs': 'const a = 1;\nconst b = 2;\nexport const app = a +;\n',
  'missing.ts': "import { helper } from 'no-such-package-for-tasuki-tests';\nexport const app = helper;\n",
  'relative.mjs': "export { app } from './not-there.js';\n",
  'throws.ts':
    "const ready = false;\nif (!ready) throw new Error('config missing');\nexport const app = 1;\n",
  'no-app.mjs': 'export const notAnApp = 1;\n',
};
for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);

async function load(name: string): Promise<string> {
  const run = await runCli(['worker', '--app', join(dir, name)]);
  assert.equal(run.code, 2, run.stderr);
  assert.equal(run.stdout, '');
  assert.equal(run.stderr.split('\n').length, 2, `one line expected:\n${run.stderr}`);
  return run.stderr.replaceAll(dir, '<dir>');
}

test('a syntax error names the file and line (TypeScript through tsx, and plain JavaScript)', async () => {
  assert.equal(
    await load('syntax.ts'),
    'tasuki: app module "<dir>/syntax.ts" has a syntax error at <dir>/syntax.ts:3:34: Unexpected "}"\n',
  );
  assert.equal(
    await load('syntax.mjs'),
    `tasuki: app module "<dir>/syntax.mjs" has a syntax error at <dir>/syntax.mjs:3: Unexpected token ';'\n`,
  );
});

test('a missing import is one line saying what is missing', async () => {
  assert.equal(
    await load('missing.ts'),
    `tasuki: app module "<dir>/missing.ts" could not be loaded: Cannot find package 'no-such-package-for-tasuki-tests' ` +
      `imported from <dir>/missing.ts; install that package, or fix the import\n`,
  );
  assert.equal(
    await load('relative.mjs'),
    `tasuki: app module "<dir>/relative.mjs" could not be loaded: Cannot find module '<dir>/not-there.js' ` +
      `imported from <dir>/relative.mjs; fix the import\n`,
  );
});

test('an error thrown while the module loads names where it was thrown; a module with no app says so', async () => {
  assert.equal(
    await load('throws.ts'),
    'tasuki: app module "<dir>/throws.ts" failed while loading (at <dir>/throws.ts:2:19): Error: config missing\n',
  );
  assert.match(
    await load('no-app.mjs'),
    /^tasuki: app module "<dir>\/no-app\.mjs" exports no tasuki app: export it as/,
  );
});
