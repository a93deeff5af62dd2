import {
  GraphQLBoolean,
  GraphQLError,
  GraphQLFloat,
  GraphQLID,
  GraphQLInt,
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLScalarType,
  GraphQLSchema,
  GraphQLString,
  isNonNullType,
  valueFromASTUntyped,
  type GraphQLFieldConfig,
  type GraphQLFieldConfigArgumentMap,
  type GraphQLFieldConfigMap,
  type GraphQLInputType,
  type GraphQLOutputType,
} from 'graphql';
import type { z } from 'zod';
import * as protocol from '../../../protocol/index.js';
import { BATCH_OPERATION_NAMES, contracts, type OperationContract } from '../../../protocol/index.js';

/**
 * The GraphQL schema, derived from the operation table: object types from the zod output schemas
 * (named after the protocol's exports), queries from GET operations, mutations from the others,
 * arguments from the input schemas. Every field that reaches data resolves through `call`, i.e.
 * the gateway's one `execute` path. On top, the document's relations: an agent's conversations
 * (a Relay connection), a conversation's messages and a message's `timestamp`.
 */
export interface GraphqlContext {
  /** Runs an operation for this request; throws a GraphQLError carrying the operation's code. */
  call(operation: string, input: Record<string, unknown>, path: string): Promise<unknown>;
  /** Batch loaders of this request (one SQL statement per level). */
  conversationsOf(agentId: string, slice: ConnectionSlice): Promise<unknown[]>;
  messagesOf(conversationId: string, last: number): Promise<unknown[]>;
  /** Subscribes to a topic through `topics.subscribe` (connections that receive events only). */
  subscribe?(input: Record<string, unknown>): Promise<AsyncIterable<unknown>>;
}

/** Which part of a connection to load: `first` from the start or `last` from the end, between two ids. */
export interface ConnectionSlice {
  first?: number;
  last?: number;
  after?: string;
  before?: string;
}

/** Cursors are opaque: base64url of a tagged id, so that clients do not build them. */
export const encodeCursor = (id: string): string => Buffer.from(`cursor:${id}`, 'utf8').toString('base64url');
export function decodeCursor(cursor: string, field: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text.startsWith('cursor:') || text.length === 7 || encodeCursor(text.slice(7)) !== cursor) {
    throw new GraphQLError(`${field} is not a cursor of this connection`, { extensions: { code: 'VALIDATION_ERROR', field } });
  }
  return text.slice(7);
}

/** Arbitrary JSON (metadata, capabilities, filters): what the zod schema says, GraphQL cannot. */
export const JsonScalar = new GraphQLScalarType({
  name: 'JSON',
  description: 'Any JSON value',
  coerceOutputValue: (value) => value,
  coerceInputValue: (value) => value,
  coerceInputLiteral: (ast) => valueFromASTUntyped(ast),
});

/** Default and largest `last` of an agent's conversations and a conversation's messages. */
export const CONVERSATIONS_DEFAULT = 10;
export const MESSAGES_DEFAULT = 50;

type Def = { type: string; [key: string]: unknown };
const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;
/** Absent allowed: optional, or defaulted (zod's `optin` is 'optional' or 'defaulted'). */
const optionalIn = (schema: z.ZodType): boolean => (schema as unknown as { _zod: { optin?: string } })._zod.optin !== undefined;

/** The protocol's exported schemas by identity, so that derived types carry their names. */
function exportedNames(): Map<unknown, string> {
  const names = new Map<unknown, string>();
  for (const [name, value] of Object.entries(protocol)) {
    if (value && typeof value === 'object' && '_zod' in value && /^[A-Z][A-Za-z0-9]*$/.test(name) && !names.has(value)) names.set(value, name);
  }
  return names;
}

const pascal = (text: string) => text.replace(/(^|[._-])(\w)/g, (_, __, letter: string) => letter.toUpperCase());
export const fieldNameOf = (operation: string) => operation.replace(/\./g, '_');

class TypeBuilder {
  private readonly names = exportedNames();
  private readonly objects = new Map<unknown, GraphQLObjectType>();
  private readonly taken = new Set<string>();
  /** Extra fields for named types (the document's relations), added when the type is built. */
  readonly extensions = new Map<string, () => GraphQLFieldConfigMap<unknown, GraphqlContext>>();

  uniqueName(wanted: string): string {
    let name = wanted;
    for (let n = 2; this.taken.has(name); n++) name = `${wanted}${n}`;
    this.taken.add(name);
    return name;
  }

