/**
 * The canvas API: `chain`, `group` and `chord` compose task signatures (`task.s(args)`, `task.s()`)
 * and each other; `.enqueue()` stores the canvas and enqueues its first members, and returns a
 * {@link CanvasHandle}. Types follow results where TypeScript can: a chain member that takes its
 * input (`task.s()`) must accept what the member before it resolves.
 */
import { TasukiError, UnknownQueueError } from '../errors.js';
import { Signature } from '../task/signature.js';
import { TaskHandle } from '../task/task.js';
import { formatTaskId } from '../wire/ids.js';
import {
  memberLocal,
  newCanvasLocal,
  type CanvasDefinition,
  type CanvasNode,
  type ListNode,
} from './definition.js';
import { CanvasHandle } from './handle.js';
import { MemberNotStarted, runtimeOf, type CanvasHost, type Start } from './runtime.js';

/** Anything a canvas is made of: a task signature, a chain or a group (a chord is a chain). */
export type Canvas<In, Out> = Signature<In, Out> | Chain<In, Out> | Group<In, Out>;

/** Any canvas member, whatever it takes and resolves. */
export type AnyCanvas = Signature<never, unknown> | Chain<never, unknown> | Group<never, unknown>;

/** What a canvas member resolves. */
export type OutputOf<C> = C extends { readonly __out: () => infer O } ? O : never;

/** What every member of a list accepts (the intersection of their inputs). */
export type InputOfAll<M extends readonly AnyCanvas[]> = [M[number]] extends [
  { readonly __in: (input: infer I) => void },
]
  ? I
  : never;

/** A group's result: its members' results, in order. */
export type OutputsOf<M extends readonly AnyCanvas[]> = { -readonly [K in keyof M]: OutputOf<M[K]> };

/** A list of members: a {@link Chain} or a {@link Group}. */
abstract class Members<In, Out> {
  /** Phantom: the input the list accepts. Never set. */
  declare readonly __in: (input: In) => void;
  /** Phantom: what the list resolves. Never set. */
  declare readonly __out: () => Out;

  constructor(
    readonly kind: 'chain' | 'group',
    readonly members: readonly AnyCanvas[],
  ) {
    checkMembers(kind, members);
  }

  /**
   * Stores the canvas and enqueues its first member(s). Everything is checked first (bound
   * arguments against their schemas, queues, the head has arguments); on any error nothing is written.
   */
  enqueue(this: Members<unknown, Out>): Promise<CanvasHandle<Out>> {
    return enqueueCanvas<Out>(this);
  }
}

/** Members run one after another, each with the previous one's result; resolves the last one's. */
export class Chain<In, Out> extends Members<In, Out> {
  declare readonly kind: 'chain';

  constructor(members: readonly AnyCanvas[]) {
    super('chain', members);
  }
}

/** Members run side by side, each with the group's input; resolves their results in order. */
export class Group<In, Out> extends Members<In, Out> {
  declare readonly kind: 'group';

  constructor(members: readonly AnyCanvas[]) {
    super('group', members);
  }
}

function checkMembers(kind: string, members: readonly unknown[]): void {
  if (!Array.isArray(members) || members.length === 0) {
    throw new TasukiError('E_CANVAS', `a ${kind} needs at least one member (got ${JSON.stringify(members)})`);
  }
  members.forEach((m, i) => {
    if (!(m instanceof Signature || m instanceof Members)) {
      throw new TasukiError(
        'E_CANVAS',
        `${kind} member [${i}] is not a canvas member; use task.s(args), task.s(), chain(), group() or chord()`,
      );
    }
  });
}

/**
 * Runs members one after another: each takes the previous one's result as its arguments (a member
 * made with `task.s()`), or ignores it (`task.s(args)`). Resolves the last member's result. Typed
 * for up to eight members; nest chains for more, or pass an array (untyped).
 *
 * @example
 * ```ts
 * const handle = await chain(resize.s({ url, width: 640 }), upload.s(), notify.s()).enqueue();
 * await handle.result();
 * ```
 */
