import Boom from '@hapi/boom';
import type { Request, ResponseToolkit, ServerRoute } from '@hapi/hapi';

import type { Db } from '../db.ts';
import * as Schemas from './schemas.ts';
import * as Store from './store.ts';
import type { Item } from './store.ts';


export interface RouteOptions {
    readonly db: Db;
    readonly idempotencyTtlMs: number;
    readonly validateResponses: boolean;
}


const internals = {

    respond(h: ResponseToolkit, item: Item, statusCode = 200) {

        // vary: false keeps one tag per version whatever the encoding, so a client can always send it back in If-Match.
        return h.response(item).code(statusCode).etag(String(item.version), { weak: false, vary: false });
    },

    // If-Match compares strongly (RFC 9110 13.1.1): a weak tag never matches; "*" matches any current version.
    expectedVersion(header: string): number | '*' | null {

        const tags = header.split(',').map((tag) => tag.trim());
        if (tags.includes('*')) {
            return '*';
        }

        for (const tag of tags) {
            const match = /^"(\d{1,10})"$/.exec(tag);
            if (match) {
                return Number(match[1]);
            }
        }

        return null;                                                // Present but matches no version
    },

    // PATCH declares If-Match required, so its absence fails header validation; RFC 6585 names that
    // case 428, which tells a client to read the item first, where a 400 would say its request is malformed.
    preconditionRequired(request: Request, _h: ResponseToolkit, err?: Error): never {

        if (request.headers['if-match'] === undefined) {
            throw Boom.preconditionRequired('If-Match with the item\'s current ETag is required', { field: 'if-match' });
        }

        throw err;
    },

    id: (request: Request) => (request.params as { id: string }).id,

    location: (request: Request, id: string) => `${request.path.replace(/\/$/, '')}/${id}`,

    // Response headers as the OpenAPI document states them.
    etag: { description: 'The item\'s version as a strong tag, for If-Match and If-None-Match', required: true, schema: { type: 'string', pattern: '^"[1-9][0-9]*"$' } },

    created: {
        Location: { description: 'Path of the item', required: true, schema: { type: 'string', pattern: '^/items/[0-9a-f-]{36}$' } },
        'Idempotent-Replayed': { description: '"true" when the response replays the first one for this Idempotency-Key', required: false, schema: { type: 'string', enum: ['true'] } }
    }
};


export const routes = function (options: RouteOptions): ServerRoute[] {

    const { db } = options;
    const response = (schema: object, status?: Record<number, object | boolean>) => ({
        schema, status, sample: options.validateResponses ? 100 : 0, failAction: 'error' as const
    });

    // Each route lists the statuses its handler answers besides success; the OpenAPI document adds those
    // that validation, payload parsing and the database answer on every route.
    return [
        {
            method: 'POST',
            path: '/items',
            options: {
                tags: ['api'],
                description: 'Create an item',
                notes: 'With Idempotency-Key, the same key and body within 24 h replays the first response; the same key with another body is 422.',
                validate: { payload: Schemas.createItem, headers: Schemas.idempotencyHeaders },
                response: response(Schemas.item, { 201: Schemas.item }),
                app: { statuses: { 422: 'Idempotency-Key already used with another body' }, headers: { ETag: internals.etag, ...internals.created } },
                handler: async (request, h) => {

                    const key = request.headers['idempotency-key'] as string | undefined;
                    const payload = request.payload as Store.NewItem;
                    const outcome = await Store.create(db, payload, key ? { key, ttlMs: options.idempotencyTtlMs } : undefined);

                    if (outcome.kind === 'key-conflict') {
                        throw Boom.badData('Idempotency-Key was already used with a different request body', { field: 'idempotency-key' });
                    }

                    const [item, statusCode] = outcome.kind === 'created' ? [outcome.item, 201] : [outcome.response.body, outcome.response.statusCode];
                    const result = internals.respond(h, item, statusCode).location(internals.location(request, item.id));
                    return outcome.kind === 'replayed' ? result.header('idempotent-replayed', 'true') : result;
                }
            }
        },
        {
            method: 'GET',
            path: '/items',
            options: {
                tags: ['api'],
                description: 'List items, oldest first, one page at a time',
                validate: { query: Schemas.listQuery },
                response: response(Schemas.itemList),
                handler: async (request) => {

                    const { limit, cursor } = request.query as { limit: number; cursor?: string };
                    const page = await Store.list(db, { limit, ...(cursor ? { after: cursor } : {}) });
                    return { items: page.items, nextCursor: page.last };
                }
            }
        },
        {
            method: 'GET',
            path: '/items/{id}',
            options: {
                tags: ['api'],
                description: 'Get an item',
                validate: { params: Schemas.idParams, headers: Schemas.ifNoneMatchHeaders },
                response: response(Schemas.item),
                app: { statuses: { 304: 'Not modified: If-None-Match names the current version', 404: 'No item with this id' }, headers: { ETag: internals.etag } },
                handler: async (request, h) => {

                    const item = await Store.get(db, internals.id(request));
                    if (!item) {
                        throw Boom.notFound('Item not found');
                    }

                    return internals.respond(h, item);
                }
            }
        },
        {
            method: 'PATCH',
            path: '/items/{id}',
            options: {
                tags: ['api'],
                description: 'Change some fields of an item',
                notes: 'Requires If-Match with the current ETag: missing -> 428, stale -> 412.',
                validate: { params: Schemas.idParams, payload: Schemas.updateItem, headers: Schemas.requiredIfMatchHeaders, failAction: internals.preconditionRequired },
                response: response(Schemas.item),
                app: { statuses: { 404: 'No item with this id', 412: 'If-Match does not match the current version', 428: 'If-Match missing' }, headers: { ETag: internals.etag } },
                handler: async (request, h) => {

                    const expected = internals.expectedVersion(request.headers['if-match'] as string);
                    const outcome = expected === null ?
                        await Store.get(db, internals.id(request)).then((item) => (item ? { kind: 'stale' } as const : { kind: 'not-found' } as const)) :
                        await Store.update(db, internals.id(request), expected, request.payload as Store.ItemChanges);

                    if (outcome.kind === 'not-found') {
                        throw Boom.notFound('Item not found');
                    }

                    if (outcome.kind === 'stale') {
                        throw Boom.preconditionFailed('If-Match does not match the item\'s current ETag', { field: 'if-match' });
                    }

                    return internals.respond(h, outcome.item);
                }
            }
        },
        {
            method: 'DELETE',
            path: '/items/{id}',
            options: {
                tags: ['api'],
                description: 'Delete an item',
                notes: 'If-Match is optional; when present it must match the current ETag.',
                validate: { params: Schemas.idParams, headers: Schemas.optionalIfMatchHeaders },
                app: { statuses: { 404: 'No item with this id', 412: 'If-Match does not match the current version' } },
                handler: async (request, h) => {

                    const header = request.headers['if-match'] as string | undefined;
                    const expected = header === undefined ? undefined : internals.expectedVersion(header);
                    const outcome = expected === null ?
                        await Store.get(db, internals.id(request)).then((item) => (item ? 'stale' : 'not-found')) :
                        await Store.remove(db, internals.id(request), expected);

                    if (outcome === 'not-found') {
                        throw Boom.notFound('Item not found');
                    }

                    if (outcome === 'stale') {
                        throw Boom.preconditionFailed('If-Match does not match the item\'s current ETag', { field: 'if-match' });
                    }

                    return h.response().code(204);
                }
            }
        }
    ];
};
