import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';


// The service's own OpenAPI document, as it serves it, is the only description of the API the fuzzer
// knows: requests are generated from its schemas and judged by them, and so are the responses.

export interface Schema {
    type?: string;
    nullable?: boolean;
    enum?: unknown[];
    pattern?: string;
    format?: string;
    minLength?: number;
    maxLength?: number;
    minimum?: number;
    maximum?: number;
    properties?: Record<string, Schema>;
    required?: string[];
    additionalProperties?: boolean;
    minProperties?: number;
    items?: Schema;
    default?: unknown;
}


export interface Parameter {
    name: string;
    in: 'path' | 'query' | 'header';
    required: boolean;
    schema: Schema;
}


export interface Operation {
    method: string;
    path: string;
    parameters: Parameter[];
    body?: Schema;
    contentTypes: string[];
    statuses: string[];
}


export interface Request {
    method: string;
    path: string;
    params: Record<string, unknown>;
    query: Record<string, unknown>;
    headers: Record<string, unknown>;
    body?: unknown;
}


export interface Document {
    readonly operations: Operation[];
    operation(method: string, path: string): Operation;
    // Errors of a request against its operation's schemas: empty when the document calls it valid.
    requestErrors(operation: Operation, request: Request): string[];
    // The inputs at fault: parameter names and body properties; none for a body that is not an object.
    faultyFields(operation: Operation, request: Request): string[];
    // Errors of a response against what the document says its operation answers: status, headers, body.
    responseErrors(operation: Operation, response: { status: number; headers: Headers; contentType: string | null; body: unknown }): string[];
}


const internals = {

    id: 'https://item-api.test/openapi.json',

    pointer: (...segments: string[]) => segments.map((segment) => segment.replace(/~/g, '~0').replace(/\//g, '~1')).join('/'),

    // Parameters travel as text, so they are judged as the service receives them: a query's "5" is the
    // integer 5, as OpenAPI's serialization says, and a header's 1.5 is the string "1.5".
    wire(value: unknown, schema: Schema): unknown {

        const text = String(value);
        return schema.type === 'integer' && /^-?\d+$/.test(text) ? Number(text) : text;
    }
};


export const load = async function (url: string): Promise<Document> {

    const doc = await (await fetch(`${url}/openapi.json`)).json() as {
        paths: Record<string, Record<string, { parameters?: Parameter[]; requestBody?: { content: Record<string, { schema: Schema }> }; responses: Record<string, unknown> }>>;
    };

    // The document itself is the schema registry: a response's schema is compiled by its JSON pointer, refs and all.
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
    addFormats.default(ajv);
    ajv.addSchema(doc, internals.id);

    const compiled = new Map<string, ValidateFunction>();
    const validator = (pointer: string) => {

        if (!compiled.has(pointer)) {
            compiled.set(pointer, ajv.compile({ $ref: `${internals.id}#${pointer}` }));
        }

        return compiled.get(pointer)!;
    };

    const describe = (validate: ValidateFunction) => (validate.errors ?? []).map((error) => ` ${error.instancePath || '(root)'} ${error.message}`);

    const faults = (operation: Operation, request: Request): { field?: string; message: string }[] => {

        const errors: { field?: string; message: string }[] = [];
        const base = internals.pointer('', 'paths', operation.path, operation.method);
        operation.parameters.forEach((parameter, index) => {

            const source = parameter.in === 'path' ? request.params : parameter.in === 'query' ? request.query : request.headers;
            const value = source[parameter.name];
            if (value === undefined) {
                if (parameter.required) {
                    errors.push({ field: parameter.name, message: `${parameter.in} ${parameter.name} is required` });
                }

                return;
            }

            const validate = validator(`${base}/parameters/${index}/schema`);
            if (!validate(internals.wire(value, parameter.schema))) {
                errors.push(...describe(validate).map((message) => ({ field: parameter.name, message: `${parameter.in} ${parameter.name}${message}` })));
            }
        });

        if (operation.body) {
            const validate = validator(`${base}/requestBody/content/application~1json/schema`);
            const contentType = request.headers['content-type'];
            if (contentType !== undefined && !operation.contentTypes.some((type) => String(contentType).split(';')[0]!.trim().toLowerCase() === type)) {
                errors.push({ message: `content-type ${contentType} is not one of ${operation.contentTypes.join(', ')}` });
            }

            if (request.body === undefined) {
                errors.push({ message: 'body is required' });
            }
            else if (!validate(request.body)) {
                for (const error of validate.errors ?? []) {
                    const params = error.params as { additionalProperty?: string; missingProperty?: string };
                    const field = error.instancePath.split('/')[1]?.replace(/~1/g, '/').replace(/~0/g, '~') ?? params.additionalProperty ?? params.missingProperty;
                    errors.push({ ...(field === undefined ? {} : { field }), message: `body ${error.instancePath || '(root)'} ${error.message}` });
                }
            }
        }

        return errors;
    };

    const operations = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => ({
        method,
        path,
        parameters: operation.parameters ?? [],
        ...(operation.requestBody ? { body: operation.requestBody.content['application/json']!.schema } : {}),
        contentTypes: Object.keys(operation.requestBody?.content ?? {}),
        statuses: Object.keys(operation.responses)
    })));

    return {
        operations,

        operation(method, path) {

            const found = operations.find((operation) => operation.method === method && operation.path === path);
            if (!found) {
                throw new Error(`The document has no operation ${method} ${path}`);
            }

            return found;
        },

        requestErrors(operation, request) {

            return faults(operation, request).map((fault) => fault.message);
        },

        faultyFields(operation, request) {

            return faults(operation, request).flatMap((fault) => (fault.field === undefined ? [] : [fault.field]));
        },

        responseErrors(operation, { status, headers, contentType, body }) {

            const key = String(status);
            if (!operation.statuses.includes(key)) {
                return [`status ${status} is not documented for ${operation.method.toUpperCase()} ${operation.path} (documented: ${operation.statuses.join(', ')})`];
            }

            const base = internals.pointer('', 'paths', operation.path, operation.method, 'responses', key);
            const response = doc.paths[operation.path]![operation.method]!.responses[key] as { headers?: Record<string, { required?: boolean }>; content?: Record<string, unknown> };
            const errors = Object.entries(response.headers ?? {}).flatMap(([name, header]) => {

                const value = headers.get(name);
                if (value === null) {
                    return header.required ? [`response ${status} lacks its required header ${name}`] : [];
                }

                const validate = validator(`${base}/headers/${internals.pointer(name)}/schema`);
                return validate(value) ? [] : describe(validate).map((message) => `response ${status} header ${name}${message}`);
            });

            if (!response.content) {
                return body === null ? errors : [...errors, `status ${status} is documented without a body, got ${JSON.stringify(body)}`];
            }

            if (!contentType || !Object.keys(response.content).some((type) => contentType.startsWith(type))) {
                return [...errors, `status ${status} content-type ${contentType} is not one of ${Object.keys(response.content).join(', ')}`];
            }

            const validate = validator(`${base}/content/application~1json/schema`);
            return validate(body) ? errors : [...errors, ...describe(validate).map((message) => `response ${status} body${message}`)];
        }
    };
};
