import type { Plugin } from '@hapi/hapi';
import { context } from '@opentelemetry/api';
import { getRPCMetadata, RPCType } from '@opentelemetry/core';


// Names the http instrumentation's server span by the hapi route (`GET /items/{id}`, attribute
// http.route): that instrumentation reads the route from the request's RPC metadata when the
// response ends. One extension per request does it, where the hapi instrumentation wrapped every
// handler and extension in a span of its own. onPreAuth runs once the route is matched and before
// validation, so requests rejected as invalid are named too; hapi's 404 has no route to give.

export const plugin: Plugin<void> = {
    name: 'item-api/trace-route',
    register(server) {

        server.ext('onPreAuth', (request, h) => {

            const metadata = getRPCMetadata(context.active());
            if (metadata?.type === RPCType.HTTP && request.route.method as string !== '_special') {
                metadata.route = request.route.path;
            }

            return h.continue;
        });
    }
};
