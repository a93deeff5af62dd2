/** One schema change. Never edit a shipped migration: add the next one, with the next id. */
export interface Migration {
  id: number;
  name: string;
  /** Statements separated by `;` (no functions or quoted semicolons). */
  sql: string;
}
