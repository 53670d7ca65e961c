import { spawn } from 'node:child_process';

import Hapi from '@hapi/hapi';
import { expect, it } from 'vitest';

import * as App from '../support/app.ts';
import * as Database from '../support/database.ts';
import * as TcpProxy from '../support/tcp-proxy.ts';


// Load shedding, configured from the environment: past a limit every new request is a 503 with
// Retry-After before any route runs, and the process serves again as soon as the sample is back under
// the limit. The limits are hapi's own measurement (server option `load`) and the database pool's queue
// delay, answered in front of hapi (src/shedding.ts). The negative controls run the same checks with
// the limits off, and against hapi's own shedding without the service's Retry-After.

const database = Database.provide();


const internals = {
    item: '01a1fda8-1894-7455-9a35-840c7ccb6686',

    // What a shed request must look like; an empty list when it does.
    async shedProblems(url: string, init?: RequestInit): Promise<string[]> {

        const res = await fetch(url, init);
        const body = await res.json().catch(() => null) as { message?: string } | null;
        const problems: string[] = [];
        if (res.status !== 503) {
            problems.push(`status ${res.status}, not 503`);
        }

        if (res.headers.get('retry-after') !== '1') {
            problems.push(`Retry-After ${res.headers.get('retry-after')}, not 1`);
        }

        if (!/heavy load/.test(body?.message ?? '')) {
            problems.push(`message ${JSON.stringify(body?.message)}`);
        }

        return problems;
    },

    // Polls until the sampler has taken its first sample (heapUsed and rss read 0 until then).
    async shed(url: string, init?: RequestInit): Promise<string[]> {

        let problems: string[] = [];
        for (let i = 0; i < 50; ++i) {
            problems = await internals.shedProblems(url, init);
            if (!problems.length) {
                return problems;
            }

            await new Promise((resolve) => setTimeout(resolve, 20));
        }

        return problems;
    },

    block(ms: number): void {

        const until = Date.now() + ms;
        while (Date.now() < until) {
            // Keeps the event loop busy, as a CPU-bound burst does
        }
    },

    // A loop kept busy for ms in blocks of blockMs, with a turn for timers and I/O between them: what an
    // overloaded process does, as opposed to one stall.
    async busy(ms: number, blockMs: number): Promise<void> {

        const until = Date.now() + ms;
        while (Date.now() < until) {
            internals.block(blockMs);
            await new Promise((resolve) => setTimeout(resolve, 0));
        }
    }
};


