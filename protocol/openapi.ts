import { z } from 'zod';
import { ERROR_CODES } from './errors.js';
import { contracts, REST_OPERATION_NAMES, type OperationContract } from './operations.js';

/**
 * The OpenAPI 3.1 document of the REST API, generated from the operation table: every route,
 * its inputs and outputs come from the same zod schemas the server validates with.
 */
export function openApiDocument(options: { serverUrl?: string } = {}): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const name of REST_OPERATION_NAMES) {
    const contract = contracts[name] as OperationContract;
    const { method, path } = contract.http!;
    (paths[path] ??= {})[method.toLowerCase()] = operation(contract);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'stategate',
      version: 'v1',
      description:
        'StateSet API and StateBase Sessions API over one operation table. The same operations are served as GraphQL at /graphql (POST, and GET for queries; subscriptions over graphql-ws on the same path) and as WebSocket calls at /v1/ws.',
    },
    ...(options.serverUrl ? { servers: [{ url: options.serverUrl }] } : {}),
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'API key, or a client token' },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
      },
    },
    security: [{ bearer: [] }, { apiKey: [] }],
    paths,
  };
}

function operation(contract: OperationContract): Record<string, unknown> {
  const input = schemaOf(contract.input, 'input');
  const properties = (input.properties ?? {}) as Record<string, unknown>;
  const required = new Set((input.required as string[] | undefined) ?? []);
  const pathParams = [...contract.http!.path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]!);
  const inQuery = contract.http!.method === 'GET' || contract.http!.method === 'DELETE';
  const parameters = [
    ...pathParams.map((name) => ({ name, in: 'path', required: true, schema: properties[name] ?? { type: 'string' } })),
    ...(inQuery
      ? Object.entries(properties)
          .filter(([name]) => !pathParams.includes(name))
          .map(([name, schema]) => ({ name, in: 'query', required: required.has(name), schema }))
      : []),
  ];
  const bodyProperties = Object.fromEntries(Object.entries(properties).filter(([name]) => !pathParams.includes(name)));
  const status = String(contract.http!.status ?? 200);
  return {
    operationId: contract.name,
    summary: contract.summary,
    description: `Permission: \`${typeof contract.permission === 'string' ? contract.permission : 'by topic'}\`. Also a WebSocket call: \`{"type":"call","method":"${contract.name}"}\`.`,
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(inQuery
      ? {}
      : {
          requestBody: {
            required: required.size > pathParams.length,
            content: {
              'application/json': {
                schema: { ...input, properties: bodyProperties, required: [...required].filter((name) => !pathParams.includes(name)) },
              },
            },
          },
        }),
    responses: {
      [status]: {
        description: 'Success, in the StateSet envelope',
        content: {
          'application/json': {
            schema: {
              type: 'object',
              required: ['success', 'data', 'meta'],
              properties: { success: { const: true }, data: schemaOf(contract.output, 'output'), meta: { type: 'object' } },
            },
          },
        },
      },
      default: {
        description: `Error, in the StateSet envelope; error.code is one of ${Object.keys(ERROR_CODES).join(', ')}`,
        content: { 'application/json': { schema: { type: 'object', required: ['success', 'error', 'meta'] } } },
      },
    },
  };
}

function schemaOf(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  delete json.$schema;
  return json;
}
