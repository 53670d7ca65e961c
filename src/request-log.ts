import type { Plugin, Request } from '@hapi/hapi';

import type { Logger } from './logger.ts';


// One JSON line per request when its response is sent, and one per request that failed with an
// error. Written here rather than with hapi-pino, which gives every request a child logger on
// onRequest whether or not anything logs through it (measured in the README's Performance section).
// The line holds what identifies the request, not its headers: all headers on every line cost
// ~50 µs and ~580 bytes a request.

export interface RequestLogOptions {
    readonly logger: Logger;
    readonly ignorePaths?: string[];
}


const internals = {

    req: (request: Request) => ({
        id: request.info.id,
        method: request.method,
        url: request.path,
        remoteAddress: request.info.remoteAddress,
        userAgent: request.headers['user-agent']
    })
};


export const plugin: Plugin<RequestLogOptions> = {
    name: 'item-api/request-log',
    register(server, options) {

        const { logger } = options;
        const ignored = new Set(options.ignorePaths ?? []);

        server.events.on('response', (request) => {

            if (ignored.has(request.path) || request.app.warmup || !logger.isLevelEnabled('info')) {  // src/warmup.ts
                return;
            }

            const info = request.info;
            const statusCode = request.raw.res.statusCode;
            const responseTime = (info.completed || info.responded) - info.received;
            logger.info({ req: internals.req(request), res: { statusCode }, responseTime }, `[response] ${request.method} ${request.path} ${statusCode} (${responseTime}ms)`);
        });

        // Errors thrown by handlers and extensions (500s); hapi's internal channel (closed sockets,
        // client aborts) is not a fault of the service.
        server.events.on({ name: 'request', channels: 'error' }, (request, event) => {

            logger.error({ req: internals.req(request), err: event.error }, (event.error as Error | undefined)?.message ?? 'request error');
        });

        // The server's own errors, but not a client that resets its connection: no fault of the service.
        server.events.on('log', (event, tags) => {

            if (event.error && !tags.client) {
                logger.error({ err: event.error, tags: event.tags }, (event.error as Error).message);
            }
        });
    }
};


// For the lines a request's own code writes (as request.logger did with hapi-pino): the request's
// id binds them to its response line, without a child logger per request.
export const bindings = function (request: Request): { reqId: string } {

    return { reqId: request.info.id };
};
