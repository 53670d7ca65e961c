import http from 'node:http';
import { performance } from 'node:perf_hooks';


// Open-loop load: requests leave on a wall-clock schedule whatever the earlier ones are doing, so a
// stall shows up as latency and failures instead of quietly lowering the rate. Latency is counted
// from the scheduled time. Without `retry` (the rollout proof) the first attempt's outcome is what is
// counted; with it (the fault scenarios) the clients behave as good clients do: writes are retried
// with capped exponential backoff and full jitter, never sooner than Retry-After, on connection
// errors, timeouts and 503; reads are retried once on the same; the last attempt's outcome counts.
// `concurrency` turns the schedule into a closed loop (a fixed number in flight), to measure capacity.
//
// Every write the service acknowledges is remembered: the id of each 201 and the version of each
// 200 to a PATCH. Each create carries its own Idempotency-Key, also written into the item's name, so
// a duplicate create is visible in the table. PATCH only touches items this generator created and
// is not already patching, so a 412 means something went wrong, not that two clients raced.

export type Path = 'service' | 'ingress';
export type Op = 'get' | 'list' | 'post' | 'patch';
export type Kind = 'ok' | 'conflict' | 'client' | '5xx' | 'refused' | 'reset' | 'timeout' | 'other';

export const failureKinds: readonly Kind[] = ['refused', 'reset', '5xx', 'timeout', 'client', 'other'];


export interface Sample {
    readonly at: number;                    // Scheduled send time
    readonly path: Path;
    readonly op: Op;
    readonly kind: Kind;
    readonly latencyMs: number;
    readonly status: number;
    readonly detail: string;                // Error code or the ingress's upstream error, for failures
    readonly inFlightLost: boolean;         // Sent on an established connection that was then cut
    readonly attempts: number;
    readonly connectMs: number;             // The last attempt's wait for a new connection (0 on a reused one)
    readonly lagMs: number;                 // How late the client sent it (its own event loop), part of latencyMs
}


export interface Target {
    readonly host: string;
    readonly port: number;
}


export interface RetryPolicy {
    readonly writeAttempts: number;
    readonly readAttempts: number;
    readonly baseDelayMs: number;
    readonly maxDelayMs: number;
    readonly deadlineMs: number;            // No attempt starts later than this after the scheduled time
    readonly budget?: RetryBudget;
}


// gRPC's retry throttling (gRFC A6), shared by the generator's clients: every failed attempt takes a
// token, every success gives back tokenRatio, and no retry starts while half the tokens or fewer are
// left, so retries stay near tokenRatio of what succeeds however much is shed.
export interface RetryBudget {
    readonly maxTokens: number;
    readonly tokenRatio: number;
}


export interface LoadOptions {
    readonly rate: number | ((elapsedMs: number) => number);
    readonly concurrency?: number;          // Closed loop instead of the schedule
    readonly timeoutMs: number;
    readonly maxDurationMs: number;
    readonly service: Target;
    readonly ingress?: Target;              // Without it every request goes through the Service
    readonly retry?: RetryPolicy;
    readonly idempotencyKeys?: boolean;     // false: creates carry no Idempotency-Key (a negative control)
    readonly clients: number;               // Keep-alive agents per path, like as many client pods
    readonly maxSocketsPerClient: number;
    readonly mix: Readonly<Record<Op, number>>;
    readonly runId: string;
}


export interface LoadResult {
    readonly startedAt: number;
    readonly stoppedAt: number;
    readonly samples: Sample[];
    readonly acknowledged: Map<string, { version: number; key: string }>;
    readonly keyPrefix: string;
    readonly creates: number;
}


export interface Load {
    stop(): Promise<LoadResult>;
}


interface Owned {
    id: string;
    version: number;
    busy: boolean;
}


interface Response {
    status: number;
    headers: http.IncomingHttpHeaders;
    body: string;
    connectMs: number;
}


interface Failure {
    kind: Kind;
    detail: string;
    inFlightLost: boolean;
}


type Outcome = (Response | Failure) & { attempts: number };


const internals = {
    resetCodes: new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']),

    // How long a kept-alive socket may sit idle in the client, as a load balancer's idle timeout (60 s,
    // under the chart's keep-alive of 65 s). node's agent lowers it to the server's `Keep-Alive:
    // timeout=N` hint less a second, but only when the agent has a timeout of its own: without one it
    // kept idle sockets for ever and reused them just as the server's keep-alive timer closed them.
    // Under a CPU limit that timer fires after a throttled period, with the new request already unread
    // in the socket, and the close is a reset: the overload's resets (the pod's RST, with no FIN before
    // it, on a reused connection the client had just written to). A client, a balancer or an ingress
    // that closes idle connections before the server does is what the keep-alive settings assume.
    idleTimeoutMs: 60_000,

    // Worth another attempt: the request may not have been served, and the server or the network says so.
    retriable(outcome: Response | Failure): boolean {

        if ('kind' in outcome) {
            return outcome.kind === 'refused' || outcome.kind === 'reset' || outcome.kind === 'timeout' || outcome.kind === 'other';
        }

        return outcome.status === 503 || (outcome.status >= 500 && outcome.headers['retry-after'] !== undefined);
    },

    backoffMs(policy: RetryPolicy, attempt: number, outcome: Response | Failure): number {

        const jittered = Math.random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
        const retryAfter = 'status' in outcome ? Number(outcome.headers['retry-after']) : NaN;
        return Number.isFinite(retryAfter) ? Math.max(retryAfter * 1000, jittered) : jittered;
    },

    pick<T>(items: readonly T[]): T | undefined {

        return items[Math.floor(Math.random() * items.length)];
    },

    choose(mix: Readonly<Record<Op, number>>): Op {

        const total = Object.values(mix).reduce((sum, weight) => sum + weight, 0);
        let roll = Math.random() * total;
        for (const [op, weight] of Object.entries(mix) as [Op, number][]) {
            roll -= weight;
            if (roll < 0) {
                return op;
            }
        }

        return 'get';
    }
};


