import { z } from 'zod';
import { PageInput } from './common.js';
import { textProblem } from './text.js';

/**
 * Filtering and sorting for list operations, declared per list and shared by every transport.
 *
 * A filter arrives as an object (`{"status":"active","created_at":{"$gte":"2024-01-01"}}`) from a
 * WebSocket call or a JSON body, as the same object in JSON text (`?filter={...}`), or built from
 * bracketed query keys (`?filter[status]=active&filter[created_at][$gte]=2024-01-01`). All three
 * parse into one normalised list of conditions. Only declared fields are accepted.
 */
export const FILTER_OPERATORS = ['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in'] as const;
export type FilterOperator = (typeof FILTER_OPERATORS)[number];

export type FieldKind = 'text' | 'timestamp' | 'number';

export interface FieldSpec {
  kind: FieldKind;
  /** Allowed values of a text field (an enum); any text otherwise. */
  values?: readonly string[];
  /** May be used in `sort` (only columns that are never null). */
  sortable?: boolean;
}

export type FieldSpecs = Record<string, FieldSpec>;

export type FilterValue = string | number;

export interface Condition {
  field: string;
  op: FilterOperator;
  /** An array for `$in`, a single value otherwise. Timestamps are normalised to ISO 8601 UTC. */
  value: FilterValue | FilterValue[];
}

export interface SortOrder {
  field: string;
  descending: boolean;
}

export const MAX_IN_VALUES = 100;
const MAX_CONDITIONS = 20;
const RANGE_OPERATORS: readonly FilterOperator[] = ['$gt', '$gte', '$lt', '$lte'];
// PostgreSQL's timestamptz takes years 4713 BC to 294276 AD; ISO 8601 in four digits, from year 1, stays well inside.
const MIN_TIME = Date.parse('0001-01-01T00:00:00Z');
const MAX_TIME = Date.parse('9999-12-31T23:59:59.999Z');
const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

type Ctx = z.core.$RefinementCtx;

function fail(ctx: Ctx, path: (string | number)[], message: string): void {
  ctx.addIssue({ code: 'custom', path, message });
}

/** One value for a field, coerced from query-string text where the field's kind allows. */
function fieldValue(spec: FieldSpec, raw: unknown, ctx: Ctx, path: (string | number)[]): FilterValue | undefined {
  if (spec.kind === 'number') {
    const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
    if (typeof value === 'number' && Number.isFinite(value)) return value;
    fail(ctx, path, 'must be a number');
    return undefined;
  }
  if (typeof raw !== 'string' || raw.length > 200) {
    fail(ctx, path, 'must be a string of at most 200 characters');
    return undefined;
  }
  // A filter sent as JSON text was not seen by the input-wide check (its NULs were still escaped).
  const problem = textProblem(raw);
  if (problem) {
    fail(ctx, path, problem);
    return undefined;
  }
  if (spec.kind === 'timestamp') {
    const time = ISO_DATE.test(raw) ? Date.parse(raw) : Number.NaN;
    if (Number.isNaN(time) || time < MIN_TIME || time > MAX_TIME) {
      fail(ctx, path, 'must be an ISO 8601 date or date-time between 0001-01-01 and 9999-12-31, e.g. 2024-01-01 or 2024-01-01T10:30:00Z');
      return undefined;
    }
    return new Date(time).toISOString();
  }
  if (spec.values && !spec.values.includes(raw)) {
    fail(ctx, path, `must be one of ${spec.values.join(', ')}`);
    return undefined;
  }
  return raw;
}

