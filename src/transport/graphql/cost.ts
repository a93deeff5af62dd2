import {
  getNamedType,
  GraphQLError,
  isListType,
  isNonNullType,
  isObjectType,
  isOutputType,
  Kind,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLOutputType,
  type GraphQLSchema,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';

/** Protection against one document taking the server down (configuration, GRAPHQL_MAX_*). */
export interface CostLimits {
  maxDepth: number;
  maxCost: number;
  maxAliases: number;
}

/** Cost of a list field whose size no argument says (a page's `data`, a default `messages`). */
const DEFAULT_LIST_SIZE = 20;
/** Connections (`conversations`) without `first`/`last`. */
const DEFAULT_CONNECTION_SIZE = 10;
/**
 * Costs are floats (2^60 is just a large number) that stop at the largest finite one: a chain of
 * doubling fragments, or a size of 1e400, reports a finite cost, never Infinity or NaN.
 */
const CEILING = Number.MAX_VALUE;

const add = (a: number, b: number) => Math.min(a + b, CEILING);
const times = (a: number, b: number) => Math.min(a * b, CEILING);

/** What a selection set adds where it is used: its cost, its depth (its own level is 1) and its aliases. */
interface Measure {
  cost: number;
  depth: number;
  aliases: number;
}

class FragmentCycle extends Error {
  constructor(readonly fragment: string) {
    super(`Fragment "${fragment}" spreads itself (through its fragments)`);
  }
}

/**
 * Depth, aliases and estimated cost of a parsed but not yet validated document, or the error that
 * refuses it; null when within the limits. Runs before validation (whose rules can themselves be
 * costly on a hostile document), in time linear in the document's size: each fragment is measured
 * once (twice at most, see `sized`) and its measure reused at every spread, so a fragment spread
 * twice by a fragment spread twice … costs a walk of its text, not of its expansion. A fragment
 * cycle is refused, not followed.
 *
 * Cost: each field 1, times the sizes of the lists it sits in; plus one for each pair of fields of
 * one response name on one type (validation compares every such pair: many copies of one field
 * are quadratic to validate). Every operation of the document is measured, and every fragment no
 * operation uses: nothing reaches validation unmeasured.
 */
export function checkBounds(schema: GraphQLSchema, document: DocumentNode, variables: Record<string, unknown>, limits: CostLimits): GraphQLError | null {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION && !fragments.has(definition.name.value)) fragments.set(definition.name.value, definition);
  }
  const measured = new Map<string, Measure>();
  const visiting = new Set<string>();
  const typeNamed = (name: string): GraphQLOutputType | undefined => {
    const type = schema.getType(name);
    return type && isOutputType(type) ? type : undefined;
  };
  const numberOf = (node: ValueNode | undefined): number | undefined => {
    if (!node) return undefined;
    // Floats too: validation, which would refuse them for an Int, has not run yet.
    if (node.kind === Kind.INT || node.kind === Kind.FLOAT) return Number(node.value);
    if (node.kind === Kind.VARIABLE && Object.hasOwn(variables, node.name.value)) {
      const value = variables[node.name.value];
      return typeof value === 'number' ? value : undefined;
    }
    return undefined;
  };

  // `sized`: the parent object was already multiplied by its size argument (a page's `limit`, a
  // connection's `last`): its unargumented lists (`data`, `edges`) hold those items, not more.
  // A fragment's measure depends on its name and `sized` only (it is walked under its own type
  // condition, with the request's variables), so that pair is its memo's key.
  const fragmentMeasure = (name: string, sized: boolean): Measure | null => {
    const fragment = fragments.get(name);
    if (!fragment) return null; // validation reports it
    const key = `${sized ? 'sized' : 'plain'}:${name}`;
    const known = measured.get(key);
    if (known) return known;
    if (visiting.has(name)) throw new FragmentCycle(name);
    visiting.add(name);
    const measure = walk(fragment.selectionSet, typeNamed(fragment.typeCondition.name.value), sized);
    visiting.delete(name);
    measured.set(key, measure);
    return measure;
  };

  const walk = (set: SelectionSetNode, parent: GraphQLOutputType | undefined, sized: boolean): Measure => {
    const total: Measure = { cost: 0, depth: 1, aliases: 0 };
    const merge = (measure: Measure, levels: number) => {
      total.cost = add(total.cost, measure.cost);
      total.depth = Math.max(total.depth, levels + measure.depth);
      total.aliases = add(total.aliases, measure.aliases);
    };
    for (const selection of set.selections) {
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const measure = fragmentMeasure(selection.name.value, sized);
        if (measure) merge(measure, 0);
        continue;
      }
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        merge(walk(selection.selectionSet, selection.typeCondition ? typeNamed(selection.typeCondition.name.value) : parent, sized), 0);
        continue;
      }
      if (selection.alias) total.aliases = add(total.aliases, 1);
      const field = fieldOf(parent, selection.name.value);
      let size = 1;
      let childSized = false;
      if (field) {
        const bare = isNonNullType(field.type) ? field.type.ofType : field.type;
        // The size asked for, else the argument's default (a list's `last`, a page's `limit`).
        const sizeArg = ['last', 'first', 'limit']
          .map(
            (name) =>
              sizeOf(numberOf(selection.arguments?.find((arg) => arg.name.value === name)?.value)) ?? defaultOf(field.args.find((arg) => arg.name === name)),
          )
          .find((n) => n !== undefined);
        const isConnection = getNamedType(field.type).name.endsWith('Connection');
        if (sizeArg !== undefined && (isConnection || isListType(bare) || selection.selectionSet)) size = sizeArg;
        else if (isConnection) size = DEFAULT_CONNECTION_SIZE;
        else if (isListType(bare) && !sized) size = DEFAULT_LIST_SIZE;
        childSized = size > 1 && !isListType(bare);
      }
      const child = selection.selectionSet ? walk(selection.selectionSet, field?.type, childSized) : null;
      total.cost = add(total.cost, times(size, add(1, child?.cost ?? 0)));
      if (child) merge({ cost: 0, depth: child.depth, aliases: child.aliases }, 1);
    }
    return total;
  };

  const roots: Measure[] = [];
  try {
    for (const definition of document.definitions) {
      if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
      const kind = definition.operation;
      const root = kind === 'mutation' ? schema.getMutationType() : kind === 'subscription' ? schema.getSubscriptionType() : schema.getQueryType();
      roots.push(walk(definition.selectionSet, root ?? undefined, false));
    }
    for (const name of fragments.keys()) {
      if (!measured.has(`plain:${name}`) && !measured.has(`sized:${name}`)) roots.push(fragmentMeasure(name, false)!);
    }
  } catch (error) {
    if (!(error instanceof FragmentCycle)) throw error;
    return new GraphQLError(error.message, { extensions: { code: 'GRAPHQL_VALIDATION_FAILED', fragment: error.fragment } });
  }
  const depth = Math.max(0, ...roots.map((root) => root.depth));
  const aliases = Math.max(0, ...roots.map((root) => root.aliases));
  const cost = add(Math.max(0, ...roots.map((root) => root.cost)), sameNamePairs(schema, document));
  if (depth > limits.maxDepth) {
    return new GraphQLError(`Query is ${depth} levels deep; at most ${limits.maxDepth} are allowed`, {
      extensions: { code: 'QUERY_TOO_DEEP', depth, max_depth: limits.maxDepth },
    });
  }
  if (aliases > limits.maxAliases) {
    return new GraphQLError(`Query uses ${aliases} aliases; at most ${limits.maxAliases} are allowed`, {
      extensions: { code: 'TOO_MANY_ALIASES', aliases, max_aliases: limits.maxAliases },
    });
  }
  if (cost > limits.maxCost) {
    return new GraphQLError(`Query's estimated cost is ${cost}; at most ${limits.maxCost} is allowed`, {
      extensions: { code: 'QUERY_TOO_COSTLY', cost, max_cost: limits.maxCost },
    });
  }
  return null;
}