export const start = function (options: LoadOptions): Load {

    const agents: Record<Path, http.Agent[]> = { service: [], ingress: [] };
    for (const path of options.ingress ? ['service', 'ingress'] as const : ['service'] as const) {
        for (let i = 0; i < options.clients; ++i) {
            agents[path].push(new http.Agent({ keepAlive: true, maxSockets: options.maxSocketsPerClient, scheduling: 'lifo', timeout: internals.idleTimeoutMs }));
        }
    }

    const keyPrefix = `rollout-${options.runId}`;
    const samples: Sample[] = [];
    const acknowledged = new Map<string, { version: number; key: string }>();
    const ids: string[] = [];
    const owned: Owned[] = [];
    const inFlight = new Set<Promise<void>>();
    const localPorts = new WeakMap<object, { address: string; port: number }>();
    const startedAt = performance.now();
    let creates = 0;
    let scheduled = 0;
    let stopping = false;
    let stoppedAt = 0;

    const send = (path: Path, method: string, url: string, headers: http.OutgoingHttpHeaders, body?: string) => new Promise<Response | Failure>((resolve) => {

        const target = options[path]!;
        let timedOut = false;
        let written = false;
        let connection: { address: string; port: number } | undefined;
        let reused = false;
        let connectMs = 0;
        const sentAt = performance.now();

        const req = http.request({ agent: internals.pick(agents[path]), host: target.host, port: target.port, method, path: url, headers }, (res) => {

            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.once('end', () => {

                clearTimeout(timer);
                resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), connectMs });
            });
        });

        const timer = setTimeout(() => {

            timedOut = true;
            req.destroy(new Error('request timeout'));
        }, options.timeoutMs);

        req.once('socket', (socket) => {

            connection = localPorts.get(socket);
            reused = Boolean(connection);
            if (!connection) {
                socket.once('connect', () => {

                    connectMs = performance.now() - sentAt;
                    connection = { address: socket.localAddress ?? '', port: socket.localPort ?? 0 };
                    localPorts.set(socket, connection);
                });
            }
        });

        req.once('finish', () => {

            written = true;
        });

        req.once('error', (err: NodeJS.ErrnoException) => {

            clearTimeout(timer);
            const code = err.code ?? err.message;
            if (timedOut) {
                resolve({ kind: 'timeout', detail: written ? 'no response' : 'not sent', inFlightLost: false });
            }
            else if (code === 'ECONNREFUSED') {
                resolve({ kind: 'refused', detail: code, inFlightLost: false });
            }
            else if (internals.resetCodes.has(code)) {
                const via = connection ? `, from ${connection.address}:${connection.port}` : '';
                resolve({ kind: 'reset', detail: `${code}${reused ? ' on a reused connection' : ''}${written ? ' after the request was sent' : ''}${via}`, inFlightLost: written });
            }
            else {
                resolve({ kind: 'other', detail: code, inFlightLost: false });
            }
        });

        req.end(body);
    });

    // The good client: the same request again after a backoff, as long as the policy (and its budget) allows.
    const budget = options.retry?.budget;
    let tokens = budget?.maxTokens ?? 0;
    const spend = (failed: boolean): boolean => {

        if (!budget) {
            return true;
        }

        tokens = failed ? Math.max(0, tokens - 1) : Math.min(budget.maxTokens, tokens + budget.tokenRatio);
        return tokens > budget.maxTokens / 2;
    };

    const attempt = async (at: number, path: Path, method: string, url: string, headers: http.OutgoingHttpHeaders, body?: string): Promise<Outcome> => {

        const policy = options.retry;
        const limit = !policy ? 1 : method === 'GET' ? policy.readAttempts : policy.writeAttempts;
        for (let attempts = 1; ; ++attempts) {
            const outcome = await send(path, method, url, headers, body);
            const retriable = internals.retriable(outcome);
            const allowed = spend(retriable);
            if (attempts >= limit || !retriable || stopping || !allowed) {
                return { ...outcome, attempts };
            }

            const delay = internals.backoffMs(policy!, attempts, outcome);
            if (performance.now() + delay - at > policy!.deadlineMs) {
                return { ...outcome, attempts };
            }

            await new Promise((resolve) => setTimeout(resolve, delay));
        }
    };

    const forget = (item: Owned) => {

        const index = owned.indexOf(item);
        if (index >= 0) {
            owned.splice(index, 1);
        }
    };

    const dispatch = (at: number, index: number) => {

        const lagMs = performance.now() - at;
        const path: Path = options.ingress && index % 2 ? 'ingress' : 'service';
        let op = internals.choose(options.mix);
        let target: Owned | undefined;
        if (op === 'patch') {
            for (let attempt = 0; attempt < 8 && !target; ++attempt) {
                const candidate = internals.pick(owned);
                target = candidate?.busy ? undefined : candidate;
            }

            op = target ? 'patch' : 'list';
        }

        if (op === 'get' && !ids.length) {
            op = 'list';
        }

        let request: Promise<Outcome>;
        let key = '';
        if (op === 'post') {
            key = `${keyPrefix}-${++creates}`;
            const body = JSON.stringify({ name: key, quantity: index % 1000 });
            const headers = options.idempotencyKeys === false ? { 'content-type': 'application/json' } : { 'content-type': 'application/json', 'idempotency-key': key };
            request = attempt(at, path, 'POST', '/items', headers, body);
        }
        else if (op === 'patch') {
            target!.busy = true;
            const body = JSON.stringify({ quantity: index % 1000 });
            request = attempt(at, path, 'PATCH', `/items/${target!.id}`, { 'content-type': 'application/json', 'if-match': `"${target!.version}"` }, body);
        }
        else if (op === 'get') {
            request = attempt(at, path, 'GET', `/items/${internals.pick(ids)}`, {});
        }
        else {
            request = attempt(at, path, 'GET', '/items?limit=20', {});
        }

        const settled = request.then((outcome) => {

            const latencyMs = performance.now() - at;
            if ('kind' in outcome) {
                if (target) {
                    forget(target);                                 // Applied or not: the version is unknown now
                }

                samples.push({ at, path, op, kind: outcome.kind, latencyMs, status: 0, detail: outcome.detail, inFlightLost: outcome.inFlightLost, attempts: outcome.attempts, connectMs: 0, lagMs });
                return;
            }

            const { status } = outcome;
            let kind: Kind = status >= 500 ? '5xx' : status >= 400 ? 'client' : 'ok';
            let detail = '';
            if (status >= 400) {
                const upstream = outcome.headers['x-upstream'] ? `, ${outcome.headers['x-upstream']}` : '';
                detail = `${outcome.headers['x-ingress-error'] ?? outcome.body.slice(0, 120)}${upstream}`;
            }

            if (op === 'post' && (status === 201 || outcome.headers['idempotent-replayed'] === 'true')) {
                const item = JSON.parse(outcome.body) as { id: string; version: number };
                acknowledged.set(item.id, { version: item.version, key });
                ids.push(item.id);
                owned.push({ id: item.id, version: item.version, busy: false });
            }

            if (op === 'patch') {
                if (status === 200) {
                    const item = JSON.parse(outcome.body) as { id: string; version: number };
                    const previous = acknowledged.get(item.id)!;
                    acknowledged.set(item.id, { ...previous, version: Math.max(previous.version, item.version) });
                    target!.version = item.version;
                    target!.busy = false;
                }
                else {
                    kind = status === 412 ? 'conflict' : kind;
                    forget(target!);
                }
            }

            const upstreamCut = status === 502 && /ECONNRESET|socket hang up|EPIPE/.test(detail);
            samples.push({ at, path, op, kind, latencyMs, status, detail, inFlightLost: upstreamCut, attempts: outcome.attempts, connectMs: outcome.connectMs, lagMs });
        });

        inFlight.add(settled);
        void settled.finally(() => inFlight.delete(settled));
    };

    // Wakes every millisecond or so and sends whatever the schedule says is due (the rate may change
    // with time), or, in a closed loop, whatever keeps `concurrency` requests in flight.
    const rateAt = typeof options.rate === 'function' ? options.rate : () => options.rate as number;
    let nextAt = startedAt;
    let timer: NodeJS.Timeout | undefined;
    const tick = () => {

        const now = performance.now();
        if (stopping || now - startedAt > options.maxDurationMs) {
            stopping = true;
            stoppedAt ||= now;
            return;
        }

        if (options.concurrency) {
            while (inFlight.size < options.concurrency) {
                dispatch(performance.now(), scheduled++);
            }
        }
        else {
            while (nextAt <= now) {
                dispatch(nextAt, scheduled++);
                nextAt += 1000 / Math.max(rateAt(nextAt - startedAt), 0.1);
            }
        }

        timer = setTimeout(tick, 1);
    };

    tick();

    return {
        async stop() {

            stopping = true;
            stoppedAt ||= performance.now();
            clearTimeout(timer);
            await Promise.all(inFlight);
            for (const agent of [...agents.service, ...agents.ingress]) {
                agent.destroy();
            }

            return { startedAt, stoppedAt, samples, acknowledged, keyPrefix, creates };
        }
    };
};
