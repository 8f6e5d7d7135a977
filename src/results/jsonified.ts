/**
 * The type of a value after a round trip through JSON (`JSON.parse(JSON.stringify(value))`), which
 * is what a task's result is: the worker stores the handler's return value as JSON and `result()`
 * parses it. So a `Date` comes back as a string, a `Map` as `{}`, and properties that JSON drops
 * (undefined, functions, symbols) are gone.
 *
 * The rules, as JSON.stringify applies them:
 * - `toJSON()` is respected: a `Date` becomes `string`, any object becomes what its toJSON returns.
 * - string, number, boolean and null stay (NaN and Infinity become null; types cannot say which
 *   numbers those are).
 * - undefined, functions and symbols: dropped as properties, `null` as array elements, `undefined`
 *   at the top level (the result is then absent).
 * - bigint cannot be stored (JSON.stringify throws, the attempt fails): `never`.
 * - Map, Set, WeakMap, WeakSet, RegExp, Error and promises serialise as `{}`: `Record<string, never>`.
 * - Arrays and tuples keep their shape, element by element; objects keep their string keys.
 */
export type Jsonified<T> = unknown extends T
  ? T // any and unknown stay as they are
  : T extends { toJSON(...args: never[]): infer J }
    ? Jsonified<J>
    : T extends string | number | boolean | null
      ? T
      : T extends bigint
        ? never
        : T extends Dropped
          ? undefined
          : T extends Opaque
            ? Record<string, never>
            : T extends readonly unknown[]
              ? { -readonly [I in keyof T]: JsonifiedElement<T[I]> }
              : T extends object
                ? JsonifiedObject<T>
                : never;

/** Values JSON leaves out of objects (and turns into null in arrays). */
type Dropped = undefined | void | symbol | ((...args: never[]) => unknown);

/** Objects whose JSON form is `{}`: their data is not in own enumerable properties. */
type Opaque =
  | ReadonlyMap<unknown, unknown>
  | ReadonlySet<unknown>
  | WeakMap<object, unknown>
  | WeakSet<object>
  | RegExp
  | Error
  | PromiseLike<unknown>;

type JsonifiedElement<V> = V extends Dropped ? null : Jsonified<V>;

/** Keys whose value is always kept, sometimes dropped (optional afterwards), or always dropped. */
type KeptKeys<T> = {
  [K in keyof T]-?: K extends symbol ? never : [Extract<T[K], Dropped>] extends [never] ? K : never;
}[keyof T];
type MaybeKeys<T> = {
  [K in keyof T]-?: K extends symbol
    ? never
    : [Extract<T[K], Dropped>] extends [never]
      ? never
      : [Exclude<T[K], Dropped>] extends [never]
        ? never
        : K;
}[keyof T];

type JsonifiedObject<T> = Flatten<
  { [K in KeptKeys<T>]: Jsonified<T[K]> } & { [K in MaybeKeys<T>]?: Jsonified<Exclude<T[K], Dropped>> }
>;

/** One object type instead of an intersection, for readable hovers and errors. */
type Flatten<T> = { [K in keyof T]: T[K] } & {};
