import net from 'node:net';

import { expect, it } from 'vitest';

import * as App from '../support/app.ts';
import * as Database from '../support/database.ts';


// Connection abuse: clients that connect and send nothing, or start a request and never finish its
// headers. They must not keep normal clients from being served, and the configured HTTP timeouts
// must cut them (node sweeps its connections at the interval the server sets from those timeouts).

const database = Database.provide();


const internals = {
    abusers: 2000,
    headersTimeoutMs: 1000,

    async abuse(app: App.App, options: { watchMs: number }) {

        const port = new URL(app.url).port;
        const sockets: { socket: net.Socket; closedAt: number | null; slow: boolean }[] = [];
        // In batches under the listen backlog (511): past it the kernel holds handshakes back, and a
        // connection the server has not accepted yet cannot be timed out by it.
        const connect = (i: number) => new Promise<void>((resolve) => {

            const socket = net.connect({ host: '127.0.0.1', port: Number(port) });
            const entry = { socket, closedAt: null as number | null, slow: Boolean(i % 2) };
            sockets.push(entry);
            socket.on('error', () => {});
            socket.resume();                    // Reads what the server sends (its 408), so its FIN is seen
            socket.once('close', () => (entry.closedAt = Date.now()));
            socket.once('connect', () => {

                if (entry.slow) {
                    socket.write(`GET /items HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: `);       // Never finished
                }

                resolve();
            });
            socket.once('close', () => resolve());
        });

        for (let i = 0; i < internals.abusers; i += 250) {
            await Promise.all(Array.from({ length: 250 }, (_, j) => connect(i + j)));
        }

        const openedAt = Date.now();

        // Normal clients, while every abusive connection is open.
        const latencies: number[] = [];
        const statuses: number[] = [];
        for (let i = 0; i < 40; ++i) {
            const started = Date.now();
            const res = await fetch(`${app.url}/items?limit=5`);
            await res.arrayBuffer();
            statuses.push(res.status);
            latencies.push(Date.now() - started);
        }

        const deadline = openedAt + options.watchMs;
        while (Date.now() < deadline && sockets.some((entry) => entry.closedAt === null)) {
            await new Promise((resolve) => setTimeout(resolve, 50));
        }

        const open = sockets.filter((entry) => entry.closedAt === null).length;
        const openSlow = sockets.filter((entry) => entry.closedAt === null && entry.slow).length;
        for (const entry of sockets) {
            entry.socket.destroy();
        }

        const held = sockets.filter((entry) => entry.closedAt !== null).map((entry) => entry.closedAt! - openedAt);
        return { statuses, slowestNormalMs: Math.max(...latencies), stillOpen: open, openSlow, lastCutMs: held.length ? Math.max(...held) : null };
    }
};


it('serves normal clients while 2,000 idle or slow-header connections are open, and cuts those at the headers timeout', async () => {

    const app = await App.start({ databaseUrl: database.url, env: { HTTP_KEEP_ALIVE_TIMEOUT_MS: '500', HTTP_HEADERS_TIMEOUT_MS: String(internals.headersTimeoutMs), HTTP_REQUEST_TIMEOUT_MS: '2000' } });
    try {
        const outcome = await internals.abuse(app, { watchMs: internals.headersTimeoutMs + 3000 });
        console.log(`connection abuse: ${JSON.stringify(outcome)}`);
        expect(new Set(outcome.statuses)).toEqual(new Set([200]));
        expect(outcome.slowestNormalMs).toBeLessThan(1000);
        expect(outcome.stillOpen).toBe(0);
        expect(outcome.lastCutMs).toBeLessThan(internals.headersTimeoutMs + 3000);
    }
    finally {
        await app.stop();
    }
}, 30_000);


it('negative control: with a headers timeout of a minute the same connections are still open', async () => {

    const app = await App.start({ databaseUrl: database.url, env: { HTTP_KEEP_ALIVE_TIMEOUT_MS: '500', HTTP_HEADERS_TIMEOUT_MS: '60000', HTTP_REQUEST_TIMEOUT_MS: '60000' } });
    try {
        const outcome = await internals.abuse(app, { watchMs: internals.headersTimeoutMs + 3000 });
        expect(outcome.stillOpen).toBeGreaterThan(internals.abusers / 2);
    }
    finally {
        await app.stop();
    }
}, 30_000);
