import { createRequire } from 'node:module';

import type { RequestRoute, Server } from '@hapi/hapi';
import type { ObjectSchema, Schema } from 'joi';
import type { parse as Parse } from 'joi-to-json';

// The OpenAPI 3 document is derived from the routes' own validation and response schemas, once, when
// the server starts: what is documented is what is enforced.

// joi-to-json is CommonJS whose typings declare an ES default export that does not exist at run time.
const parse = createRequire(import.meta.url)('joi-to-json') as typeof Parse;


interface Operation {
    summary?: string;
    description?: string;
    parameters: object[];
    requestBody?: object;
    responses: Record<string, object>;
}


const internals = {
    errorResponse: { $ref: '#/components/responses/Error' },

    schema: (joi: Schema) => parse(joi, 'open-api') as Record<string, unknown>,

    parameters(joi: unknown, location: 'path' | 'query' | 'header'): object[] {

        if (!joi || typeof joi !== 'object' || !('describe' in joi)) {
            return [];
        }

        const schema = internals.schema(joi as ObjectSchema) as { properties?: Record<string, { description?: string }>; required?: string[] };
        return Object.entries(schema.properties ?? {}).map(([name, property]) => ({
            name,
            in: location,
            required: location === 'path' || (schema.required ?? []).includes(name),
            ...(property.description ? { description: property.description } : {}),
            schema: property
        }));
    },

    operation(route: RequestRoute): Operation {

        const settings = route.settings;
        const validate = settings.validate ?? {};
        const response = settings.response ?? {};
        const operation: Operation = {
            ...(settings.description ? { summary: settings.description } : {}),
            ...(settings.notes ? { description: String(settings.notes) } : {}),
            parameters: [
                ...internals.parameters(validate.params, 'path'),
                ...internals.parameters(validate.query, 'query'),
                ...internals.parameters(validate.headers, 'header')
            ],
            responses: {}
        };

        if (validate.payload && typeof validate.payload === 'object' && 'describe' in validate.payload) {
            operation.requestBody = { required: true, content: { 'application/json': { schema: internals.schema(validate.payload as Schema) } } };
        }

        const statuses = Object.entries(response.status ?? {});
        const success = statuses.length ? statuses : response.schema ? [[route.method === 'post' ? '201' : '200', response.schema]] : [['204', null]];
        for (const [status, schema] of success) {
            operation.responses[String(status)] = schema && typeof schema === 'object' && 'describe' in schema ?
                { description: 'Success', content: { 'application/json': { schema: internals.schema(schema as Schema) } } } :
                { description: 'No content' };
        }

        operation.responses['4XX'] = internals.errorResponse;
        operation.responses['503'] = internals.errorResponse;
        return operation;
    }
};


export const document = function (server: Server, info: { title: string; version: string }): object {

    const paths: Record<string, Record<string, Operation>> = {};
    for (const route of server.table()) {
        if (!route.settings.tags?.includes('api')) {
            continue;
        }

        paths[route.path] ??= {};
        paths[route.path]![route.method] = internals.operation(route);
    }

    return {
        openapi: '3.0.3',
        info,
        paths,
        components: {
            responses: {
                Error: {
                    description: 'Error (boom shape); validation errors name the failing field',
                    content: {
                        'application/json': {
                            schema: {
                                type: 'object',
                                required: ['statusCode', 'error', 'message'],
                                properties: {
                                    statusCode: { type: 'integer' },
                                    error: { type: 'string' },
                                    message: { type: 'string' },
                                    field: { type: 'string' }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
};
