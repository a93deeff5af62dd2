import {
  getOperationAST,
  GraphQLError,
  NoSchemaIntrospectionCustomRule,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import { inputProblem, inputProblemError, MAX_INPUT_DEPTH } from '../../../protocol/index.js';
import { validationFailure } from '../../kernel/errors.js';
import { checkBounds, type CostLimits } from './cost.js';
import { coded, codedError, failureError } from './errors.js';

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
 * shape, its variables (nesting, NULs, lone surrogates), parsing (at most 10,000 tokens), depth,
 * aliases and cost (in time linear in the document's size, before validation), validation, then
 * the operation to run. Authentication and the rate-limit unit are the caller's, before this:
 * nothing here runs for a caller without valid credentials.
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
  // The rules every input obeys (REST and /v1/ws too), before anything walks or hashes the variables.
  const problem = inputProblem(variables, MAX_INPUT_DEPTH);
  if (problem) return refuse(400, [failureError(validationFailure(inputProblemError(problem), 'variables'))]);

  let document: DocumentNode;
  try {
    document = parse(query, { maxTokens: 10_000 });
  } catch (error) {
    // The parser recurses: a few thousand nested selections overflow its stack before any limit applies.
    const parseError = error instanceof GraphQLError ? error : codedError('Document is nested too deeply to parse', 'GRAPHQL_PARSE_FAILED');
    return refuse(400, [coded(parseError, 'GRAPHQL_PARSE_FAILED')]);
  }
  const operation = getOperationAST(document, operationName);
  const label = operation ? { name: operationName ?? operation.name?.value ?? 'anonymous', type: operation.operation } : undefined;
  const outOfBounds = checkBounds(schema, document, variables, limits);
  if (outOfBounds) return refuse(400, [outOfBounds], label);
  const invalid = validateDocument(schema, document, limits);
  if (invalid.length > 0) return refuse(400, invalid, label);
  if (!operation || !label) {
    return refuse(400, [codedError(operationName ? `Unknown operation ${operationName}` : 'Name the operation to run (operationName)', 'BAD_USER_INPUT')]);
  }
  return { prepared: { query, document, operation, operationName, variables, label } };
}

/** The standard rules (and no introspection when switched off), each error with a code. */
function validateDocument(schema: GraphQLSchema, document: DocumentNode, limits: GraphqlLimits): GraphQLError[] {
  const rules = limits.introspection ? specifiedRules : [...specifiedRules, NoSchemaIntrospectionCustomRule];
  // NoSchemaIntrospectionCustomRule's message only: other rules speak of introspection fields too.
  return validate(schema, document, rules, { maxErrors: 20 }).map((error) =>
    coded(error, /^GraphQL introspection has been disabled/.test(error.message) ? 'INTROSPECTION_DISABLED' : 'GRAPHQL_VALIDATION_FAILED'),
  );
}
