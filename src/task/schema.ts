/** Argument schemas: any Standard Schema (zod, valibot, arktype...), validated sync or async. */
import type { FieldIssue } from '../errors.js';

/**
 * The Standard Schema interface (standardschema.dev), which zod, valibot and arktype implement:
 * tasuki takes any of them as a task's argument schema.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => SchemaResult<Output> | Promise<SchemaResult<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

type SchemaResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | {
      readonly issues: ReadonlyArray<{
        readonly message: string;
        readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
      }>;
    };

export type InferInput<S extends StandardSchemaV1> = NonNullable<S['~standard']['types']>['input'];
export type InferOutput<S extends StandardSchemaV1> = NonNullable<S['~standard']['types']>['output'];

/** Outcome of a validation: the parsed value, or the field issues. */
export type Checked<T> = { ok: true; value: T } | { ok: false; issues: FieldIssue[] };

function toChecked<T>(result: SchemaResult<T>): Checked<T> {
  if (result.issues === undefined) return { ok: true, value: result.value };
  return {
    ok: false,
    issues: result.issues.map((i) => ({
      path: (i.path ?? []).map((p) => String(typeof p === 'object' ? p.key : p)).join('.'),
      message: i.message,
    })),
  };
}

/**
 * Validates `value`. Synchronous when the schema is (zod usually is), so the hot paths do not pay
 * for a promise per task; a Promise only for asynchronous schemas.
 */
export function validate<S extends StandardSchemaV1>(
  schema: S,
  value: unknown,
): Checked<InferOutput<S>> | Promise<Checked<InferOutput<S>>> {
  const result = schema['~standard'].validate(value);
  return result instanceof Promise ? result.then(toChecked) : toChecked(result);
}

export function isStandardSchema(s: unknown): s is StandardSchemaV1 {
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof (s as { '~standard'?: { validate?: unknown } })['~standard']?.validate === 'function'
  );
}
