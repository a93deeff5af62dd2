import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * No import cycles in the server and the wire contract: not between files, and not between the
 * folders directly under src/ (a file src/a/x.ts importing src/b/y.ts is an edge a → b; a file
 * directly in src/ is a node of its own). Every static `import … from` and `export … from` counts,
 * type-only ones included: they still couple the modules. Dynamic `import()` does not (it loads later).
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** clients/ once the socket clients have moved out of protocol/. */
const SCANNED = ['src', 'protocol', 'clients'].filter((folder) => existsSync(join(ROOT, folder)));

/** Folder cycles under src/ that cannot be broken without a redesign, each with the reason. None today. */
const KNOWN_FOLDER_CYCLES: string[][] = [];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** The module specifiers a file imports or re-exports statically, as the TypeScript parser reads them. */
function specifiersOf(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found: string[] = [];
  for (const statement of source.statements) {
    if (
      (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) &&
      statement.moduleSpecifier &&
      ts.isStringLiteral(statement.moduleSpecifier)
    ) {
      found.push(statement.moduleSpecifier.text);
    } else if (
      ts.isImportEqualsDeclaration(statement) &&
      ts.isExternalModuleReference(statement.moduleReference) &&
      ts.isStringLiteral(statement.moduleReference.expression)
    ) {
      found.push(statement.moduleReference.expression.text);
    }
  }
  return found;
}

/** A relative specifier as the file it names (`./x.js` is `./x.ts`, a folder its index.ts); packages are not followed. */
function resolveSpecifier(from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  const target = resolve(dirname(from), specifier);
  const candidates = [target.replace(/\.js$/, '.ts'), `${target}.ts`, join(target, 'index.ts'), target];
  const file = candidates.find((candidate) => candidate.endsWith('.ts') && existsSync(candidate) && statSync(candidate).isFile());
  if (!file) throw new Error(`${relative(ROOT, from)} imports ${specifier}, which names no .ts file`);
  return file;
}

type Graph = Map<string, Set<string>>;

function fileGraph(): Graph {
  const graph: Graph = new Map();
  for (const file of SCANNED.flatMap((folder) => sourceFiles(join(ROOT, folder)))) {
    const from = relative(ROOT, file).split(sep).join('/');
    const edges = new Set<string>();
    for (const specifier of specifiersOf(file)) {
      const target = resolveSpecifier(file, specifier);
      if (target) edges.add(relative(ROOT, target).split(sep).join('/'));
    }
    graph.set(from, edges);
  }
  return graph;
}

/** src/a/x.ts → `a/`; src/app.ts → `app.ts`; anything outside src/ → null. */
function folderOf(file: string): string | null {
  const parts = file.split('/');
  if (parts[0] !== 'src') return null;
  return parts.length > 2 ? `${parts[1]}/` : parts[1]!;
}

function folderGraph(files: Graph): Graph {
  const graph: Graph = new Map();
  for (const [file, targets] of files) {
    const from = folderOf(file);
    if (from === null) continue;
    const edges = graph.get(from) ?? new Set<string>();
    graph.set(from, edges);
    for (const target of targets) {
      const to = folderOf(target);
      if (to !== null && to !== from) edges.add(to);
    }
  }
  return graph;
}

/** The strongly connected components with more than one node (Tarjan), each as one concrete cycle through them. */
function cycles(graph: Graph): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const lowlinks = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const connect = (node: string): void => {
    indices.set(node, index);
    lowlinks.set(node, index);
    index++;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!indices.has(next)) {
        connect(next);
        lowlinks.set(node, Math.min(lowlinks.get(node)!, lowlinks.get(next)!));
      } else if (onStack.has(next)) {
        lowlinks.set(node, Math.min(lowlinks.get(node)!, indices.get(next)!));
      }
    }
    if (lowlinks.get(node) === indices.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || graph.get(node)?.has(node)) components.push(component);
    }
  };
  for (const node of [...graph.keys()].sort()) if (!indices.has(node)) connect(node);
  return components.map((component) => shortestCycle(graph, new Set(component)));
}

/** A shortest cycle inside one component, from its first node in sort order back to it. */
function shortestCycle(graph: Graph, component: Set<string>): string[] {
  const start = [...component].sort()[0]!;
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const next of [...(graph.get(node) ?? [])].sort()) {
      if (!component.has(next)) continue;
      if (next === start) {
        const path = [node];
        while (path[0] !== start) path.unshift(previous.get(path[0]!)!);
        return [...path, start];
      }
      if (!previous.has(next)) {
        previous.set(next, node);
        queue.push(next);
      }
    }
  }
  return [...component];
}

const described = (found: string[][]) => found.map((cycle) => cycle.join(' → ')).join('\n');

describe('import graph', () => {
  const files = fileGraph();

  it('reads the imports of every file (the scan is not empty)', () => {
    expect(files.size).toBeGreaterThan(100);
    expect(files.get('src/app.ts')?.size).toBeGreaterThan(10);
  });

  it('has no cycle between files', () => {
    expect(described(cycles(files))).toBe('');
  });

  it('has no cycle between the folders directly under src/', () => {
    const known = new Set(KNOWN_FOLDER_CYCLES.map((cycle) => cycle.join(' → ')));
    expect(described(cycles(folderGraph(files)).filter((cycle) => !known.has(cycle.join(' → '))))).toBe('');
  });

  it('finds a cycle when there is one (the check itself works)', () => {
    const graph: Graph = new Map([
      ['a', new Set(['b'])],
      ['b', new Set(['c'])],
      ['c', new Set(['a', 'd'])],
      ['d', new Set()],
    ]);
    expect(cycles(graph)).toEqual([['a', 'b', 'c', 'a']]);
    expect(folderOf('src/a/x.ts')).toBe('a/');
    expect(folderOf('src/app.ts')).toBe('app.ts');
  });
});
