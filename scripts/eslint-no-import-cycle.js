// @ts-check
/**
 * ESLint rule `tasuki/no-import-cycle`: no module under `root` (default `src`) may import, through
 * any chain of its static imports and re-exports, a module that imports it back. Unlike
 * `import-x/no-cycle`, an `import type` edge counts too (unless `allowTypeOnly: true`): a cycle of
 * types still ties two layers together, and it turns into a load-order bug the day one of its edges
 * becomes a value import. Dynamic `import()` is exempt (the way to defer a dependency on purpose).
 *
 * The module graph is read with TypeScript's parser (syntax only, no type information), from every
 * `.ts` file under `root`, and kept between files; a file is read again when its mtime changes.
 * Specifiers are resolved the NodeNext way tasuki writes them: relative, with `.js` standing for the
 * `.ts` source (`./x.js` is `./x.ts`); bare specifiers (packages, `node:`) are not part of the graph.
 */
import { readdirSync, statSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

/** @typedef {{ spec: string, target: string, typeOnly: boolean }} Edge */

/** Per root: file -> { mtimeMs, edges }. */
const graphs = new Map();

/** @param {string} dir @returns {string[]} */
function tsFiles(dir) {
  /** @type {string[]} */
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...tsFiles(p));
    else if (/\.(c|m)?ts$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** @param {string} from @param {string} spec @returns {string | undefined} */
function resolveSpec(from, spec) {
  if (!spec.startsWith('./') && !spec.startsWith('../')) return undefined;
  const base = resolve(dirname(from), spec);
  const candidates = [
    base
      .replace(/\.js$/, '.ts')
      .replace(/\.mjs$/, '.mts')
      .replace(/\.cjs$/, '.cts'),
    base,
    `${base}.ts`,
    join(base, 'index.ts'),
  ];
  return candidates.find((c) => /\.(c|m)?ts$/.test(c) && existsSync(c));
}

/** @param {ts.Node} node */
function isTypeOnlyImport(node) {
  if (ts.isImportDeclaration(node)) {
    const clause = node.importClause;
    if (!clause) return false; // `import './x.js'` runs the module
    if (clause.isTypeOnly) return true;
    const bindings = clause.namedBindings;
    return (
      clause.name === undefined &&
      bindings !== undefined &&
      ts.isNamedImports(bindings) &&
      bindings.elements.length > 0 &&
      bindings.elements.every((e) => e.isTypeOnly)
    );
  }
  if (ts.isExportDeclaration(node)) {
    if (node.isTypeOnly) return true;
    const clause = node.exportClause;
    return (
      clause !== undefined &&
      ts.isNamedExports(clause) &&
      clause.elements.length > 0 &&
      clause.elements.every((e) => e.isTypeOnly)
    );
  }
  return false;
}

/** @param {string} file @returns {Edge[]} */
function readEdges(file) {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false);
  /** @type {Edge[]} */
  const edges = [];
  for (const statement of source.statements) {
    if (!ts.isImportDeclaration(statement) && !ts.isExportDeclaration(statement)) continue;
    const specifier = statement.moduleSpecifier;
    if (!specifier || !ts.isStringLiteral(specifier)) continue;
    const target = resolveSpec(file, specifier.text);
    if (target) edges.push({ spec: specifier.text, target, typeOnly: isTypeOnlyImport(statement) });
  }
  return edges;
}

/**
 * The graph of `root` as it is on disk now, and its strongly connected components.
 * @param {string} root
 * @returns {{ files: Map<string, { mtimeMs: number, edges: Edge[] }>, component: (allowTypeOnly: boolean) => Map<string, number> }}
 */
function graphOf(root) {
  let g = graphs.get(root);
  if (!g) {
    g = { files: new Map(), components: new Map(), key: '' };
    graphs.set(root, g);
  }
  const seen = new Set();
  let changed = false;
  for (const file of tsFiles(root)) {
    seen.add(file);
    const mtimeMs = statSync(file).mtimeMs;
    const known = g.files.get(file);
    if (known && known.mtimeMs === mtimeMs) continue;
    g.files.set(file, { mtimeMs, edges: readEdges(file) });
    changed = true;
  }
  for (const file of [...g.files.keys()]) {
    if (!seen.has(file)) {
      g.files.delete(file);
      changed = true;
    }
  }
  if (changed) g.components.clear();
  const graph = g;
  return {
    files: graph.files,
    component(allowTypeOnly) {
      let c = graph.components.get(allowTypeOnly);
      if (!c) {
        c = stronglyConnected(graph.files, allowTypeOnly);
        graph.components.set(allowTypeOnly, c);
      }
      return c;
    },
  };
}

/**
 * Tarjan's algorithm: file -> component number, for the files in a component of two or more (a
 * file that imports itself is not worth a rule).
 * @param {Map<string, { edges: Edge[] }>} files
 * @param {boolean} allowTypeOnly
 */
function stronglyConnected(files, allowTypeOnly) {
  /** @type {Map<string, number>} */
  const index = new Map();
  /** @type {Map<string, number>} */
  const low = new Map();
  /** @type {string[]} */
  const stack = [];
  const onStack = new Set();
  /** @type {Map<string, number>} */
  const component = new Map();
  let next = 0;
  let count = 0;
  /** @param {string} v */
  const targets = (v) =>
    (files.get(v)?.edges ?? [])
      .filter((e) => !(allowTypeOnly && e.typeOnly) && files.has(e.target))
      .map((e) => e.target);

  /** @param {string} root */
  const visit = (root) => {
    // Iterative, so a deep import chain cannot overflow the stack.
    /** @type {Array<{ v: string, out: string[], i: number }>} */
    const work = [{ v: root, out: targets(root), i: 0 }];
    index.set(root, next);
    low.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = /** @type {{ v: string, out: string[], i: number }} */ (work[work.length - 1]);
      if (frame.i < frame.out.length) {
        const w = /** @type {string} */ (frame.out[frame.i++]);
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          work.push({ v: w, out: targets(w), i: 0 });
        } else if (onStack.has(w)) {
          low.set(frame.v, Math.min(Number(low.get(frame.v)), Number(index.get(w))));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.v, Math.min(Number(low.get(parent.v)), Number(low.get(frame.v))));
      if (low.get(frame.v) === index.get(frame.v)) {
        /** @type {string[]} */
        const members = [];
        for (;;) {
          const w = /** @type {string} */ (stack.pop());
          onStack.delete(w);
          members.push(w);
          if (w === frame.v) break;
        }
        if (members.length > 1) {
          for (const m of members) component.set(m, count);
          count++;
        }
      }
    }
  };
  for (const v of files.keys()) if (!index.has(v)) visit(v);
  return component;
}

