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

/** Validates `value`; resolves the parsed value or the list of field issues. */
export async function validate<S extends StandardSchemaV1>(
  schema: S,
  value: unknown,
): Promise<{ ok: true; value: InferOutput<S> } | { ok: false; issues: FieldIssue[] }> {
  let result = schema['~standard'].validate(value);
  if (result instanceof Promise) result = await result;
  if (result.issues === undefined) return { ok: true, value: result.value as InferOutput<S> };
  return {
    ok: false,
    issues: result.issues.map((i) => ({
      path: (i.path ?? []).map((p) => String(typeof p === 'object' ? p.key : p)).join('.'),
      message: i.message,
    })),
  };
}

export function isStandardSchema(s: unknown): s is StandardSchemaV1 {
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof (s as { '~standard'?: { validate?: unknown } })['~standard']?.validate === 'function'
  );
}
