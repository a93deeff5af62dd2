import {
  getOperationAST,
  Kind,
  NoSchemaIntrospectionCustomRule,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLError,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import { protect, type CostLimits } from './cost.js';
import { coded, codedError } from './errors.js';

/** Protection against one document taking the server down (configuration, GRAPHQL_*). */
export interface GraphqlLimits extends CostLimits {
  introspection: boolean;
}

/** A GraphQL request as sent (a POST body, GET parameters, a graphql-ws subscribe payload): not yet checked. */
export interface GraphqlRequest {
  query?: unknown;
  variables?: unknown;
  operationName?: unknown;
}

/** The operation a document runs, as the metrics name it. */
export interface OperationLabel {
  name: string;
  type: string;
}

/** A document ready to execute: parsed, within the limits, valid, its operation chosen. */
export interface PreparedDocument {
  query: string;
  document: DocumentNode;
  operation: OperationDefinitionNode;
  /** As the client named it (undefined: the document's only operation). */
  operationName: string | undefined;
  variables: Record<string, unknown>;
  label: OperationLabel;
}

/** Why a document is not run: the HTTP status, the errors, and the operation once it is known. */
export interface Refusal {
  status: number;
  errors: GraphQLError[];
  label?: OperationLabel;
}

/**
 * The one way from a request to something to execute, shared by HTTP and graphql-ws: the request's
 * shape, parsing (at most 10,000 tokens), validation, the operation, then depth, aliases and cost.
 * Authentication is the caller's, before this.
 */
export function prepareDocument(schema: GraphQLSchema, request: GraphqlRequest, limits: GraphqlLimits): { prepared: PreparedDocument } | { refused: Refusal } {
  const refuse = (status: number, errors: GraphQLError[], label?: OperationLabel) => ({ refused: { status, errors, ...(label ? { label } : {}) } });
  if (typeof request.query !== 'string' || request.query.trim() === '') return refuse(400, [codedError('query must be a non-empty string', 'BAD_REQUEST')]);
  if (request.variables != null && (typeof request.variables !== 'object' || Array.isArray(request.variables))) {
    return refuse(400, [codedError('variables must be an object', 'BAD_USER_INPUT')]);
  }
  if (request.operationName != null && typeof request.operationName !== 'string')
    return refuse(400, [codedError('operationName must be a string', 'BAD_REQUEST')]);
  const query = request.query;
  const variables = (request.variables ?? {}) as Record<string, unknown>;
  const operationName = (request.operationName as string | null | undefined) ?? undefined;

  let document: DocumentNode;
  try {
    document = parse(query, { maxTokens: 10_000 });
  } catch (error) {
    return refuse(400, [coded(error as GraphQLError, 'GRAPHQL_PARSE_FAILED')]);
  }
  const invalid = validateDocument(schema, document, limits);
  if (invalid.length > 0) return refuse(400, invalid);
  const operation = getOperationAST(document, operationName);
  if (!operation) {
    return refuse(400, [codedError(operationName ? `Unknown operation ${operationName}` : 'Name the operation to run (operationName)', 'BAD_USER_INPUT')]);
  }
  const label = { name: operationName ?? operation.name?.value ?? 'anonymous', type: operation.operation };
  const fragments = Object.fromEntries(
    document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]),
  );
  const protection = protect(schema, operation.selectionSet, operation.operation, fragments, variables, limits);
  if (protection) return refuse(400, [protection], label);
  return { prepared: { query, document, operation, operationName, variables, label } };
}

/** The standard rules (and no introspection when switched off), each error with a code. */
function validateDocument(schema: GraphQLSchema, document: DocumentNode, limits: GraphqlLimits): GraphQLError[] {
  const rules = limits.introspection ? specifiedRules : [...specifiedRules, NoSchemaIntrospectionCustomRule];
  return validate(schema, document, rules, { maxErrors: 20 }).map((error) =>
    coded(error, /introspection/i.test(error.message) ? 'INTROSPECTION_DISABLED' : 'GRAPHQL_VALIDATION_FAILED'),
  );
}
