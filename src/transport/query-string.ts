import { ApiFailure } from '../kernel/errors.js';

/**
 * Query strings into input objects. Values stay strings (schemas coerce); bracketed keys nest, as
 * Rails, qs and the StateSet SDKs send them: `filter[created_at][$gte]=2024-01-01` becomes
 * `{ filter: { created_at: { $gte: '2024-01-01' } } }`.
 */
const MAX_DEPTH = 3;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

type Tree = { [key: string]: string | string[] | Tree };

export function parseQuery(query: string): Record<string, unknown> {
  const result: Tree = {};
  for (const [rawKey, value] of new URLSearchParams(query)) {
    const path = keyPath(rawKey);
    let node = result;
    path.forEach((part, index) => {
      if (FORBIDDEN_KEYS.has(part)) throw new ApiFailure('VALIDATION_ERROR', `Query parameter ${rawKey} is not allowed`, { parameter: rawKey });
      const last = index === path.length - 1;
      const existing = Object.hasOwn(node, part) ? node[part] : undefined;
      if (last) {
        // A repeated parameter becomes a list (`filter[status][$in]=open&filter[status][$in]=closed`).
        if (existing === undefined) node[part] = value;
        else if (typeof existing === 'string') node[part] = [existing, value];
        else if (Array.isArray(existing)) existing.push(value);
        else throw new ApiFailure('VALIDATION_ERROR', `Query parameter ${rawKey} conflicts with nested parameters`, { parameter: rawKey });
        return;
      }
      if (typeof existing === 'string' || Array.isArray(existing)) {
        throw new ApiFailure('VALIDATION_ERROR', `Query parameter ${rawKey} conflicts with ${path.slice(0, index + 1).join('.')}`, { parameter: rawKey });
      }
      node = (existing ?? (node[part] = {})) as Tree;
    });
  }
  return result;
}

/** `a[b][c]` -> ['a', 'b', 'c']; a key without brackets is itself. */
function keyPath(key: string): string[] {
  const match = /^([^[\]]+)((?:\[[^[\]]*\])+)$/.exec(key);
  if (!match) return [key];
  const parts = [match[1]!, ...[...match[2]!.matchAll(/\[([^[\]]*)\]/g)].map((m) => m[1]!)];
  if (parts.length > MAX_DEPTH + 1 || parts.some((part) => part === '')) {
    throw new ApiFailure('VALIDATION_ERROR', `Query parameter ${key} is nested too deeply or has an empty [] part`, { parameter: key });
  }
  return parts;
}
