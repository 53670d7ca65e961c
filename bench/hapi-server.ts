import Hapi from '@hapi/hapi';

import * as PgItems from './pg-items.ts';


// hapi itself, without the service: the same pg Pool, named prepared statement, JSON fields and
// ETag as the bare handler, one route, no validation, extensions, logging or load sampling. The
// distance from the bare handler to this is hapi's; from this to the service, what the service adds.


const main = async function (): Promise<void> {

    const items = PgItems.reader(PgItems.databaseUrl());
    const server = Hapi.server({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 3003) });
    server.listener.keepAliveTimeout = 65_000;
    server.listener.headersTimeout = 66_000;

    server.route({
        method: 'GET',
        path: '/health',
        handler: async () => {

            await items.get('00000000-0000-7000-8000-000000000000');       // Ready once the database answers
            return { status: 'ok' };
        }
    });

    server.route({
        method: 'GET',
        path: '/items/{id}',
        handler: async (request, h) => {

            const id = request.params.id as string;
            if (!PgItems.isUuid(id)) {
                return h.response({ statusCode: 400, error: 'Bad Request' }).code(400);
            }

            const item = await items.get(id);
            if (!item) {
                return h.response({ statusCode: 404, error: 'Not Found', message: 'Item not found' }).code(404);
            }

            return h.response(item).etag(String(item.version), { weak: false, vary: false });
        }
    });

    process.once('SIGTERM', () => {

        server.stop({ timeout: 1000 }).then(() => items.end()).finally(() => process.exit(0));
    });

    await server.start();
};


await main();