  /** An output type; `hint` names objects the protocol does not export. */
  output(schema: z.ZodType, hint: string): GraphQLOutputType {
    const { type, nullable } = this.outputInner(schema, hint);
    return nullable ? type : (new GraphQLNonNull(type as never) as GraphQLOutputType);
  }

  private outputInner(schema: z.ZodType, hint: string): { type: GraphQLOutputType; nullable: boolean } {
    const def = defOf(schema);
    switch (def.type) {
      case 'nullable':
      case 'optional':
        return { type: this.outputInner(def.innerType as z.ZodType, hint).type, nullable: true };
      case 'default':
      case 'prefault':
      case 'catch':
      case 'readonly':
        return this.outputInner(def.innerType as z.ZodType, hint);
      case 'pipe':
        return this.outputInner(def.out as z.ZodType, hint);
      case 'string':
      case 'enum':
        return { type: GraphQLString, nullable: false };
      case 'number':
        return { type: (schema as unknown as { isInt?: boolean }).isInt ? GraphQLInt : GraphQLFloat, nullable: false };
      case 'boolean':
        return { type: GraphQLBoolean, nullable: false };
      case 'literal': {
        const values = def.values as unknown[];
        const kind = typeof values[0];
        return {
          type: kind === 'boolean' ? GraphQLBoolean : kind === 'number' ? GraphQLFloat : kind === 'string' ? GraphQLString : JsonScalar,
          nullable: false,
        };
      }
      case 'array':
        return { type: new GraphQLList(this.output(def.element as z.ZodType, hint)), nullable: false };
      case 'object':
        // A catch-all (capabilities) has keys GraphQL cannot name: it stays JSON.
        if (def.catchall && defOf(def.catchall as z.ZodType).type !== 'never') return { type: JsonScalar, nullable: false };
        return { type: this.object(schema, def.shape as Record<string, z.ZodType>, hint), nullable: false };
      default:
        return { type: JsonScalar, nullable: false };
    }
  }

  private object(schema: z.ZodType, shape: Record<string, z.ZodType>, hint: string): GraphQLObjectType {
    const known = this.objects.get(schema);
    if (known) return known;
    const name = this.uniqueName(this.names.get(schema) ?? pageName(shape, this.names) ?? hint);
    const type: GraphQLObjectType = new GraphQLObjectType<unknown, GraphqlContext>({
      name,
      fields: () => {
        const fields: GraphQLFieldConfigMap<unknown, GraphqlContext> = {};
        for (const [key, field] of Object.entries(shape)) fields[key] = { type: this.output(field, `${name}${pascal(key)}`) };
        return { ...fields, ...(this.extensions.get(name)?.() ?? {}) };
      },
    });
    this.objects.set(schema, type);
    return type;
  }
}

/** `pageOf(Agent)` is a new object each time: named after its item (`AgentPage`). */
function pageName(shape: Record<string, z.ZodType>, names: Map<unknown, string>): string | undefined {
  if (!shape.data || !shape.has_more || !shape.next_cursor) return undefined;
  const data = defOf(shape.data);
  const item = data.type === 'array' ? names.get(data.element) : undefined;
  return item ? `${item}Page` : undefined;
}

/** Arguments from an input schema's top-level fields; anything GraphQL cannot type precisely is JSON. */
function argumentsOf(input: z.ZodType): GraphQLFieldConfigArgumentMap {
  const def = defOf(input);
  const object = def.type === 'pipe' ? defOf(def.in as z.ZodType) : def;
  if (object.type !== 'object') return { input: { type: JsonScalar } };
  const args: GraphQLFieldConfigArgumentMap = {};
  for (const [key, field] of Object.entries(object.shape as Record<string, z.ZodType>)) {
    const type = inputType(field);
    args[key] = { type: optionalIn(field) || type === JsonScalar ? type : (new GraphQLNonNull(type as never) as GraphQLInputType) };
  }
  return args;
}

function inputType(schema: z.ZodType): GraphQLInputType {
  const def = defOf(schema);
  switch (def.type) {
    case 'nullable':
    case 'optional':
    case 'default':
    case 'prefault':
    case 'catch':
    case 'readonly':
      return inputType(def.innerType as z.ZodType);
    case 'pipe':
      return inputType(def.in as z.ZodType);
    case 'string':
    case 'enum':
      return GraphQLString;
    case 'number':
      return (schema as unknown as { isInt?: boolean }).isInt ? GraphQLInt : GraphQLFloat;
    case 'boolean':
      return GraphQLBoolean;
    case 'array': {
      const item = inputType(def.element as z.ZodType);
      return item === JsonScalar ? JsonScalar : (new GraphQLList(new GraphQLNonNull(item as never)) as GraphQLInputType);
    }
    default:
      return JsonScalar;
  }
}

