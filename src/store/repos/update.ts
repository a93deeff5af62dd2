/**
 * `set a = $3, b = $4, updated_at = now()` for the fields a partial update actually carries.
 * Column names come from the caller's fixed list, never from input keys.
 */
export function buildUpdate(fields: Record<string, unknown>, columns: readonly string[], firstParam: number): { assignments: string; values: unknown[] } {
  const assignments: string[] = [];
  const values: unknown[] = [];
  for (const column of columns) {
    const value = fields[column];
    if (value === undefined) continue;
    values.push(value !== null && typeof value === 'object' ? JSON.stringify(value) : value);
    assignments.push(`${column} = $${firstParam + values.length - 1}`);
  }
  assignments.push('updated_at = now()');
  return { assignments: assignments.join(', '), values };
}
