import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isTasukiApp, TasukiError, type Tasuki, type TasukiErrorCode } from '../index.js';
import { quote } from '../util/options.js';

/** What an app module may export besides the app. */
export interface AppModule {
  app: Tasuki;
  /** Optional demo run by `tasuki dev`: enqueue tasks and wait for their results. */
  demo?: (app: Tasuki) => Promise<void>;
}

/** True when `x` is a tasuki app, whichever copy of the package made it. */
export function isApp(x: unknown): x is Tasuki {
  return isTasukiApp(x);
}

/** A TasukiError from any copy of the package (its class may not be this copy's). */
export function isTasukiError(err: unknown): err is Error & { code: TasukiErrorCode } {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === 'string' && code.startsWith('E_');
}

/** The app module's absolute path; throws a clear error when there is no such file. */
export function appModulePath(path: string): string {
  const file = resolve(path);
  if (!existsSync(file)) {
    throw new TasukiError(
      'E_CONFIG',
      `app module "${path}" not found (resolved to ${file}); pass --app <file>`,
    );
  }
  return file;
}

let tsxRegistered = false;

/** TypeScript apps load through tsx, imported only when one is loaded (it is an optional dependency). */
async function registerTsx(path: string): Promise<void> {
  if (tsxRegistered) return;
  let api: { register: () => unknown };
  try {
    api = await import('tsx/esm/api');
  } catch (err) {
    throw new TasukiError(
      'E_CONFIG',
      `app module "${path}" is TypeScript, which loads through the tsx package, and tsx is not installed ` +
        `(${firstLine(err)}). Install it (\`npm install tsx\`) or compile the app and pass the .js file.`,
      { cause: err },
    );
  }
  api.register();
  tsxRegistered = true;
}

function firstLine(err: unknown): string {
  return String(err instanceof Error ? err.message : err).split('\n')[0] ?? '';
}

/** A path as the user would write it: relative to the working directory when it is below it. */
function shown(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith('..') ? rel : file;
}

/** Where a SyntaxError is, when its message does not say: `node --check` prints `file:line`. */
function syntaxLocation(file: string): string | undefined {
  const check = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 10_000 });
  const first = check.status === 0 ? undefined : check.stderr.split('\n')[0];
  const m = first ? /^(?:file:\/\/)?(.+):(\d+)$/.exec(first.trim()) : null;
  return m ? `${shown(decodeURI(m[1] as string))}:${m[2]}` : undefined;
}

/** The first stack frame in the user's code (not Node's, not a dependency's), as `file:line:col`. */
function userFrame(err: Error): string | undefined {
  for (const line of (err.stack ?? '').split('\n').slice(1)) {
    const m = /at (?:.*\()?(?:file:\/\/)?([^()]+):(\d+):(\d+)\)?\s*$/.exec(line.trim());
    if (m && !m[1]?.startsWith('node:') && !m[1]?.includes('/node_modules/')) {
      return `${shown(decodeURI(m[1] as string))}:${m[2]}:${m[3]}`;
    }
  }
  return undefined;
}

/** Why importing the app module failed, in one line that names the file (and line where known). */
function loadError(path: string, file: string, err: unknown): TasukiError {
  const what = `app module "${path}"`;
  if (!(err instanceof Error))
    return new TasukiError('E_CONFIG', `${what} threw ${quote(err)} while loading`);
  const code = (err as { code?: unknown }).code;
  // tsx (esbuild): "Transform failed with 1 error:\n/abs/app.ts:2:10: ERROR: Unexpected ..." (its
  // columns count from 0; shown from 1, as editors and Node do).
  const esbuild = /^(.+?):(\d+):(\d+): ERROR: (.*)$/m.exec(err.message);
  if (esbuild) {
    const [, f, line, col, msg] = esbuild as unknown as [string, string, string, string, string];
    return new TasukiError(
      'E_CONFIG',
      `${what} has a syntax error at ${shown(f)}:${line}:${Number(col) + 1}: ${msg}`,
      {
        cause: err,
      },
    );
  }
  if (err.name === 'SyntaxError') {
    const at = syntaxLocation(file);
    const where = at ? `at ${at}` : '(in a module it imports; run `node --check` on that file to find it)';
    return new TasukiError('E_CONFIG', `${what} has a syntax error ${where}: ${firstLine(err)}`, {
      cause: err,
    });
  }
  if (typeof code === 'string' && code.startsWith('ERR_')) {
    const hint =
      code !== 'ERR_MODULE_NOT_FOUND'
        ? ''
        : /Cannot find package/.test(err.message)
          ? '; install that package, or fix the import'
          : '; fix the import';
    return new TasukiError('E_CONFIG', `${what} could not be loaded: ${firstLine(err)}${hint}`, {
      cause: err,
    });
  }
  const at = userFrame(err);
  const message = `${what} failed while loading${at ? ` (at ${at})` : ''}: ${err.name}: ${firstLine(err)}`;
  return new TasukiError(isTasukiError(err) ? err.code : 'E_CONFIG', message, { cause: err });
}

/**
 * Imports the module that defines the app (`.js`, or `.ts` through tsx) and finds the app in its
 * `app` or default export. Every failure is one clear `TasukiError` naming the module.
 */
export async function loadApp(path: string): Promise<AppModule> {
  const file = appModulePath(path);
  if (/\.[cm]?ts$/.test(file)) await registerTsx(path);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw loadError(path, file, err);
  }
  const app = mod.app ?? mod.default;
  if (!isApp(app)) {
    throw new TasukiError(
      'E_CONFIG',
      `app module "${path}" exports no tasuki app: export it as \`export const app = tasuki({...})\` or as the default export`,
    );
  }
  const demo = mod.demo;
  return { app, ...(typeof demo === 'function' ? { demo: demo as AppModule['demo'] } : {}) };
}
