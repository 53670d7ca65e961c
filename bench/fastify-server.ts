import Fastify from 'fastify';
import pg from 'pg';


// The peer a Node user would pick instead of hapi: fastify with the same pg Pool, the same named
// prepared statement, the same JSON fields and ETag. The id is checked by fastify's own route
// schema (ajv), as a fastify service would; its request logger is off, as the bare handler's is.


const internals = {
    poolMax: Number(process.env.DB_POOL_MAX ?? 10),
    sql: 'select id, name, description, quantity, version, created_at, updated_at from items where id = $1'
};


const main = async function (): Promise<void> {

    const url = process.env.DATABASE_URL;
    if (!url) {
        throw new Error('DATABASE_URL is required');
    }

    const pool = new pg.Pool({ connectionString: url, max: internals.poolMax });
    const app = Fastify({ logger: false, keepAliveTimeout: 65_000 });
    app.server.headersTimeout = 66_000;

    app.get('/health', async () => {

        await pool.query('select 1');
        return { status: 'ok' };
    });

    app.get<{ Params: { id: string } }>('/items/:id', {
        schema: { params: { type: 'object', properties: { id: { type: 'string', format: 'uuid' } }, required: ['id'] } }
    }, async (request, reply) => {

        const { rows: [row] } = await pool.query({ name: 'bench_item_get', text: internals.sql, values: [request.params.id] });
        if (!row) {
            return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'Item not found' });
        }

        reply.header('cache-control', 'no-cache').header('etag', `"${row.version}"`);
        return { id: row.id, name: row.name, description: row.description, quantity: row.quantity, version: row.version, createdAt: row.created_at, updatedAt: row.updated_at };
    });

    process.once('SIGTERM', () => {

        app.close().then(() => pool.end()).finally(() => process.exit(0));
    });

    await app.listen({ port: Number(process.env.PORT ?? 3002), host: process.env.HOST ?? '127.0.0.1' });
};


await main();