it.each([
    ['heap', { LOAD_MAX_HEAP_USED_BYTES: '1' }],
    ['rss', { LOAD_MAX_RSS_BYTES: '1' }]
])('sheds every request with 503 + Retry-After past the %s limit, and stores nothing', async (limit, env) => {

    const app = await App.start({ databaseUrl: database.url, env: { LOAD_SAMPLE_INTERVAL_MS: '10', ...env } });
    try {
        const before = await App.counts(app.db);
        expect(await internals.shed(`${app.url}/items/${internals.item}`)).toEqual([]);
        expect(await internals.shedProblems(`${app.url}/items`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': `shed-${limit}` }, body: JSON.stringify({ name: 'shed' }) })).toEqual([]);
        expect(await App.counts(app.db)).toEqual(before);
        expect(JSON.stringify(app.logs())).not.toContain('"statusCode":500');
    }
    finally {
        await app.stop();
    }
});


it('sheds while the event loop stays delayed past the limit, and serves again by itself', async () => {

    const app = await App.start({ databaseUrl: database.url, env: { LOAD_SAMPLE_INTERVAL_MS: '10', LOAD_MAX_EVENT_LOOP_DELAY_MS: '50' } });
    try {
        expect((await fetch(`${app.url}/items?limit=1`)).status).toBe(200);

        // Every sample 70 ms late for longer than the pressure must last, then a request while it goes on.
        await internals.busy(700, 80);
        const pending = internals.shedProblems(`${app.url}/items?limit=1`);
        await internals.busy(400, 80);
        expect(await pending).toEqual([]);

        // The samples back under the limit for as long: no restart, no intervention.
        await expect.poll(async () => (await fetch(`${app.url}/items?limit=1`)).status, { timeout: 3000, interval: 50 }).toBe(200);
    }
    finally {
        await app.stop();
    }
});


it('negative control: one stall past the event-loop delay limit sheds nothing, its backlog is served', async () => {

    // What hapi's own check does with one late sample: the request read right after the stall is shed.
    const app = await App.start({ databaseUrl: database.url, env: { LOAD_SAMPLE_INTERVAL_MS: '10', LOAD_MAX_EVENT_LOOP_DELAY_MS: '50' } });
    try {
        expect((await fetch(`${app.url}/items?limit=1`)).status).toBe(200);

        // The connection is made before the stall, so the request is read right after it.
        const pending = internals.shedProblems(`${app.url}/items?limit=1`);
        internals.block(300);
        expect(await pending).toContain('status 200, not 503');
    }
    finally {
        await app.stop();
    }
});


// One pooled connection, a database 2 x 200 ms away: the first of `queue` requests holds the connection,
// the rest wait for it; with the queue at the limit for standMs, a new request is shed at once, and
// stores nothing.
const queuedBehindSlowDatabase = async function (env: Record<string, string>, standMs: number, queue = 3): Promise<{ status: number; ms: number; problems: string[]; stored: boolean; queuedStatuses: number[]; after: number; shedding: Record<string, unknown>[] }> {

    const proxy = await TcpProxy.start({ listen: { host: '127.0.0.1', port: 0 }, target: { host: new URL(database.url).hostname, port: Number(new URL(database.url).port) } });
    const url = new URL(database.url);
    url.port = String(proxy.address.port);
    const app = await App.start({ databaseUrl: url.toString(), env: { DB_POOL_MAX: '1', ...env } });
    try {
        expect((await fetch(`${app.url}/items?limit=1`)).status).toBe(200);        // The one connection, open
        const before = await App.counts(app.db);
        proxy.set({ latencyMs: 200 });
        const queued = Array.from({ length: queue }, (_, i) => fetch(`${app.url}/items?limit=${i + 3}`));
        await new Promise((resolve) => setTimeout(resolve, standMs));

        const started = Date.now();
        const res = await fetch(`${app.url}/items`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': `queued-${Date.now()}` }, body: JSON.stringify({ name: 'queued' }) });
        const ms = Date.now() - started;
        const body = await res.json() as { message?: string };
        const problems = res.status === 503 && res.headers.get('retry-after') === '1' && body.message === 'Server under heavy load (database pool)' ? [] : [`${res.status} ${res.headers.get('retry-after')} ${body.message}`];
        const queuedStatuses = await Promise.all(queued.map(async (pending) => (await pending).status));
        proxy.set({ latencyMs: 0 });
        const stored = JSON.stringify(await App.counts(app.db)) !== JSON.stringify(before);
        // Shedding stops once the queue has been short for as long as it had to stand.
        let after = 0;
        for (let i = 0; i < 40 && after !== 200; ++i) {
            await new Promise((resolve) => setTimeout(resolve, 50));
            after = (await fetch(`${app.url}/items?limit=1`)).status;
        }

        // The episode's two log lines: the stop comes once nothing has been shed for a second.
        const shedding = () => app.logs().filter((line) => /^load shedding/.test(String(line.msg)));
        for (let i = 0; i < 60 && shedding().length < 2; ++i) {
            await new Promise((resolve) => setTimeout(resolve, 50));
        }

        return { status: res.status, ms, problems, stored, queuedStatuses, after, shedding: shedding() };
    }
    finally {
        await app.stop();
        await proxy.close();
    }
};


it('sheds at once while as many requests have waited for a pooled connection as the limit allows', async () => {

    const outcome = await queuedBehindSlowDatabase({ LOAD_MAX_DB_WAITING: '1' }, 600);
    expect(outcome.problems).toEqual([]);
    expect(outcome.ms).toBeLessThan(100);                       // Not queued behind the slow database
    expect(outcome.stored).toBe(false);
    expect(outcome.queuedStatuses).toEqual([200, 200, 200]);    // What was accepted is served
    expect(outcome.after).toBe(200);                            // The queue empty again: served

    // The operator sees the episode: what pressed when it started, and what was shed by the end.
    expect(outcome.shedding.map(({ level, msg, reason, shed }) => ({ level, msg, reason, shed }))).toEqual([
        { level: 'warn', msg: 'load shedding started', reason: 'database pool', shed: undefined },
        { level: 'warn', msg: 'load shedding stopped', reason: undefined, shed: { 'database pool': 1 } }
    ]);
    expect(outcome.shedding[0]!.databaseWaiting).toBeGreaterThanOrEqual(1);        // The limit
});


it('sheds at once, however briefly it stood, a queue four times the limit: no stall makes one', async () => {

    const outcome = await queuedBehindSlowDatabase({ LOAD_MAX_DB_WAITING: '1' }, 100, 5);
    expect(outcome.problems).toEqual([]);
    expect(outcome.ms).toBeLessThan(100);
    expect(outcome.stored).toBe(false);
    expect(outcome.queuedStatuses).toEqual([200, 200, 200, 200, 200]);
    expect(outcome.after).toBe(200);
});


it.each([
    ['without the limit on the pool\'s queue', { LOAD_MAX_DB_WAITING: '0' }, 600],
    ['with the queue at the limit for less than the pressure must last', { LOAD_MAX_DB_WAITING: '1' }, 100]
])('negative control: %s the same request waits its turn and is served', async (_, env, standMs) => {

    const outcome = await queuedBehindSlowDatabase(env, standMs);
    expect(outcome.problems).not.toEqual([]);
    expect(outcome.status).toBe(201);
    expect(outcome.ms).toBeGreaterThan(400);
});


// A surge is overload already. One pooled connection, a database 2 x 150 ms away, nine requests
// queued for it (8 waiting: four times a limit of 2). A request 100 ms in sees the surge and is shed;
// 380 ms in, one query has finished, so 7 wait: under the surge, at the limit, and the pressure has
// lasted less than the 500 ms it must. The next request is shed only if the surge was seen.
const afterSurge = async function (surgeSeen: boolean): Promise<{ surge: number | null; status: number; ms: number; message: string }> {

    const proxy = await TcpProxy.start({ listen: { host: '127.0.0.1', port: 0 }, target: { host: new URL(database.url).hostname, port: Number(new URL(database.url).port) } });
    const url = new URL(database.url);
    url.port = String(proxy.address.port);
    const app = await App.start({ databaseUrl: url.toString(), env: { DB_POOL_MAX: '1', LOAD_MAX_DB_WAITING: '2' } });
    try {
        expect((await fetch(`${app.url}/items?limit=1`)).status).toBe(200);        // The one connection, open
        proxy.set({ latencyMs: 150 });
        const start = Date.now();
        const queued = Array.from({ length: 9 }, (_, i) => fetch(`${app.url}/items?limit=${i + 3}`));
        const at = (ms: number) => new Promise((resolve) => setTimeout(resolve, start + ms - Date.now()));
        await at(100);
        const surge = surgeSeen ? (await fetch(`${app.url}/items?limit=1`)).status : null;
        await at(380);
        const res = await fetch(`${app.url}/items?limit=2`);
        const ms = Date.now() - start - 380;
        const body = await res.json() as { message?: string };
        await Promise.all(queued);
        return { surge, status: res.status, ms, message: body.message ?? '' };
    }
    finally {
        await app.stop();
        await proxy.close();
    }
};


it('after a surge, sheds at once on the limit itself, without waiting for the pressure to last', async () => {

    expect(await afterSurge(true)).toMatchObject({ surge: 503, status: 503, message: 'Server under heavy load (database pool)' });
});


it('negative control: the same queue, the surge not seen, the request waits its turn and is served', async () => {

    const outcome = await afterSurge(false);
    expect(outcome.status).toBe(200);
    expect(outcome.ms).toBeGreaterThan(1000);                  // Behind 7 queries of 300 ms
});


// Clients opening connections faster than a busy loop accepts them, as when load jumps: another process
// opens 40 and sends a request on each while this loop is busy in 40 ms blocks (one socket accepting, so
// one connection an iteration). Each request is answered as its connection is accepted, after it waited
// in the listen queue.
const stampede = async function (env: Record<string, string>): Promise<{ answers: { status: number; retryAfter: string | null; message: string }[]; shedding: Record<string, unknown>[]; after: number }> {

    const app = await App.start({ databaseUrl: database.url, env: { HTTP_ACCEPTORS: '1', ...env } });
    try {
        expect((await fetch(`${app.url}/items?limit=1`)).status).toBe(200);
        const script = `const net = require('node:net');
            const answers = [];
            for (let i = 0; i < 40; ++i) {
                const socket = net.connect(${new URL(app.url).port}, '127.0.0.1', () => socket.write('GET /items?limit=1 HTTP/1.1\\r\\nhost: items\\r\\nconnection: close\\r\\n\\r\\n'));
                let raw = '';
                socket.on('data', (chunk) => raw += chunk);
                socket.on('close', () => answers.push(raw) === 40 && process.stdout.write(JSON.stringify(answers)));
            }`;
        const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (chunk) => out += chunk);
        const exited = new Promise((resolve) => child.once('exit', resolve));
        await internals.busy(1500, 40);
        await exited;

        const answers = (JSON.parse(out) as string[]).map((raw) => ({
            status: Number(raw.split(' ')[1]),
            retryAfter: /\r\nretry-after: (\S+)/i.exec(raw)?.[1] ?? null,
            message: /"message":"([^"]*)"/.exec(raw)?.[1] ?? ''
        }));
        const after = (await fetch(`${app.url}/items?limit=1`)).status;
        return { answers, shedding: app.logs().filter((line) => line.msg === 'load shedding started'), after };
    }
    finally {
        await app.stop();
    }
};


