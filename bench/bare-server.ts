import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';

import * as PgItems from './pg-items.ts';


// The floor the service is measured against: node:http and a pg Pool, one named prepared statement
// (parsed and planned once per connection, as a hand-tuned service would), the same JSON fields and
// ETag, nothing else. BARE_DB=knex swaps the query for the service's own data
// access (src/items/store.ts through knex), which splits the gap into knex's share and hapi's.
// Pool size and keep-alive timeout match the service's defaults, so only the code differs.


const internals = {
    path: /^\/items\/([^/]+)$/,

    async knexLookup(url: string): Promise<PgItems.Reader> {

        const Db = await import('../src/db.ts');
        const Store = await import('../src/items/store.ts');
        const db = Db.create({ url, poolMax: PgItems.poolMax, acquireTimeoutMs: 2000, connectTimeoutMs: 2000, statementTimeoutMs: 5000 });
        return { get: (id) => Store.get(db, id), end: () => db.destroy() };
    },

    send(res: ServerResponse, statusCode: number, body: object, etag?: string): void {

        const payload = JSON.stringify(body);
        res.writeHead(statusCode, {
            'content-type': 'application/json; charset=utf-8',
            'content-length': Buffer.byteLength(payload),
            'cache-control': 'no-cache',
            ...(etag ? { etag } : {})
        });

        res.end(payload);
    },

    async handle(lookup: PgItems.Reader, req: IncomingMessage, res: ServerResponse): Promise<void> {

        if (req.url === '/health') {
            await lookup.get('00000000-0000-7000-8000-000000000000');       // Ready once the database answers
            return internals.send(res, 200, { status: 'ok' });
        }

        const id = req.method === 'GET' ? internals.path.exec(req.url ?? '')?.[1] : undefined;
        if (id === undefined) {
            return internals.send(res, 404, { statusCode: 404, error: 'Not Found' });
        }

        if (!PgItems.isUuid(id)) {
            return internals.send(res, 400, { statusCode: 400, error: 'Bad Request' });
        }

        const item = await lookup.get(id);
        if (!item) {
            return internals.send(res, 404, { statusCode: 404, error: 'Not Found', message: 'Item not found' });
        }

        internals.send(res, 200, item, `"${item.version}"`);
    }
};


const main = async function (): Promise<void> {

    const url = PgItems.databaseUrl();
    const lookup = process.env.BARE_DB === 'knex' ? await internals.knexLookup(url) : PgItems.reader(url);
    const server = createServer((req, res) => {

        internals.handle(lookup, req, res).catch((err: unknown) => {

            console.error(err);
            if (!res.headersSent) {
                internals.send(res, 500, { statusCode: 500, error: 'Internal Server Error' });
            }
        });
    });

    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;

    process.once('SIGTERM', () => {

        server.close();
        server.closeAllConnections();
        lookup.end().finally(() => process.exit(0));
    });

    server.listen(Number(process.env.PORT ?? 3001), process.env.HOST ?? '127.0.0.1');
};


await main();
