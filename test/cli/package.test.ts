/**
 * The CLI as users get it: the package built from these sources, laid out as `npm install` would
 * (only what package.json `files` ships, dependencies beside it, and no tsx, which is optional),
 * run through its real bin/tasuki.js from a project directory of its own.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cliEnv, finished, ROOT } from '../support/cli.js';
import { spawn } from 'node:child_process';

const tmp = mkdtempSync(join(tmpdir(), 'tasuki-package-'));
const pkg = join(tmp, 'node_modules', 'tasuki');
const project = join(tmp, 'project');
after(() => rmSync(tmp, { recursive: true, force: true }));

before(
  () => {
    mkdirSync(project, { recursive: true });
    // Build dist/ from the sources into the installed package (tsc emits even if another part of the
    // tree has a type error at the moment; what matters here is the emitted CLI).
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const build = spawnSync(
      process.execPath,
      [
        tsc,
        '-p',
        'tsconfig.build.json',
        '--outDir',
        join(pkg, 'dist'),
        '--declaration',
        'false',
        '--sourceMap',
        'false',
      ],
      { cwd: ROOT, encoding: 'utf8' },
    );
    assert.ok(
      existsSync(join(pkg, 'dist', 'cli', 'main.js')),
      `build failed:\n${build.stdout}${build.stderr}`,
    );
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
    for (const entry of manifest.files) {
      // npm ships what exists of `files` (LICENSE may be absent from a work tree).
      if (entry !== 'dist' && existsSync(join(ROOT, entry))) {
        cpSync(join(ROOT, entry), join(pkg, entry), { recursive: true });
      }
    }
    cpSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
    for (const name of readdirSync(join(ROOT, 'node_modules'))) {
      if (name === 'tsx' || name === 'tasuki' || name.startsWith('.')) continue;
      symlinkSync(join(ROOT, 'node_modules', name), join(tmp, 'node_modules', name));
    }
  },
  { timeout: 170_000 },
);

/** Runs the installed package's bin/tasuki.js in the project directory. */
function tasuki(args: string[]) {
  const child = spawn(process.execPath, [join(pkg, 'bin', 'tasuki.js'), ...args], {
    cwd: project,
    env: cliEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return finished(child, 90_000);
}

test('installed package: tasuki --version and tasuki dev work with no example app of the project and no tsx', async () => {
  const version = await tasuki(['--version']);
  assert.equal(version.code, 0, version.stderr);
  assert.equal(
    version.stdout,
    `${(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version}\n`,
  );

  const dev = await tasuki(['dev']);
  assert.equal(dev.code, 0, dev.stderr + dev.stdout);
  assert.match(dev.stderr, /^tasuki dev: started redis-server \(pid \d+\)/);
  assert.match(dev.stdout, /; result: 5\n/);
  assert.match(dev.stdout, /^state of the first task: succeeded$/m);
});

test('installed package without tsx: a .ts app is a clear error saying to install tsx', async () => {
  writeFileSync(join(project, 'app.ts'), 'export const app: unknown = undefined;\n');
  const run = await tasuki(['worker', '--app', 'app.ts']);
  assert.equal(run.code, 2);
  assert.equal(
    run.stderr.replace(/\(Cannot find package 'tsx' imported from [^)]+\)/, '(Cannot find package tsx)'),
    'tasuki: app module "app.ts" is TypeScript, which loads through the tsx package, and tsx is not installed ' +
      '(Cannot find package tsx). Install it (`npm install tsx`) or compile the app and pass the .js file.\n',
  );
});