it('sheds at once while connections wait unaccepted in the listen queues past the limit', async () => {

    const { answers, shedding, after } = await stampede({ LOAD_MAX_ACCEPT_QUEUE: '8' });
    const shed = answers.filter((answer) => answer.status === 503);
    expect(shed.length).toBeGreaterThanOrEqual(20);
    expect(new Set(shed.map((answer) => `${answer.retryAfter} ${answer.message}`))).toEqual(new Set(['1 Server under heavy load (accept queue)']));
    expect(answers.filter((answer) => answer.status === 200).length).toBe(40 - shed.length);    // Below the limit, served
    expect(shedding.map(({ reason }) => reason)).toEqual(['accept queue']);
    expect(shedding[0]!.acceptQueue).toBeGreaterThanOrEqual(8);
    expect(after).toBe(200);
});


it('negative control: without the accept queue limit the same requests wait their turn and are served', async () => {

    const { answers } = await stampede({ LOAD_MAX_ACCEPT_QUEUE: '0' });
    expect(answers.map((answer) => answer.status)).toEqual(Array(40).fill(200));
});


// A loop busy past the utilization window (500 ms) and the time pressure must last (500 ms) while
// requests wait for the one pooled connection: the next request is shed before hapi sees it; with
// nothing waiting for the database the same busy loop (a process warming up, a neighbour holding the
// CPU) sheds nothing.
const busyLoop = async function (withQueue: boolean): Promise<{ problems: string[]; reachedHapi: boolean; after: number }> {

    const proxy = await TcpProxy.start({ listen: { host: '127.0.0.1', port: 0 }, target: { host: new URL(database.url).hostname, port: Number(new URL(database.url).port) } });
    const url = new URL(database.url);
    url.port = String(proxy.address.port);
    const app = await App.start({ databaseUrl: url.toString(), env: { DB_POOL_MAX: '1', LOAD_MAX_EVENT_LOOP_UTILIZATION: '0.8' } });
    try {
        await new Promise((resolve) => setTimeout(resolve, 600));                 // A whole window since start
        expect((await fetch(`${app.url}/items?limit=1`)).status).toBe(200);
        const queued: Promise<Response>[] = [];
        if (withQueue) {
            proxy.set({ latencyMs: 300 });                                          // Each query 600 ms: a queue for ~2 s
            queued.push(...[3, 4, 5, 6].map((limit) => fetch(`${app.url}/items?limit=${limit}`)));
            await new Promise((resolve) => setTimeout(resolve, 100));
        }

        await internals.busy(1100, 40);
        const pending = internals.shedProblems(`${app.url}/items?limit=2`);
        await internals.busy(300, 40);
        const problems = await pending;
        await Promise.all(queued);
        proxy.set({ latencyMs: 0 });
        // Answered in front of hapi: no request object, so no response line (hapi's own 503 has one).
        const reachedHapi = app.logs().some((line) => /\[response\] GET \/items \d+/.test(String(line.msg)) && (line.res as { statusCode?: number } | undefined)?.statusCode === 503);
        await new Promise((resolve) => setTimeout(resolve, 1100));                 // Idle past the window and the time to stop shedding
        return { problems, reachedHapi, after: (await fetch(`${app.url}/items?limit=1`)).status };
    }
    finally {
        await app.stop();
        await proxy.close();
    }
};