export function chain<I, A>(a: Canvas<I, A>): Chain<I, A>;
export function chain<I, A, B>(a: Canvas<I, A>, b: Canvas<A, B>): Chain<I, B>;
export function chain<I, A, B, C>(a: Canvas<I, A>, b: Canvas<A, B>, c: Canvas<B, C>): Chain<I, C>;
export function chain<I, A, B, C, D>(
  a: Canvas<I, A>,
  b: Canvas<A, B>,
  c: Canvas<B, C>,
  d: Canvas<C, D>,
): Chain<I, D>;
export function chain<I, A, B, C, D, E>(
  a: Canvas<I, A>,
  b: Canvas<A, B>,
  c: Canvas<B, C>,
  d: Canvas<C, D>,
  e: Canvas<D, E>,
): Chain<I, E>;
export function chain<I, A, B, C, D, E, F>(
  a: Canvas<I, A>,
  b: Canvas<A, B>,
  c: Canvas<B, C>,
  d: Canvas<C, D>,
  e: Canvas<D, E>,
  f: Canvas<E, F>,
): Chain<I, F>;
export function chain<I, A, B, C, D, E, F, G>(
  a: Canvas<I, A>,
  b: Canvas<A, B>,
  c: Canvas<B, C>,
  d: Canvas<C, D>,
  e: Canvas<D, E>,
  f: Canvas<E, F>,
  g: Canvas<F, G>,
): Chain<I, G>;
export function chain<I, A, B, C, D, E, F, G, H>(
  a: Canvas<I, A>,
  b: Canvas<A, B>,
  c: Canvas<B, C>,
  d: Canvas<C, D>,
  e: Canvas<D, E>,
  f: Canvas<E, F>,
  g: Canvas<F, G>,
  h: Canvas<G, H>,
): Chain<I, H>;
export function chain(members: readonly AnyCanvas[]): Chain<unknown, unknown>;
export function chain(...members: unknown[]): Chain<unknown, unknown> {
  const list = members.length === 1 && Array.isArray(members[0]) ? (members[0] as unknown[]) : members;
  return new Chain(list as AnyCanvas[]);
}

/**
 * Runs members side by side (on any queues), each with the group's input when it takes one; resolves
 * their results in the order given, whatever order they finish in.
 *
 * @example
 * ```ts
 * const sizes = await (await group([thumb.s({ url, w: 64 }), thumb.s({ url, w: 256 })]).enqueue()).result();
 * ```
 */
export function group<const M extends readonly AnyCanvas[]>(members: M): Group<InputOfAll<M>, OutputsOf<M>> {
  return new Group(members);
}

/**
 * A group, then `callback` with all the group's results in order (a chord is `chain(group(header),
 * callback)`). The callback runs exactly once, after the last member succeeded — never if one failed.
 *
 * @example
 * ```ts
 * const total = await (await chord([count.s({ shard: 1 }), count.s({ shard: 2 })], sum.s()).enqueue()).result();
 * ```
 */
export function chord<const M extends readonly AnyCanvas[], R>(
  header: M,
  callback: Canvas<OutputsOf<M>, R>,
): Chain<InputOfAll<M>, R> {
  return new Chain([new Group(header), callback]);
}

function isCanvasHost(host: object): host is CanvasHost {
  const h = host as Partial<CanvasHost>;
  return (
    typeof h.getTaskDefinition === 'function' && typeof h.resultTtlMs === 'number' && h.keys !== undefined
  );
}

interface Leaf {
  sig: Signature<never, unknown>;
  node: number;
  path: string;
}