/** GraphQL omits absent arguments; explicit nulls are kept (the operation's schema decides). */
function inputOf(args: Record<string, unknown>): Record<string, unknown> {
  if ('input' in args && Object.keys(args).length === 1 && args.input && typeof args.input === 'object') return args.input as Record<string, unknown>;
  return Object.fromEntries(Object.entries(args).filter(([, value]) => value !== undefined));
}

function operationField(builder: TypeBuilder, name: string, contract: OperationContract): GraphQLFieldConfig<unknown, GraphqlContext> {
  return {
    type: nullableRoot(builder.output(contract.output, `${pascal(name)}Result`)),
    description: contract.summary,
    args: argumentsOf(contract.input),
    resolve: (_source, args, ctx, info) => ctx.call(name, inputOf(args as Record<string, unknown>), String(info.path.key)),
  };
}

/** Root fields are nullable: one that fails (not found, forbidden) leaves the others' data in place. */
const nullableRoot = (type: GraphQLOutputType): GraphQLOutputType => (isNonNullType(type) ? type.ofType : type);

export function buildSchema(): GraphQLSchema {
  const builder = new TypeBuilder();
  const batch = new Set<string>(BATCH_OPERATION_NAMES);
  const queries: GraphQLFieldConfigMap<unknown, GraphqlContext> = {};
  const mutations: GraphQLFieldConfigMap<unknown, GraphqlContext> = {};
  for (const [name, contract] of Object.entries(contracts) as [string, OperationContract][]) {
    if (!contract.http || batch.has(name)) continue;
    const field = operationField(builder, name, contract);
    if (contract.http.method === 'GET') queries[fieldNameOf(name)] = field;
    else mutations[fieldNameOf(name)] = field;
    // `agent(id: ID!)` for `agents.get`, and so on for every get-by-id.
    const input = defOf(contract.input);
    const keys = input.type === 'object' ? Object.keys(input.shape as object) : [];
    const [resource, verb] = name.split('.') as [string, string];
    if (contract.http.method === 'GET' && verb === 'get' && keys.length === 1 && keys[0]!.endsWith('_id') && resource.endsWith('s')) {
      const idKey = keys[0]!;
      queries[resource.replace(/ies$/, 'y').replace(/s$/, '')] = {
        type: nullableRoot(builder.output(contract.output, `${pascal(name)}Result`)),
        description: contract.summary,
        args: { id: { type: new GraphQLNonNull(GraphQLID) } },
        resolve: (_source, args: { id: string }, ctx, info) => ctx.call(name, { [idKey]: args.id }, String(info.path.key)),
      };
    }
  }
  addRelations(builder);
  // Subscriptions: the operations for connections that receive events (over graphql-ws), each event
  // in the shape of the WebSocket's event frame, with the topic's seq and epoch for resuming.
  const subscribe = contracts['topics.subscribe'];
  const eventType = nullableRoot(builder.output(protocol.EventFrame, 'EventFrame'));
  const subscriptions: GraphQLFieldConfigMap<unknown, GraphqlContext> = {
    [fieldNameOf(subscribe.name)]: {
      type: eventType,
      description: subscribe.summary,
      args: argumentsOf(subscribe.input),
      subscribe: (_source, args, ctx) => {
        if (!ctx.subscribe) throw new GraphQLError('Subscriptions need a graphql-ws connection', { extensions: { code: 'VALIDATION_ERROR' } });
        return ctx.subscribe(inputOf(args as Record<string, unknown>));
      },
      resolve: (event) => {
        if (event instanceof GraphQLError) throw event;
        return event;
      },
    },
  };
  return new GraphQLSchema({
    query: new GraphQLObjectType({ name: 'Query', fields: queries }),
    mutation: new GraphQLObjectType({ name: 'Mutation', fields: mutations }),
    subscription: new GraphQLObjectType({ name: 'Subscription', fields: subscriptions }),
  });
}

