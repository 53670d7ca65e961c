import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import { afterEach, expect, it } from 'vitest';

import { Listener } from '../../src/listener.ts';
import * as Database from '../support/database.ts';
import * as App from './support/app.ts';
import * as Http from './support/http.ts';


// Several sockets accepting on the service's port (src/listener.ts): why (node takes one connection
// per socket per event-loop iteration), and that the shutdown stops them all at the drain.


const database = Database.provide();

const internals = {
    sockets: [] as Socket[],
    listeners: [] as Listener[],

    // TCP sockets listening on the port, from the kernel's own table (state 0A is LISTEN).
    async listening(port: number): Promise<number> {

        const table = await readFile('/proc/net/tcp', 'utf8');
        const hex = port.toString(16).toUpperCase().padStart(4, '0');
        return table.split('\n').filter((row) => {

            const [, local, , state] = row.trim().split(/\s+/);
            return local?.endsWith(`:${hex}`) && state === '0A';
        }).length;
    },

    // Connections opened while the loop is blocked, so that all of them wait in the listen queues;
    // then how many the listener takes in each iteration of the loop that follows.
    async acceptsPerIteration(acceptors: number, connections: number): Promise<number[]> {

        const listener = new Listener(acceptors);
        internals.listeners.push(listener);
        await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
        const { port } = listener.address() as { port: number };

        let accepted = 0;
        listener.on('connection', () => ++accepted);
        const connected: Promise<void>[] = [];
        for (let i = 0; i < connections; ++i) {
            const socket = netConnect({ host: '127.0.0.1', port });
            internals.sockets.push(socket);
            connected.push(new Promise((resolve) => socket.once('connect', () => resolve())));
        }

        await Promise.all(connected);              // Handshakes done by the kernel; accepts come from here on
        const perIteration: number[] = [];
        let seen = accepted;
        await new Promise<void>((resolve) => {

            const check = () => {

                perIteration.push(accepted - seen);
                seen = accepted;
                if (accepted === connections) {
                    resolve();
                    return;
                }

                setImmediate(check);
            };

            setImmediate(check);
        });

        return perIteration;
    }
};


afterEach(async () => {

    for (const socket of internals.sockets.splice(0)) {
        socket.destroy();
    }

    for (const listener of internals.listeners.splice(0)) {
        await new Promise((resolve) => listener.close(resolve));
    }

    await App.killAll();
});


it('takes a connection from each of its sockets in one event-loop iteration, where one socket takes one', async () => {

    const connections = 40;

    // The client's connects and the accepts share this loop: count from the iteration in which every
    // connection is already in a listen queue. Node's own listener takes one per iteration.
    const single = await internals.acceptsPerIteration(1, connections);
    const four = await internals.acceptsPerIteration(4, connections);

    expect(Math.max(...single)).toBe(1);
    expect(Math.max(...four)).toBe(4);
    expect(four.length).toBeLessThan(single.length);
    console.log(`accepts per iteration: 1 socket ${single.join(',')}; 4 sockets ${four.join(',')}`);
});


it('reads how many connections wait unaccepted in its listen queues from the kernel, and only its own', async () => {

    const listen = async (acceptors: number) => {

        const listener = new Listener(acceptors);
        internals.listeners.push(listener);
        expect(listener.waitingToBeAccepted()).toBeNull();                 // Not listening yet
        await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
        return { listener, port: (listener.address() as { port: number }).port };
    };

    const service = await listen(4);
    const neighbour = await listen(1);
    expect(service.listener.waitingToBeAccepted()).toBe(0);

    // Another process connects while this loop is blocked, so no connection is accepted: they wait in
    // the kernel's queues, 30 spread over the service's four sockets and 5 on the neighbour's port.
    const script = `const net = require('node:net');
        for (const [port, count] of [[${service.port}, 30], [${neighbour.port}, 5]]) for (let i = 0; i < count; ++i) net.connect(port, '127.0.0.1');
        setTimeout(() => {}, 10000);`;
    const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
    try {
        const deadline = Date.now() + 5000;
        let waiting = { service: 0, neighbour: 0 };
        while ((waiting.service < 30 || waiting.neighbour < 5) && Date.now() < deadline) {
            waiting = { service: service.listener.waitingToBeAccepted()!, neighbour: neighbour.listener.waitingToBeAccepted()! };
        }

        expect(waiting).toEqual({ service: 30, neighbour: 5 });

        // The loop free again, the sockets accept them all and the queues read empty.
        let accepted = 0;
        service.listener.on('connection', () => ++accepted);
        await expect.poll(() => accepted, { timeout: 3000, interval: 10 }).toBe(30);
        expect(service.listener.waitingToBeAccepted()).toBe(0);
    }
    finally {
        child.kill();
    }
});


it('listens on the port with every socket, serves connections from all of them, and stops them all at the drain', async () => {

    const app = await App.start({ env: { DATABASE_URL: database.url, HTTP_ACCEPTORS: '4', SHUTDOWN_DELAY_MS: '300', SHUTDOWN_DRAIN_TIMEOUT_MS: '3000' } });
    expect(await internals.listening(app.port)).toBe(4);

    // New connections land on the four sockets as the kernel hashes them; every one is served
    const answers = await Promise.all(Array.from({ length: 40 }, async () => {

        const client = await Http.idleSocket(app.port);
        const head = await client.get('/health/live');
        client.destroy();
        return head.split('\r\n')[0];
    }));
    expect(new Set(answers)).toEqual(new Set(['HTTP/1.1 200 OK']));

    // A request in flight keeps the process in its drain while the sockets are checked
    const upload = await Http.slowUpload(app.port, '/items', { name: 'held across the drain', quantity: 1 });
    await sleep(150);
    app.signal('SIGTERM');
    await app.waitForPhase('signal');
    expect(await Http.connects(app.port)).toBe(true);           // The delay still takes new connections
    await app.waitForPhase('delay');
    await sleep(50);

    expect(app.exit).toBeNull();
    expect(await internals.listening(app.port)).toBe(0);
    const refused = await Promise.all(Array.from({ length: 20 }, () => Http.connects(app.port)));
    expect(refused.filter(Boolean)).toHaveLength(0);

    upload.finish();
    expect((await upload.outcome).status).toBe(201);
    expect((await app.exited).code).toBe(0);
});
