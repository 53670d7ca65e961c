import { createRequire } from 'node:module';

import type { RequestRoute, Server } from '@hapi/hapi';
import type { ObjectSchema, Schema } from 'joi';
import type { parse as Parse } from 'joi-to-json';

// The OpenAPI 3 document is derived from the routes' own validation and response schemas, once, when
// the server starts: what is documented is what is enforced.

// joi-to-json is CommonJS whose typings declare an ES default export that does not exist at run time.
const parse = createRequire(import.meta.url)('joi-to-json') as typeof Parse;


declare module '@hapi/hapi' {
    interface RouteOptionsApp {
        /** Statuses the handler answers besides success, each with what it means. */
        statuses?: Record<number, string>;
        /** Headers of the success response. */
        headers?: Record<string, { description: string; required: boolean; schema: object }>;
    }
}


interface Operation {
    summary?: string;
    description?: string;
    parameters: object[];
    requestBody?: object;
    responses: Record<string, object>;
}


const internals = {

    // What hapi itself answers on every route that validates, parses a body or reaches the database.
    statuses: {
        validation: 'Invalid input; field names the first input at fault',
        tooLarge: 'Body larger than the limit',
        mediaType: 'Body is not application/json',
        unavailable: 'Database unavailable, overloaded or slow: retry after Retry-After seconds'
    },

    // joi-to-json drops an object's min/max key counts: PATCH's "at least one field" would go unsaid.
    schema(joi: Schema): Record<string, unknown> {

        const schema = parse(joi, 'open-api') as Record<string, unknown>;
        const description = joi.describe() as { type: string; rules?: { name: string; args: { limit: number } }[] };
        for (const rule of description.type === 'object' ? description.rules ?? [] : []) {
            if (rule.name === 'min' || rule.name === 'max') {
                schema[`${rule.name}Properties`] = rule.args.limit;
            }
        }

        return schema;
    },

    isJoi: (value: unknown): value is Schema => Boolean(value) && typeof value === 'object' && 'describe' in (value as object),

    parameters(joi: unknown, location: 'path' | 'query' | 'header'): object[] {

        if (!internals.isJoi(joi)) {
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

    // An error's body is boom's shape, with statusCode equal to the response's status.
    error(status: number, description: string): object {

        if (status === 304) {
            return { description };
        }

        const schema = { allOf: [{ $ref: '#/components/schemas/Error' }, { type: 'object', properties: { statusCode: { type: 'integer', enum: [status] } } }] };
        return {
            description,
            ...(status === 503 ? { headers: { 'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer', minimum: 0 } } } } : {}),
            content: { 'application/json': { schema } }
        };
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

        const hasPayload = internals.isJoi(validate.payload);
        if (hasPayload) {
            operation.requestBody = { required: true, content: { 'application/json': { schema: internals.schema(validate.payload as Schema) } } };
        }

        const statuses = Object.entries(response.status ?? {});
        const success = statuses.length ? statuses : response.schema ? [[route.method === 'post' ? '201' : '200', response.schema]] : [['204', null]];
        for (const [status, schema] of success) {
            operation.responses[String(status)] = internals.isJoi(schema) ?
                { description: 'Success', ...(settings.app?.headers ? { headers: settings.app.headers } : {}), content: { 'application/json': { schema: internals.schema(schema) } } } :
                { description: 'No content' };
        }

        const validates = Boolean(validate.params || validate.query || validate.headers || hasPayload);
        const others = new Map<number, string>(validates ? [[400, internals.statuses.validation]] : []);
        if (hasPayload) {
            others.set(413, internals.statuses.tooLarge).set(415, internals.statuses.mediaType);
        }

        for (const [status, description] of Object.entries(settings.app?.statuses ?? {})) {
            others.set(Number(status), description);
        }

        others.set(503, internals.statuses.unavailable);
        for (const status of [...others.keys()].sort((a, b) => a - b)) {
            operation.responses[String(status)] = internals.error(status, others.get(status)!);
        }

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
            schemas: {
                Error: {
                    type: 'object',
                    description: 'Every error (boom\'s shape); field names the input at fault when there is one',
                    required: ['statusCode', 'error', 'message'],
                    additionalProperties: false,
                    properties: {
                        statusCode: { type: 'integer' },
                        error: { type: 'string' },
                        message: { type: 'string' },
                        field: { type: 'string' }
                    }
                }
            }
        }
    };
};
