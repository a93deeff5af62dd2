import { ApiFailure } from '../kernel/errors.js';
import type { Page } from '../../protocol/index.js';

/**
 * Keyset paging on each table's identity column `pk`: stable while rows are inserted, and each page
 * is one index range scan. The cursor is opaque to clients.
 */
export function encodeCursor(pk: number): string {
  return Buffer.from(`pk:${pk}`).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): number | null {
  if (cursor === undefined) return null;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const match = /^pk:(\d{1,15})$/.exec(text);
  if (!match) throw new ApiFailure('VALIDATION_ERROR', 'cursor is not a cursor this API returned', { cursor });
  return Number(match[1]);
}

/** Rows were fetched with `limit + 1` to learn whether more exist without a count. */
export function toPage<Row extends { pk: number }, T>(rows: Row[], limit: number, map: (row: Row) => T): Page<T> {
  const hasMore = rows.length > limit;
  const pageRows = hasMore ? rows.slice(0, limit) : rows;
  const last = pageRows[pageRows.length - 1];
  return {
    data: pageRows.map(map),
    has_more: hasMore,
    next_cursor: hasMore && last ? encodeCursor(last.pk) : null,
  };
}

export function iso(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}
