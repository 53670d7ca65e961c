import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { connect as netConnect } from 'node:net';

import { afterEach, expect, it } from 'vitest';

import * as App from './support/app.ts';
import * as Http from './support/http.ts';


// Failures at start: fast and explicit when the process cannot work at all, patient when only the
// database is missing. No database is needed here: DATABASE_URL points at a port nobody listens on.


const internals = {
    servers: [] as Server[],

    async occupy(): Promise<number> {

        const server = createServer();
        internals.servers.push(server);
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        return (server.address() as { port: number }).port;
    },

    async nowhere(): Promise<string> {

        return `postgres://item_api:secret@127.0.0.1:${await App.freePort()}/item_api`;
    }
};


afterEach(async () => {

    await App.killAll();
    for (const server of internals.servers.splice(0)) {
        await new Promise((resolve) => server.close(resolve));
    }
});


it('exits 1 at once with a clear message when the port is in use', async () => {

    const port = await internals.occupy();
    const app = await App.start({ port, waitFor: 'none', env: { DATABASE_URL: await internals.nowhere() } });
    const exit = await app.exited;

    expect(exit.code).toBe(1);
    const fatal = app.logs().find((line) => line.level === 'fatal');
    expect(fatal?.msg).toBe(`port ${port} on 127.0.0.1 is already in use`);
    expect(exit.at - Date.parse(fatal!.time)).toBeLessThan(1000);
    expect(JSON.stringify(app.logs())).not.toContain('secret');
    console.log(`port in use: exit ${exit.code} ${exit.at - app.spawnedAt} ms after spawn, ${exit.at - Date.parse(fatal!.time)} ms after the failure`);
});


it('exits 1 within a second with a message naming the variable when the configuration is invalid', async () => {

    const app = await App.start({ waitFor: 'none', env: { DATABASE_URL: await internals.nowhere(), SHUTDOWN_DRAIN_TIMEOUT_MS: 'soon' } });
    const exit = await app.exited;

    expect(exit.code).toBe(1);
    const fatal = app.logs().find((line) => line.level === 'fatal');
    expect(fatal?.msg).toMatch(/^Invalid configuration:/);
    expect(fatal?.problems).toEqual(['SHUTDOWN_DRAIN_TIMEOUT_MS: must be a number (got "soon")']);
    expect(exit.at - app.spawnedAt).toBeLessThan(1000);
    console.log(`invalid configuration: exit ${exit.code} ${exit.at - app.spawnedAt} ms after spawn`);
});


it('cuts off a client that sends its headers too slowly, and keeps serving the others', async () => {

    const app = await App.start({ waitFor: 'listening', env: { DATABASE_URL: await internals.nowhere(), HTTP_KEEP_ALIVE_TIMEOUT_MS: '300', HTTP_HEADERS_TIMEOUT_MS: '500' } });

    // A header line every 100 ms, never the blank line that ends them: never idle, never done
    const socket = netConnect({ host: '127.0.0.1', port: app.port });
    const openedAt = Date.now();
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {

        received += chunk;
    });

    socket.on('error', () => {});
    socket.write(`GET /health/live HTTP/1.1\r\nHost: 127.0.0.1:${app.port}\r\n`);
    const trickle = setInterval(() => socket.write('X-Slow: yes\r\n'), 100);

    const closedAt = await new Promise<number | null>((resolve) => {

        const timer = setTimeout(() => resolve(null), 3000);
        socket.once('close', () => {

            clearTimeout(timer);
            resolve(Date.now());
        });
    });

    clearInterval(trickle);
    socket.destroy();

    expect(closedAt, 'the slow client was never cut off').not.toBeNull();
    const heldMs = closedAt! - openedAt;
    expect(heldMs).toBeGreaterThanOrEqual(500 - 50);
    expect(heldMs).toBeLessThan(500 + 500);
    expect(received).toMatch(/^HTTP\/1\.1 4\d\d /);

    const live = await Http.request(app.port, { path: '/health/live' });
    expect(live.status).toBe(200);
    console.log(`slow headers: cut off after ${heldMs} ms (HTTP_HEADERS_TIMEOUT_MS=500): ${received.split('\r\n')[0]}`);
});
