import Boom from '@hapi/boom';
import Hapi from '@hapi/hapi';
import type { Request, ResponseToolkit, Server } from '@hapi/hapi';

import type { Config } from './config.ts';
import * as Db from './db.ts';
import * as Items from './items/routes.ts';
import { Listener } from './listener.ts';
import type { Logger } from './logger.ts';
import * as MethodNotAllowed from './method-not-allowed.ts';
import * as OpenApi from './openapi.ts';
import * as RequestLog from './request-log.ts';
import * as Shedding from './shedding.ts';
import * as Telemetry from './telemetry.ts';
import * as TraceRoute from './trace-route.ts';


export interface ServerOptions {
    readonly config: Config;
    readonly db: Db.Db;
    readonly logger: Logger;
}


const internals = {

    // One error shape: boom's payload, plus the field at fault when there is one.
    failAction(_request: Request, _h: ResponseToolkit, err?: Error): never {

        throw err;
    },

    onPreResponse: (logger: Logger) => function (request: Request, h: ResponseToolkit) {

        const response = request.response;
        if (!Boom.isBoom(response)) {
            return h.continue;
        }

        if (Db.isUnavailable(response)) {
            logger.warn({ ...RequestLog.bindings(request), err: response }, 'database unavailable');
            const unavailable = Boom.serverUnavailable('Database unavailable, retry shortly');
            unavailable.output.headers['retry-after'] = '1';
            return unavailable;
        }

        // A 503 (hapi's response deadline, any other) says when to retry: a client told so spreads its
        // retries instead of coming straight back to a process that cannot serve it.
        if (response.output.statusCode === 503) {
            response.output.headers['retry-after'] ??= '1';
        }

        // field replaces hapi's validation details, so every error has the one documented shape. It comes
        // from joi's path, not from hapi's keys, which are HTML-escaped: "ß" would come back as "&#223;".
        const payload = response.output.payload as { field?: string; validation?: unknown };
        const path = (response as { details?: { path: (string | number)[] }[] }).details?.[0]?.path ?? [];
        const field = (response.data as { field?: string } | null)?.field ?? (path.length ? path.join('.') : undefined);
        delete payload.validation;
        if (field !== undefined) {
            payload.field = field;
        }

        return h.continue;
    }
};


export const create = async function (options: ServerOptions): Promise<Server> {

    const { config, db, logger } = options;

    const listener = new Listener(config.http.acceptors);
    const server = Hapi.server({
        host: config.host,
        port: config.port,
        listener,
        router: { stripTrailingSlash: true },
        // hapi samples the load; src/shedding.ts judges it in front of hapi. No limit here: hapi's check
        // behind the gate would read the same sample again for every request the gate let through, and on
        // the event-loop delay it would shed the backlog of a stall that has already ended.
        load: { sampleInterval: config.load.sampleIntervalMs },
        routes: {
            payload: { maxBytes: config.http.maxBodyBytes, allow: 'application/json' },
            validate: { failAction: internals.failAction },
            // hapi's 503 at the deadline gets its Retry-After in onPreResponse; the handler's late result is dropped.
            timeout: { server: config.http.responseTimeoutMs || false }
        }
    });

    // Above a balancer's idle timeout, so the balancer, not the server, closes idle connections (no 502
    // on reuse); headers timeout above keep-alive, per node's own guidance; request timeout cuts slow senders.
    server.listener.keepAliveTimeout = config.http.keepAliveTimeoutMs;
    server.listener.headersTimeout = config.http.headersTimeoutMs;
    server.listener.requestTimeout = config.http.requestTimeoutMs;

    // Node enforces the two timeouts above only when it sweeps its connections, every 30 s by default:
    // a slow-header client would hold its socket up to 30 s past the limit. Sweep at a quarter of the
    // shorter timeout, between 50 ms and 1 s. Typed only as a createServer() option, but node reads
    // the property when the listener starts (the slow-header lifecycle test holds it to that).
    (server.listener as { connectionsCheckingInterval?: number }).connectionsCheckingInterval = Math.min(Math.max(Math.floor(Math.min(config.http.headersTimeoutMs, config.http.requestTimeoutMs) / 4), 50), 1000);

    Shedding.gate(server, {
        limits: config.load,
        logger,
        waitingForDatabase: () => Db.waiting(db),
        waitingToBeAccepted: () => listener.waitingToBeAccepted()
    });

    await server.register({ plugin: RequestLog.plugin, options: { logger, ignorePaths: ['/openapi.json'] } });
    if (Telemetry.active()) {
        await server.register(TraceRoute.plugin);
    }

    server.ext('onPreResponse', internals.onPreResponse(logger));
    server.route(Items.routes({ db, idempotencyTtlMs: config.idempotency.ttlMs, validateResponses: config.env !== 'production' }));

    const openapi = OpenApi.document(server, { title: 'item-api', version: '1' });
    server.route({ method: 'GET', path: '/openapi.json', handler: () => openapi });
    server.route(MethodNotAllowed.routes(server));

    return server;
};
