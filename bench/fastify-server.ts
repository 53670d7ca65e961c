import Fastify from 'fastify';

import * as PgItems from './pg-items.ts';


// The peer a Node user would pick instead of hapi: fastify with the same pg Pool, the same named
// prepared statement, the same JSON fields and ETag. The id is checked by fastify's own route
// schema (ajv), as a fastify service would; its request logger is off, as the bare handler's is.


const main = async function (): Promise<void> {

    const items = PgItems.reader(PgItems.databaseUrl());
    const app = Fastify({ logger: false, keepAliveTimeout: 65_000 });
    app.server.headersTimeout = 66_000;

    app.get('/health', async () => {

        await items.get('00000000-0000-7000-8000-000000000000');           // Ready once the database answers
        return { status: 'ok' };
    });

    app.get<{ Params: { id: string } }>('/items/:id', {
        schema: { params: { type: 'object', properties: { id: { type: 'string', format: 'uuid' } }, required: ['id'] } }
    }, async (request, reply) => {

        const item = await items.get(request.params.id);
        if (!item) {
            return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'Item not found' });
        }

        reply.header('cache-control', 'no-cache').header('etag', `"${item.version}"`);
        return item;
    });

    process.once('SIGTERM', () => {

        app.close().then(() => items.end()).finally(() => process.exit(0));
    });

    await app.listen({ port: Number(process.env.PORT ?? 3002), host: process.env.HOST ?? '127.0.0.1' });
};


await main();
