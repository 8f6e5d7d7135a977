import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { LUA_DIR, SCRIPT_KEYS } from '../../src/scripts/catalogue.js';

const dir = fileURLToPath(LUA_DIR);

/** KEYS names from a script's header: `KEYS[1] name` lines, and `KEYS[n..] name` as `name...`. */
function headerKeys(source: string): string[] {
  const header = /^(?:#!lua[^\n]*\n)?--\[\[([\s\S]*?)\]\]/.exec(source)?.[1] ?? '';
  return [...header.matchAll(/^KEYS\[(\d+)(\.\.)?\]\s+(\S+)/gm)].map(
    ([, , rest, name]) => (rest ? `${name}...` : name) as string,
  );
}

test('every .lua file is in the catalogue and every catalogue entry has a file', () => {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.lua'))
    .map((f) => f.slice(0, -4))
    .sort();
  assert.deepEqual(files, Object.keys(SCRIPT_KEYS).sort());
});

test("each script's header declares the KEYS the catalogue passes, in order", () => {
  for (const [name, keys] of Object.entries(SCRIPT_KEYS)) {
    const source = readFileSync(`${dir}/${name}.lua`, 'utf8');
    assert.deepEqual(headerKeys(source), [...keys], `${name}.lua header`);
    assert.match(source, /^Returns:/m, `${name}.lua header must say what it returns`);
    assert.match(source, /^ARGV\[1(\.\.)?\]/m, `${name}.lua header must list ARGV`);
  }
});

test('scripts never build key names from strings: every key comes through KEYS', () => {
  for (const name of Object.keys(SCRIPT_KEYS)) {
    const source = readFileSync(`${dir}/${name}.lua`, 'utf8').replace(
      /^(?:#!lua[^\n]*\n)?--\[\[[\s\S]*?\]\]/,
      '',
    );
    const calls = [...source.matchAll(/redis\.p?call\(\s*'(\w+)'\s*,\s*([^,)]+)/g)];
    for (const [call, command, firstArg] of calls) {
      if (['TIME', 'WAIT'].includes(command as string)) continue;
      assert.match(firstArg as string, /^KEYS\[/, `${name}.lua: ${call} must take its key from KEYS`);
    }
  }
});
