import { Agent, request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { connect as netConnect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';


// Clients that behave like the ones a terminating pod meets: keep-alive pools, slow uploads, idle
// sockets, pollers. Outcomes are values, never exceptions, so a test can assert on a failure.


export interface Outcome {
    readonly status?: number;
    readonly headers: IncomingHttpHeaders;
    readonly body: string;
    readonly error?: string;                        // The socket error code when the exchange failed
    readonly at: number;                            // Date.now() when the outcome was known
}


export interface RequestOptions {
    readonly method?: string;
    readonly path: string;
    readonly headers?: Record<string, string>;
    readonly body?: string;
    readonly agent?: Agent;
    readonly timeoutMs?: number;
}


const internals = {
    host: '127.0.0.1',

    collect(req: ReturnType<typeof httpRequest>, timeoutMs: number): Promise<Outcome> {

        return new Promise((resolve) => {

            const timer = setTimeout(() => req.destroy(Object.assign(new Error('client timeout'), { code: 'CLIENT_TIMEOUT' })), timeoutMs);
            const settle = (outcome: Omit<Outcome, 'at'>) => {

                clearTimeout(timer);
                resolve({ ...outcome, at: Date.now() });
            };

            req.once('error', (err: NodeJS.ErrnoException) => settle({ headers: {}, body: '', error: err.code ?? err.message }));
            req.once('response', (res) => {

                let body = '';
                res.setEncoding('utf8');
                res.on('data', (chunk: string) => {

                    body += chunk;
                });

                res.once('end', () => settle({ status: res.statusCode!, headers: res.headers, body }));
                res.once('error', (err: NodeJS.ErrnoException) => settle({ status: res.statusCode!, headers: res.headers, body, error: err.code ?? err.message }));
            });
        });
    }
};


export const keepAliveAgent = function (): Agent {

    return new Agent({ keepAlive: true, maxSockets: 1 });
};


export const request = function (port: number, options: RequestOptions): Promise<Outcome> {

    const body = options.body;
    const headers: Record<string, string> = { connection: 'keep-alive', ...options.headers };
    if (body !== undefined) {
        headers['content-type'] ??= 'application/json';
        headers['content-length'] = String(Buffer.byteLength(body));
    }

    const req = httpRequest({ host: internals.host, port, method: options.method ?? 'GET', path: options.path, headers, agent: options.agent ?? keepAliveAgent() });
    const outcome = internals.collect(req, options.timeoutMs ?? 10_000);
    req.end(body);
    return outcome;
};


export interface SlowUpload {
    readonly outcome: Promise<Outcome>;
    finish(): void;
}


// A POST whose headers and first half of the body are sent now and the rest only on finish(): a
// request the server is serving, but cannot answer yet.
export const slowUpload = async function (port: number, path: string, payload: object): Promise<SlowUpload> {

    const body = JSON.stringify(payload);
    const half = Math.floor(body.length / 2);
    const req = httpRequest({
        host: internals.host,
        port,
        method: 'POST',
        path,
        agent: keepAliveAgent(),
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), connection: 'keep-alive' }
    });

    const outcome = internals.collect(req, 15_000);
    req.flushHeaders();
    await new Promise<void>((resolve) => req.write(body.slice(0, half), () => resolve()));

    return {
        outcome,
        finish: () => req.end(body.slice(half))
    };
};


export interface Poller {
    readonly samples: { readonly at: number; readonly status?: number; readonly error?: string; readonly reused: boolean }[];
    stop(): Promise<void>;
}


// Polls one path every few ms over a single kept-alive connection, as a kubelet or a balancer would,
// until stopped or until the connection can no longer be made.
export const poll = function (port: number, path: string, intervalMs = 3): Poller {

    const agent = keepAliveAgent();
    const samples: Poller['samples'] = [];
    let stopped = false;

    const loop = (async () => {

        while (!stopped) {
            const req = httpRequest({ host: internals.host, port, path, agent, headers: { connection: 'keep-alive' } });
            const outcome = internals.collect(req, 5000);
            req.end();
            const { status, error, at } = await outcome;
            samples.push({ at, reused: req.reusedSocket, ...(status === undefined ? {} : { status }), ...(error === undefined ? {} : { error }) });
            if (error === 'ECONNREFUSED') {
                return;
            }

            await sleep(intervalMs);
        }
    })();

    return {
        samples,
        async stop() {

            stopped = true;
            await loop;
            agent.destroy();
        }
    };
};


export interface IdleSocket {
    readonly endedAt: number | null;                // FIN received from the server
    readonly closedAt: number | null;
    readonly error: string | null;                  // ECONNRESET when the server reset instead of closing
    readonly closed: Promise<void>;
    get(path: string): Promise<string>;             // One request on this socket; resolves with the raw response head
    destroy(): void;
}


// A raw keep-alive connection: requests written by hand, so the test sees exactly what the server
// does with the socket (a FIN is `end`, a reset is an error) and no client library hides it.
export const idleSocket = async function (port: number): Promise<IdleSocket> {

    const socket = netConnect({ host: internals.host, port });
    await new Promise<void>((resolve, reject) => {

        socket.once('connect', resolve);
        socket.once('error', reject);
    });

    const state = { endedAt: null as number | null, closedAt: null as number | null, error: null as string | null };
    let buffer = '';
    let onData: (() => void) | null = null;

    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {

        buffer += chunk;
        onData?.();
    });

    socket.on('end', () => {

        state.endedAt = Date.now();
    });

    socket.on('error', (err: NodeJS.ErrnoException) => {

        state.error = err.code ?? err.message;
    });

    const closed = new Promise<void>((resolve) => {

        socket.once('close', () => {

            state.closedAt = Date.now();
            resolve();
        });
    });

    // Complete once the head and a content-length body, or a chunked body's last chunk, have arrived.
    const complete = (): string | null => {

        const headEnd = buffer.indexOf('\r\n\r\n');
        if (headEnd === -1) {
            return null;
        }

        const head = buffer.slice(0, headEnd);
        const rest = buffer.slice(headEnd + 4);
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        const done = length ? Buffer.byteLength(rest) >= Number(length[1]) : rest.includes('0\r\n\r\n');
        if (!done) {
            return null;
        }

        buffer = '';
        return head;
    };

    return {
        get endedAt() {

            return state.endedAt;
        },
        get closedAt() {

            return state.closedAt;
        },
        get error() {

            return state.error;
        },
        closed,
        get(path) {

            return new Promise((resolve, reject) => {

                onData = () => {

                    const head = complete();
                    if (head) {
                        onData = null;
                        resolve(head);
                    }
                };

                void closed.then(() => reject(new Error('socket closed before the response')));
                socket.write(`GET ${path} HTTP/1.1\r\nHost: ${internals.host}:${port}\r\nConnection: keep-alive\r\n\r\n`);
            });
        },
        destroy: () => socket.destroy()
    };
};


// Whether a new TCP connection is accepted now.
export const connects = function (port: number): Promise<boolean> {

    return new Promise((resolve) => {

        const socket = netConnect({ host: internals.host, port });
        socket.once('connect', () => {

            socket.destroy();
            resolve(true);
        });

        socket.once('error', () => resolve(false));
    });
};