/**
 * Pairs of field selections with one response name on one parent type, over the whole document
 * (each selection counted once, wherever its fragment is spread): an upper bound of the pairs
 * graphql-js's OverlappingFieldsCanBeMerged compares, which is quadratic in the copies of a field.
 */
function sameNamePairs(schema: GraphQLSchema, document: DocumentNode): number {
  const copies = new Map<string, number>();
  let pairs = 0;
  const visit = (set: SelectionSetNode, parent: GraphQLOutputType | undefined) => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FRAGMENT_SPREAD) continue; // counted where the fragment is defined
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        const type = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
        visit(selection.selectionSet, type && isOutputType(type) ? type : undefined);
        continue;
      }
      const key = `${parent ? getNamedType(parent).name : '?'}.${(selection.alias ?? selection.name).value}`;
      const before = copies.get(key) ?? 0;
      // Each new copy pairs with every earlier one.
      pairs = add(pairs, before);
      copies.set(key, before + 1);
      if (selection.selectionSet) visit(selection.selectionSet, fieldOf(parent, selection.name.value)?.type);
    }
  };
  for (const definition of document.definitions) {
    if (definition.kind === Kind.OPERATION_DEFINITION) {
      const kind = definition.operation;
      const root = kind === 'mutation' ? schema.getMutationType() : kind === 'subscription' ? schema.getSubscriptionType() : schema.getQueryType();
      visit(definition.selectionSet, root ?? undefined);
    } else if (definition.kind === Kind.FRAGMENT_DEFINITION) {
      const type = schema.getType(definition.typeCondition.name.value);
      visit(definition.selectionSet, type && isOutputType(type) ? type : undefined);
    }
  }
  return pairs;
}

/** The field of an object type by name; undefined for anything else (the document is not validated yet). */
function fieldOf(parent: GraphQLOutputType | undefined, name: string): GraphQLField<unknown, unknown> | undefined {
  const named = parent ? getNamedType(parent) : undefined;
  if (!named || !isObjectType(named)) return undefined;
  const fields = named.getFields();
  return Object.hasOwn(fields, name) ? fields[name] : undefined;
}

/** A size as the cost counts it: at least 1, so that a negative or zero argument cannot offset other fields. */
function sizeOf(value: number | undefined): number | undefined {
  return value === undefined || Number.isNaN(value) ? undefined : Math.max(1, value);
}

function defaultOf(arg: { default?: { value?: unknown } | undefined } | undefined): number | undefined {
  const value = arg?.default?.value;
  return typeof value === 'number' ? value : undefined;
}
