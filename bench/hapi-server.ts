import Hapi from '@hapi/hapi';
import pg from 'pg';


// hapi itself, without the service: the same pg Pool, named prepared statement, JSON fields and
// ETag as the bare handler, one route, no validation, extensions, logging or load sampling. The
// distance from the bare handler to this is hapi's; from this to the service, what the service adds.


const internals = {
    poolMax: Number(process.env.DB_POOL_MAX ?? 10),
    uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-[17][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i,
    sql: 'select id, name, description, quantity, version, created_at, updated_at from items where id = $1'
};


const main = async function (): Promise<void> {

    const url = process.env.DATABASE_URL;
    if (!url) {
        throw new Error('DATABASE_URL is required');
    }

    const pool = new pg.Pool({ connectionString: url, max: internals.poolMax });
    const server = Hapi.server({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 3003) });
    server.listener.keepAliveTimeout = 65_000;
    server.listener.headersTimeout = 66_000;

    server.route({
        method: 'GET',
        path: '/health',
        handler: async () => {

            await pool.query('select 1');
            return { status: 'ok' };
        }
    });

    server.route({
        method: 'GET',
        path: '/items/{id}',
        handler: async (request, h) => {

            const id = request.params.id as string;
            if (!internals.uuid.test(id)) {
                return h.response({ statusCode: 400, error: 'Bad Request' }).code(400);
            }

            const { rows: [row] } = await pool.query({ name: 'bench_item_get', text: internals.sql, values: [id] });
            if (!row) {
                return h.response({ statusCode: 404, error: 'Not Found', message: 'Item not found' }).code(404);
            }

            const item = { id: row.id, name: row.name, description: row.description, quantity: row.quantity, version: row.version, createdAt: row.created_at, updatedAt: row.updated_at };
            return h.response(item).etag(String(item.version), { weak: false, vary: false });
        }
    });

    process.once('SIGTERM', () => {

        server.stop({ timeout: 1000 }).then(() => pool.end()).finally(() => process.exit(0));
    });

    await server.start();
};


await main();
