import { sortText, textProblem, type Condition, type FieldSpecs, type Page, type SortOrder } from '../../../protocol/index.js';
import { ApiFailure } from '../../kernel/errors.js';

/**
 * Turns a list's parsed filter and sort into SQL: parameterised values, column names only from
 * the repository's whitelist, and keyset paging on (sort column, pk) so that a page is one index
 * range scan and inserts while paging neither skip nor repeat rows.
 */
export type ColumnType = 'text' | 'timestamptz' | 'numeric';

/** For each declared field, the SQL column it reads (a fixed identifier, never client text). */
export type ColumnMap<F extends FieldSpecs> = { [K in keyof F]: { column: string; type: ColumnType } };

export interface ListQuery {
  limit: number;
  cursor?: string | undefined;
  /** Rows to skip before the page (offset paging); a cursor is the cheaper way to page. */
  offset?: number | undefined;
  filter?: Condition[] | undefined;
  sort: SortOrder;
}

/** A repository's list input: the parsed operation input, sort optional (the list's default applies). */
export type ListInput<T extends { sort: SortOrder }> = Omit<T, 'sort'> & { sort?: SortOrder | undefined };

export function withDefaultSort<T extends { sort?: SortOrder | undefined }>(input: T, sort: SortOrder): T & { sort: SortOrder } {
  return { ...input, sort: input.sort ?? sort };
}

const SQL_OPERATORS = { $eq: '=', $ne: 'is distinct from', $gt: '>', $gte: '>=', $lt: '<', $lte: '<=' } as const;

/** Collects parameters and hands out their `$n` placeholders. */
export class Params {
  readonly values: unknown[] = [];
  add(value: unknown, type?: ColumnType): string {
    this.values.push(value);
    return type ? `$${this.values.length}::${type}` : `$${this.values.length}`;
  }
}

export interface KeysetSql {
  /** Conditions to AND into the WHERE clause (filters and the cursor position). */
  where: string[];
  orderBy: string;
  /** Extra select item carrying the sort value as text, for the next cursor. */
  sortSelect: string;
  /** Rows to fetch: one more than the page, to learn whether more exist. */
  fetch: number;
  /** Rows to skip first: 0 unless the client pages by offset. */
  offset: number;
}

export function keysetSql<F extends FieldSpecs>(columns: ColumnMap<F>, query: ListQuery, params: Params, alias = ''): KeysetSql {
  const qualify = (column: string) => (alias ? `${alias}.${column}` : column);
  const columnOf = (field: string) => {
    const entry = Object.hasOwn(columns, field) ? columns[field as keyof F] : undefined;
    // Schemas only let declared fields through; this guards the SQL if a schema and map ever disagree.
    if (!entry) throw new ApiFailure('VALIDATION_ERROR', `"${field}" is not a filterable field`, { field });
    return { sql: qualify(entry.column), type: entry.type };
  };

  const where: string[] = [];
  for (const condition of query.filter ?? []) {
    const column = columnOf(condition.field);
    if (condition.op === '$in') where.push(`${column.sql} = any(${params.add(condition.value)}::${column.type}[])`);
    else where.push(`${column.sql} ${SQL_OPERATORS[condition.op]} ${params.add(condition.value, column.type)}`);
  }

  const sort = columnOf(query.sort.field);
  const pk = qualify('pk');
  if (query.offset !== undefined && query.cursor !== undefined) {
    throw new ApiFailure('VALIDATION_ERROR', 'Give either offset or cursor, not both', { offset: query.offset });
  }
  const position = decodeListCursor(query.cursor, query.sort, sort.type);
  if (position) {
    // Row comparison keeps (sort value, pk) a total order: ties on the sort value are broken by pk.
    const comparator = query.sort.descending ? '<' : '>';
    where.push(`(${sort.sql}, ${pk}) ${comparator} (${params.add(position.value, sort.type)}, ${params.add(position.pk)}::bigint)`);
  }
  const direction = query.sort.descending ? 'desc' : 'asc';
  return {
    where,
    orderBy: `${sort.sql} ${direction}, ${pk} ${direction}`,
    sortSelect: `(${sort.sql})::text as sort_value`,
    fetch: query.limit + 1,
    offset: query.offset ?? 0,
  };
}

