import Boom from '@hapi/boom';
import type { Server, ServerRoute } from '@hapi/hapi';


// The router answers 404 to a method a path does not have, as if the path did not exist. HTTP says 405
// with Allow listing the methods it has (RFC 9110 15.5.6): one catch-all route per known path says so,
// and unknown paths stay 404. hapi serves HEAD from a GET route before trying '*', so HEAD is allowed
// wherever GET is.

const internals = {

    allowed(server: Server): Map<string, string[]> {

        const paths = new Map<string, string[]>();
        for (const route of server.table()) {
            if (route.method === '*') {
                continue;
            }

            const methods = paths.get(route.path) ?? [];
            methods.push(...(route.method === 'get' ? ['GET', 'HEAD'] : [route.method.toUpperCase()]));
            paths.set(route.path, methods);
        }

        return paths;
    }
};


export const routes = function (server: Server): ServerRoute[] {

    return [...internals.allowed(server)].map(([path, methods]) => {

        const allow = methods.sort();
        return {
            method: '*',
            path,
            handler: (request) => {

                throw Boom.methodNotAllowed(`${request.method.toUpperCase()} is not allowed on ${path}; allowed: ${allow.join(', ')}`, undefined, allow);
            }
        };
    });
};
