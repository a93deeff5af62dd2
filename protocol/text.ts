import { z } from 'zod';

/**
 * Rules every input obeys before its own schema runs, whatever the operation or transport:
 * strings and object keys hold no NUL (PostgreSQL cannot store U+0000 in text or jsonb) and no
 * lone surrogate (it cannot be encoded as UTF-8, so it would be stored replaced or refused), and
 * objects and arrays nest at most MAX_INPUT_DEPTH levels (so that nothing later walking the value,
 * such as a size check, can run out of stack).
 */
export const MAX_INPUT_DEPTH = 32;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The engine's own check where it has one (Node 20, current browsers): it runs on every string of every frame. */
const isWellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;

/** Why a string cannot be accepted, or null when it can. */
export function textProblem(text: string): string | null {
  if (text.includes('\u0000')) return 'must not contain NUL (\\u0000) characters';
  if (isWellFormed ? !isWellFormed.call(text) : LONE_SURROGATE.test(text)) return 'must be well-formed Unicode (no lone surrogate)';
  return null;
}

export interface InputProblem {
  path: (string | number)[];
  message: string;
}

/** The first place where a decoded JSON or MessagePack value breaks those rules, or null. */
export function inputProblem(value: unknown, maxDepth: number = MAX_INPUT_DEPTH): InputProblem | null {
  const problem = walk(value, 0, maxDepth);
  if (problem) problem.path.reverse();
  return problem;
}

/**
 * Runs on every frame and every input, so it allocates nothing while the value is fine: the path
 * is built only on the way back from a problem, innermost step first (reversed once at the top).
 */
function walk(value: unknown, depth: number, maxDepth: number): InputProblem | null {
  if (typeof value === 'string') {
    const message = textProblem(value);
    return message ? { path: [], message } : null;
  }
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return null;
  // Checked before descending: the walk itself never goes deeper than maxDepth + 1 frames.
  if (depth >= maxDepth) return { path: [], message: `is nested deeper than ${maxDepth} levels` };
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) {
      const problem = walk(value[index], depth + 1, maxDepth);
      if (problem) {
        problem.path.push(index);
        return problem;
      }
    }
    return null;
  }
  const record = value as Record<string, unknown>;
  for (const key in record) {
    if (!Object.hasOwn(record, key)) continue;
    // The key itself is not echoed: it is the text that could not be accepted.
    const keyMessage = textProblem(key);
    if (keyMessage) return { path: [], message: `has a key that ${keyMessage}` };
    const problem = walk(record[key], depth + 1, maxDepth);
    if (problem) {
      problem.path.push(key);
      return problem;
    }
  }
  return null;
}

/** The problem as a ZodError, so that it is reported exactly like any other validation issue. */
export function inputProblemError(problem: InputProblem): z.ZodError {
  return new z.ZodError([{ code: 'custom', path: problem.path, message: problem.message, input: undefined }]);
}

/**
 * Parses an operation's input: the rules above first, then the operation's own schema. Every
 * transport goes through this (the server's operation runner), so the answer is the same on each.
 * `checked`: the caller already found no problem in this very value (a WebSocket frame is walked
 * whole, params included, before it is parsed), so it is not walked twice.
 */
export function parseInput<T extends z.ZodType>(schema: T, raw: unknown, checked = false): z.ZodSafeParseResult<z.output<T>> {
  const problem = checked ? null : inputProblem(raw);
  if (problem) return { success: false, error: inputProblemError(problem) as z.ZodError<z.output<T>> };
  return schema.safeParse(raw);
}