/** The document's shape: agent → conversations (connection) → messages, each level batch-loaded. */
function addRelations(builder: TypeBuilder): void {
  const conversation = builder.output(contracts['conversations.get'].output, 'Conversation');
  const message = builder.output(contracts['messages.get'].output, 'Message');
  const pageInfo = new GraphQLObjectType({
    name: builder.uniqueName('PageInfo'),
    fields: {
      hasPreviousPage: { type: new GraphQLNonNull(GraphQLBoolean) },
      hasNextPage: { type: new GraphQLNonNull(GraphQLBoolean) },
      startCursor: { type: GraphQLString },
      endCursor: { type: GraphQLString },
    },
  });
  const edge = new GraphQLObjectType({
    name: builder.uniqueName('ConversationEdge'),
    fields: { node: { type: conversation }, cursor: { type: new GraphQLNonNull(GraphQLString) } },
  });
  const connection = new GraphQLObjectType({
    name: builder.uniqueName('ConversationConnection'),
    fields: { edges: { type: new GraphQLNonNull(new GraphQLList(new GraphQLNonNull(edge))) }, pageInfo: { type: new GraphQLNonNull(pageInfo) } },
  });
  const limit = (value: unknown, fallback: number, field: string): number => {
    const n = value ?? fallback;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > protocol.MAX_BATCH_CHILDREN) {
      throw new GraphQLError(`${field} must be an integer from 1 to ${protocol.MAX_BATCH_CHILDREN}`, { extensions: { code: 'VALIDATION_ERROR' } });
    }
    return n;
  };
  type ConnectionArgs = { first?: number | null; last?: number | null; after?: string | null; before?: string | null };
  builder.extensions.set('Agent', () => ({
    conversations: {
      type: new GraphQLNonNull(connection),
      description:
        "The agent's conversations, oldest first (Relay): `first` from the start or `last` (default 10, the newest) from the end, after/before opaque cursors",
      args: { first: { type: GraphQLInt }, last: { type: GraphQLInt }, after: { type: GraphQLString }, before: { type: GraphQLString } },
      resolve: async (source, args: ConnectionArgs, ctx) => {
        const agent = source as { id: string };
        if (args.first != null && args.last != null) {
          throw new GraphQLError('Give first or last, not both', { extensions: { code: 'VALIDATION_ERROR' } });
        }
        const fromStart = args.first != null;
        const size = fromStart ? limit(args.first, CONVERSATIONS_DEFAULT, 'first') : limit(args.last, CONVERSATIONS_DEFAULT, 'last');
        const after = args.after != null ? decodeCursor(args.after, 'after') : undefined;
        const before = args.before != null ? decodeCursor(args.before, 'before') : undefined;
        // One more than asked: whether there is more in the direction of reading.
        const fetch = Math.min(size + 1, protocol.MAX_BATCH_CHILDREN);
        const slice: ConnectionSlice = {
          ...(fromStart ? { first: fetch } : { last: fetch }),
          ...(after !== undefined ? { after } : {}),
          ...(before !== undefined ? { before } : {}),
        };
        const rows = (await ctx.conversationsOf(agent.id, slice)) as { id: string }[];
        const more = rows.length > size;
        const page = !more ? rows : fromStart ? rows.slice(0, size) : rows.slice(rows.length - size);
        const edges = page.map((node) => ({ node, cursor: encodeCursor(node.id) }));
        return {
          edges,
          pageInfo: {
            // Reading forward, there is a previous page when a cursor was given (its row precedes); backward, likewise.
            hasPreviousPage: fromStart ? after !== undefined : more,
            hasNextPage: fromStart ? more : before !== undefined,
            startCursor: edges[0]?.cursor ?? null,
            endCursor: edges.at(-1)?.cursor ?? null,
          },
        };
      },
    },
  }));
  builder.extensions.set('Conversation', () => ({
    messages: {
      // `message` is already non-null.
      type: new GraphQLNonNull(new GraphQLList(message)),
      description: "The conversation's newest `last` messages, oldest first",
      args: { last: { type: GraphQLInt, default: { value: MESSAGES_DEFAULT } } },
      resolve: (source, args: { last?: number | null }, ctx) => ctx.messagesOf((source as { id: string }).id, limit(args.last, MESSAGES_DEFAULT, 'last')),
    },
  }));
  builder.extensions.set('Message', () => ({
    timestamp: {
      type: new GraphQLNonNull(GraphQLString),
      description: 'When it was written (created_at)',
      resolve: (source) => (source as { created_at: string }).created_at,
    },
  }));
}
