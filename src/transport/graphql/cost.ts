import {
  getNamedType,
  GraphQLError,
  isListType,
  isNonNullType,
  isObjectType,
  Kind,
  type FragmentDefinitionNode,
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

/** Depth, aliases and estimated cost, checked before anything runs; null when within limits. */
export function protect(
  schema: GraphQLSchema,
  root: SelectionSetNode,
  kind: 'query' | 'mutation' | 'subscription',
  fragments: Record<string, FragmentDefinitionNode>,
  variables: Record<string, unknown>,
  limits: CostLimits,
): GraphQLError | null {
  let aliases = 0;
  let maxDepth = 0;
  const numberOf = (node: ValueNode | undefined): number | undefined => {
    if (!node) return undefined;
    if (node.kind === Kind.INT) return Number(node.value);
    if (node.kind === Kind.VARIABLE) {
      const value = variables[node.name.value];
      return typeof value === 'number' ? value : undefined;
    }
    return undefined;
  };
  // Cost of a selection set under a parent type: each field 1, times the sizes of the lists it sits in.
  // `sized`: the parent object was already multiplied by its size argument (a page's `limit`, a
  // connection's `last`): its unargumented lists (`data`, `edges`) hold those items, not more.
  const walk = (set: SelectionSetNode, parent: GraphQLOutputType | undefined, depth: number, seen: Set<string>, sized = false): number => {
    maxDepth = Math.max(maxDepth, depth);
    let cost = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const fragment = fragments[selection.name.value];
        if (!fragment || seen.has(fragment.name.value)) continue;
        cost += walk(
          fragment.selectionSet,
          schema.getType(fragment.typeCondition.name.value) as GraphQLOutputType,
          depth,
          new Set([...seen, fragment.name.value]),
          sized,
        );
        continue;
      }
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        const type = selection.typeCondition ? (schema.getType(selection.typeCondition.name.value) as GraphQLOutputType) : parent;
        cost += walk(selection.selectionSet, type, depth, seen, sized);
        continue;
      }
      if (selection.alias) aliases++;
      const named = parent ? getNamedType(parent) : undefined;
      const field = named && isObjectType(named) ? named.getFields()[selection.name.value] : undefined;
      let size = 1;
      let childSized = false;
      if (field) {
        const bare = isNonNullType(field.type) ? field.type.ofType : field.type;
        // The size asked for, else the argument's default (a list's `last`, a page's `limit`).
        const sizeArg = ['last', 'first', 'limit']
          .map((name) => numberOf(selection.arguments?.find((arg) => arg.name.value === name)?.value) ?? defaultOf(field.args.find((arg) => arg.name === name)))
          .find((n) => n !== undefined);
        const isConnection = getNamedType(field.type).name.endsWith('Connection');
        if (sizeArg !== undefined && (isConnection || isListType(bare) || selection.selectionSet)) size = sizeArg;
        else if (isConnection) size = 10;
        else if (isListType(bare) && !sized) size = DEFAULT_LIST_SIZE;
        childSized = size > 1 && !isListType(bare);
      }
      cost += size * (1 + (selection.selectionSet ? walk(selection.selectionSet, field?.type, depth + 1, seen, childSized) : 0));
    }
    return cost;
  };
  const rootType = kind === 'mutation' ? schema.getMutationType() : kind === 'subscription' ? schema.getSubscriptionType() : schema.getQueryType();
  const cost = walk(root, rootType ?? undefined, 1, new Set());
  if (maxDepth > limits.maxDepth) {
    return new GraphQLError(`Query is ${maxDepth} levels deep; at most ${limits.maxDepth} are allowed`, {
      extensions: { code: 'QUERY_TOO_DEEP', depth: maxDepth, max_depth: limits.maxDepth },
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

function defaultOf(arg: { default?: { value?: unknown } | undefined } | undefined): number | undefined {
  const value = arg?.default?.value;
  return typeof value === 'number' ? value : undefined;
}