/** Flattens the tree into nodes (0 is the root), leaves in the order they appear. */
function flatten(root: AnyCanvas): { nodes: CanvasNode[]; leaves: Leaf[] } {
  const nodes: CanvasNode[] = [];
  const leaves: Leaf[] = [];
  const visit = (c: AnyCanvas, parent: number, position: number, path: string): number => {
    const index = nodes.length;
    if (c instanceof Signature) {
      nodes.push(
        c.bound
          ? { k: 't', t: c.task.name, q: c.queue, b: 1, a: c.args, p: parent, i: position }
          : { k: 't', t: c.task.name, q: c.queue, p: parent, i: position },
      );
      leaves.push({ sig: c, node: index, path });
      return index;
    }
    const node: ListNode = { k: c instanceof Chain ? 'c' : 'g', m: [], p: parent, i: position };
    nodes.push(node);
    c.members.forEach((m, j) => node.m.push(visit(m, index, j, `${path}[${j}]`)));
    return index;
  };
  visit(root, -1, 0, root.kind);
  return { nodes, leaves };
}

/** Throws `E_CANVAS` when a member would start without arguments (nothing comes before it). */
function checkHeads(nodes: readonly CanvasNode[], leaves: readonly Leaf[]): void {
  const walk = (index: number, hasInput: boolean): void => {
    const n = nodes[index] as CanvasNode;
    if (n.k === 't') {
      if (n.b !== 1 && !hasInput) {
        const leaf = leaves.find((l) => l.node === index) as Leaf;
        throw new TasukiError(
          'E_CANVAS',
          `${leaf.path}: task "${n.t}" takes the previous member's result, but nothing comes before it; ` +
            `give it arguments: ${n.t.replace(/\W/g, '_')}.s(args)`,
        );
      }
      return;
    }
    n.m.forEach((m, j) => walk(m, n.k === 'g' ? hasInput : j > 0 || hasInput));
  };
  walk(0, false);
}

/** Largest stored definition (bound arguments included), bytes: a canvas carries data by reference. */
const DEFINITION_MAX_BYTES = 1024 * 1024;

async function enqueueCanvas<Out>(root: AnyCanvas): Promise<CanvasHandle<Out>> {
  const { nodes, leaves } = flatten(root);
  const first = leaves[0] as Leaf;
  const host = first.sig.task.host;
  if (!isCanvasHost(host)) {
    throw new TasukiError('E_CANVAS', `task "${first.sig.task.name}" does not belong to a tasuki() app`);
  }
  for (const leaf of leaves) {
    if (leaf.sig.task.host !== host) {
      throw new TasukiError(
        'E_CANVAS',
        `${leaf.path}: task "${leaf.sig.task.name}" belongs to another app than task "${first.sig.task.name}"; a canvas lives in one app`,
      );
    }
    if (!host.queues.includes(leaf.sig.queue)) {
      throw new UnknownQueueError(leaf.sig.queue, host.queues, `${leaf.path}: the canvas was not enqueued`);
    }
  }
  checkHeads(nodes, leaves);
  for (const leaf of leaves) {
    if (leaf.sig.bound) await leaf.sig.task.checkArgs(leaf.sig.args, leaf.path);
  }
  const now = Date.now();
  const def: CanvasDefinition = { v: 1, id: newCanvasLocal(now), q: first.sig.queue, at: now, n: nodes };
  const encoded = JSON.stringify(def);
  if (Buffer.byteLength(encoded) > DEFINITION_MAX_BYTES) {
    throw new TasukiError(
      'E_CANVAS',
      `the canvas's bound arguments take ${Buffer.byteLength(encoded)} bytes, over ${DEFINITION_MAX_BYTES}; ` +
        'pass big data by reference (a key, a URL) instead of inside a canvas',
    );
  }
  const runtime = runtimeOf(host);
  let starts: Start[];
  try {
    starts = runtime.prepare(def, 0, undefined);
  } catch (err) {
    throw err instanceof MemberNotStarted ? err.reason : err;
  }
  await runtime.open(def, encoded);
  await runtime.start(starts);
  const members = leaves.map((l) => {
    const queue = l.sig.queue;
    return new TaskHandle(host, formatTaskId(memberLocal(def, l.node), queue), queue, l.sig.task.name);
  });
  return new CanvasHandle<Out>(host, runtime, formatTaskId(def.id, def.q), members);
}