it('sheds past the event-loop utilization limit while requests wait for the database, before hapi sees them', async () => {

    const outcome = await busyLoop(true);
    expect(outcome.problems).toEqual([]);
    expect(outcome.reachedHapi).toBe(false);
    expect(outcome.after).toBe(200);                    // Serves again by itself
});


it('negative control: the same busy loop with nothing waiting for the database sheds nothing', async () => {

    const outcome = await busyLoop(false);
    expect(outcome.problems).toContain('status 200, not 503');
});


it('negative control: the shedding check fails without the limits, and without the Retry-After', async () => {

    // Limits off (the development default): the same requests are served.
    const off = await App.start({ databaseUrl: database.url, env: {} });
    try {
        expect(await internals.shedProblems(`${off.url}/items/${internals.item}`)).toContain('status 404, not 503');
    }
    finally {
        await off.stop();
    }

    // hapi's shedding alone: a 503, but nothing tells the client when to come back.
    const bare = Hapi.server({ host: '127.0.0.1', port: 0, load: { sampleInterval: 10, maxHeapUsedBytes: 1 } });
    bare.route({ method: 'GET', path: '/items/{id}', handler: () => ({}) });
    await bare.start();
    try {
        expect(await internals.shed(`${bare.info.uri}/items/${internals.item}`)).toEqual(['Retry-After null, not 1']);
    }
    finally {
        await bare.stop();
    }
});
