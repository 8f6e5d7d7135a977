import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { LUA_DIR, SCRIPT_KEYS, scriptSource } from '../../src/scripts/catalogue.js';
import { CLAIM_MESSAGE_FIELD, DEAD_FIELD, LUA_TOKENS, MESSAGE_FIELD } from '../../src/wire/fields.js';

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
    // A container command's subcommand comes before its key: XGROUP DELCONSUMER <key>,
    // MEMORY USAGE <key>, OBJECT IDLETIME <key>.
    const calls = [
      ...source.matchAll(
        /redis\.p?call\(?,?\s*'(\w+)'\s*,\s*(?:'(?:CREATECONSUMER|DELCONSUMER|CONSUMERS|GROUPS|USAGE|IDLETIME)'\s*,\s*)?([^,)]+)/g,
      ),
    ];
    for (const [call, command, firstArg] of calls) {
      if (['TIME', 'WAIT'].includes(command as string)) continue;
      assert.match(firstArg as string, /^KEYS\[/, `${name}.lua: ${call} must take its key from KEYS`);
    }
  }
});

test('stream field names in scripts come from the wire contract ($TOKENS), never literals', () => {
  for (const name of Object.keys(SCRIPT_KEYS)) {
    const raw = readFileSync(`${dir}/${name}.lua`, 'utf8');
    // Every XADD names its fields after the '*' id; each must be a token of src/wire/fields.ts.
    for (const [, fields] of raw.matchAll(/'XADD'[^\n]*?('\*',[^\n]*)\)/g)) {
      // Field names stand after the '*' id and after each value (a call's closing parenthesis).
      const literals = [...(fields as string).matchAll(/(?:'\*'|\))\s*,\s*'([^']*)'/g)].map(
        (m) => m[1] as string,
      );
      for (const literal of literals) {
        assert.match(literal, /^\$[A-Z_]+$/, `${name}.lua: XADD field ${literal} must be a $TOKEN`);
        assert.ok(literal.slice(1) in LUA_TOKENS, `${name}.lua: unknown token ${literal}`);
      }
    }
    const loaded = scriptSource(name);
    assert.doesNotMatch(loaded, /\$[A-Z_]+/, `${name}.lua: a token was left unreplaced`);
  }
  // A script that writes a message picks its field from the message's first byte (field_of).
  assert.match(scriptSource('enqueue_bulk'), new RegExp(`return '${MESSAGE_FIELD}'`));
  assert.match(scriptSource('enqueue_bulk'), new RegExp(`return '${CLAIM_MESSAGE_FIELD}'`));
  assert.match(scriptSource('finish'), new RegExp(`'\\*', '${DEAD_FIELD}'`));
});

test('a shared Lua helper is pasted in where a script says `-- @include`, once, tokens replaced', () => {
  for (const name of ['dlq_retry', 'enqueue_bulk', 'enqueue_unique', 'handback', 'promote'] as const) {
    const raw = readFileSync(`${dir}/${name}.lua`, 'utf8');
    assert.match(raw, /^-- @include field_of\b/m, `${name}.lua includes field_of`);
    const loaded = scriptSource(name);
    assert.doesNotMatch(loaded, /@include/);
    assert.equal(loaded.split('local function field_of(').length, 2, `${name}: field_of defined once`);
    assert.doesNotMatch(loaded, /\$[A-Z_]+/);
  }
});