function parseCondition(field: string, spec: FieldSpec, raw: unknown, ctx: Ctx, out: Condition[]): void {
  // A bare value means equality: {"status":"active"}.
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    const value = fieldValue(spec, raw, ctx, [field]);
    if (value !== undefined) out.push({ field, op: '$eq', value });
    return;
  }
  const entries = Object.entries(raw);
  if (entries.length === 0) fail(ctx, [field], 'needs an operator, e.g. {"$eq": …}');
  for (const [op, operand] of entries) {
    if (!(FILTER_OPERATORS as readonly string[]).includes(op)) {
      fail(ctx, [field, op], `unknown operator "${op}" (supported: ${FILTER_OPERATORS.join(', ')})`);
      continue;
    }
    if (RANGE_OPERATORS.includes(op as FilterOperator) && spec.kind === 'text' && spec.values) {
      fail(ctx, [field, op], `"${field}" takes only $eq, $ne and $in`);
      continue;
    }
    if (op === '$in') {
      // Query strings send `filter[status][$in]=open,closed`.
      const list = typeof operand === 'string' ? operand.split(',') : operand;
      if (!Array.isArray(list) || list.length === 0 || list.length > MAX_IN_VALUES) {
        fail(ctx, [field, op], `must be a list of 1 to ${MAX_IN_VALUES} values`);
        continue;
      }
      const values = list.map((item, index) => fieldValue(spec, item, ctx, [field, op, index]));
      if (values.every((value) => value !== undefined)) out.push({ field, op: '$in', value: values as FilterValue[] });
      continue;
    }
    const value = fieldValue(spec, operand, ctx, [field, op]);
    if (value !== undefined) out.push({ field, op: op as FilterOperator, value });
  }
}

/** The `filter` parameter of a list: an object, or that object as JSON text. */
export function filterSchema(fields: FieldSpecs) {
  const names = Object.keys(fields);
  return z.unknown().transform((raw, ctx): Condition[] => {
    let value = raw;
    if (typeof value === 'string') {
      try {
        value = JSON.parse(value);
      } catch {
        fail(ctx, [], 'filter must be an object, or an object as JSON text');
        return z.NEVER;
      }
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      fail(ctx, [], 'filter must be an object, e.g. {"status":"active"}');
      return z.NEVER;
    }
    const conditions: Condition[] = [];
    for (const [field, condition] of Object.entries(value)) {
      const spec = Object.hasOwn(fields, field) ? fields[field] : undefined;
      if (!spec) {
        fail(ctx, [field], `unknown filter field "${field.slice(0, 64)}" (filterable: ${names.join(', ')})`);
        continue;
      }
      parseCondition(field, spec, condition, ctx, conditions);
    }
    if (conditions.length > MAX_CONDITIONS) fail(ctx, [], `at most ${MAX_CONDITIONS} conditions`);
    return conditions;
  });
}

/** The `sort` parameter: a sortable field, `-` in front for descending (`-created_at`). */
export function sortSchema(fields: FieldSpecs, defaultSort: string) {
  const sortable = Object.entries(fields)
    .filter(([, spec]) => spec.sortable)
    .map(([name]) => name);
  return z
    .string()
    .max(100)
    .default(defaultSort)
    .transform((text, ctx): SortOrder => {
      const descending = text.startsWith('-');
      const field = descending ? text.slice(1) : text;
      if (!sortable.includes(field)) {
        fail(ctx, [], `cannot sort by "${field.slice(0, 64)}" (sortable: ${sortable.join(', ')}; prefix - for descending)`);
        return z.NEVER;
      }
      return { field, descending };
    });
}

/** Everything a filterable, sortable, paged list takes, to spread into its input schema. */
export function listParams(fields: FieldSpecs, defaultSort: string) {
  return {
    ...PageInput,
    /** Rows to skip (the StateSet client's `offset`); not together with `cursor`. */
    offset: z.coerce.number().int().min(0).max(10_000).optional(),
    filter: filterSchema(fields).optional(),
    sort: sortSchema(fields, defaultSort),
  };
}

/** `-created_at` for a sort order: how a sort is named in cursors and errors. */
export function sortText(sort: SortOrder): string {
  return `${sort.descending ? '-' : ''}${sort.field}`;
}