interface CursorPosition {
  /** The sort this cursor belongs to, e.g. `-created_at`. */
  sort: string;
  value: string;
  pk: number;
}

export function encodeListCursor(sort: SortOrder, value: string, pk: number): string {
  return Buffer.from(JSON.stringify({ s: sortText(sort), v: value, k: pk })).toString('base64url');
}

/**
 * The position a cursor names; refuses cursors that are not ours, were issued for another sort, or
 * hold a value the sort column cannot take (a crafted cursor must answer 400, not a SQL error).
 */
export function decodeListCursor(cursor: string | undefined, sort: SortOrder, type: ColumnType): CursorPosition | null {
  if (cursor === undefined) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = null;
  }
  const candidate = parsed as { s?: unknown; v?: unknown; k?: unknown } | null;
  if (
    !candidate ||
    typeof candidate.s !== 'string' ||
    typeof candidate.v !== 'string' ||
    typeof candidate.k !== 'number' ||
    !Number.isSafeInteger(candidate.k)
  ) {
    throw new ApiFailure('VALIDATION_ERROR', 'cursor is not a cursor this API returned', { cursor: cursor.slice(0, 200) });
  }
  const expected = sortText(sort);
  if (candidate.s !== expected) {
    throw new ApiFailure('VALIDATION_ERROR', `cursor was issued for sort=${candidate.s}, not sort=${expected}: keep the sort while paging`, {
      cursor_sort: candidate.s,
      sort: expected,
    });
  }
  if (!validSortValue(candidate.v, type)) {
    throw new ApiFailure('VALIDATION_ERROR', 'cursor is not a cursor this API returned', { cursor: cursor.slice(0, 200) });
  }
  return { sort: candidate.s, value: candidate.v, pk: candidate.k };
}

// PostgreSQL's text form of timestamptz (DateStyle ISO), as `sort_value` returns it.
const PG_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?[+-]\d{2}(?::\d{2}){0,2}$/;
const PG_NUMERIC = /^-?\d{1,40}(?:\.\d{1,40})?$/;

/** Whether a cursor's sort value is one PostgreSQL accepts for the column, as it was sent out. */
function validSortValue(value: string, type: ColumnType): boolean {
  if (type === 'numeric') return PG_NUMERIC.test(value);
  if (type === 'text') return value.length <= 2000 && textProblem(value) === null;
  const match = PG_TIMESTAMP.exec(value);
  if (!match) return false;
  // Kept as text for the query (microseconds matter for paging); checked here as a calendar date.
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second);
  return (
    year >= 1 &&
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute &&
    date.getUTCSeconds() === second
  );
}

/** Rows were fetched with `limit + 1`; the last row shown gives the next cursor. */
export function keysetPage<Row extends { pk: number | string; sort_value: string }, T>(rows: Row[], query: ListQuery, map: (row: Row) => T): Page<T> {
  const hasMore = rows.length > query.limit;
  const pageRows = hasMore ? rows.slice(0, query.limit) : rows;
  const last = pageRows[pageRows.length - 1];
  return {
    data: pageRows.map(map),
    has_more: hasMore,
    next_cursor: hasMore && last ? encodeListCursor(query.sort, last.sort_value, Number(last.pk)) : null,
  };
}

/** Shorthand list parameters (`?status=open`) become equality conditions beside the filter. */
export function withShorthands(query: ListQuery, shorthands: Record<string, string | undefined>): ListQuery {
  const extra: Condition[] = Object.entries(shorthands)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([field, value]) => ({ field, op: '$eq', value }));
  return extra.length === 0 ? query : { ...query, filter: [...(query.filter ?? []), ...extra] };
}