/**
 * Shortest chain of imports from `from` back to `to`, inside one component.
 * @param {Map<string, { edges: Edge[] }>} files
 * @param {Map<string, number>} component
 * @param {string} from
 * @param {string} to
 * @param {boolean} allowTypeOnly
 */
function shortestPath(files, component, from, to, allowTypeOnly) {
  const c = component.get(from);
  /** @type {Map<string, string | null>} */
  const previous = new Map([[from, null]]);
  const queue = [from];
  while (queue.length > 0) {
    const v = /** @type {string} */ (queue.shift());
    if (v === to) break;
    for (const e of files.get(v)?.edges ?? []) {
      if ((allowTypeOnly && e.typeOnly) || component.get(e.target) !== c || previous.has(e.target)) continue;
      previous.set(e.target, v);
      queue.push(e.target);
    }
  }
  /** @type {string[]} */
  const path = [];
  for (let v = /** @type {string | null | undefined} */ (to); v; v = previous.get(v)) path.unshift(v);
  return path;
}

/**
 * `import type`, `export type`, or only `type` specifiers (typescript-eslint's importKind/exportKind).
 * @param {any} node
 */
function isTypeOnlyNode(node) {
  const kind = node.type === 'ImportDeclaration' ? 'importKind' : 'exportKind';
  if (node[kind] === 'type') return true;
  const specifiers = /** @type {any[]} */ (node.specifiers ?? []);
  return specifiers.length > 0 && specifiers.every((s) => s[kind] === 'type');
}

/** @type {import('eslint').Rule.RuleModule} */
const noImportCycle = {
  meta: {
    type: 'problem',
    docs: {
      description: 'Forbid import cycles between the modules under a directory, `import type` included.',
    },
    schema: [
      {
        type: 'object',
        properties: { root: { type: 'string' }, allowTypeOnly: { type: 'boolean' } },
        additionalProperties: false,
      },
    ],
    messages: {
      cycle: 'Import cycle: {{path}}. Move what both sides need into a module that neither imports.',
    },
  },
  create(context) {
    const options = context.options[0] ?? {};
    const root = resolve(context.cwd, options.root ?? 'src');
    const allowTypeOnly = options.allowTypeOnly === true;
    const file = context.physicalFilename;
    if (relative(root, file).startsWith('..')) return {};
    /** @type {ReturnType<typeof graphOf> | undefined} */
    let graph;

    /** @param {import('estree').ImportDeclaration | import('estree').ExportNamedDeclaration | import('estree').ExportAllDeclaration} node */
    const check = (node) => {
      const spec = node.source?.value;
      if (typeof spec !== 'string') return;
      const target = resolveSpec(file, spec);
      if (!target) return;
      // Read the graph (again, if a file changed) once per linted file, at its first relative import.
      graph ??= graphOf(root);
      const { files } = graph;
      const components = graph.component(allowTypeOnly);
      const mine = components.get(file);
      if (mine === undefined || components.get(target) !== mine) return;
      // The graph is read from disk: skip an edge that exists only in unsaved editor text.
      if (!files.get(file)?.edges.some((e) => e.spec === spec)) return;
      if (allowTypeOnly && isTypeOnlyNode(node)) return;
      const chain = [file, ...shortestPath(files, components, target, file, allowTypeOnly)];
      context.report({
        node,
        messageId: 'cycle',
        data: { path: chain.map((f) => relative(context.cwd, f)).join(' → ') },
      });
    };
    return { ImportDeclaration: check, ExportNamedDeclaration: check, ExportAllDeclaration: check };
  },
};

/** The plugin: `plugins: { tasuki: plugin }`, rule `tasuki/no-import-cycle`. */
export default { rules: { 'no-import-cycle': noImportCycle } };
