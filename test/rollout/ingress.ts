import http from 'node:http';
import type { AddressInfo } from 'node:net';

import type { View } from './endpoints.ts';


// An L7 ingress in front of the pods, the way ingress-nginx proxies to a Service's endpoints: it
// balances over its own (lagging) list of endpoints, round robin, and reuses keep-alive upstream
// connections across requests from a pool per endpoint. An upstream that refuses or resets is
// answered 502 with no retry on another endpoint (proxy_next_upstream off), so every upstream
// failure reaches the client. No endpoint at all is 503, as nginx answers for an empty upstream.

export interface Ingress {
    readonly address: { host: string; port: number };
    readonly stats: { requests: number; badGateway: number; unavailable: number };
    close(): Promise<void>;
}


const internals = {
    hopByHop: new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']),

    headers(raw: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {

        const headers: http.OutgoingHttpHeaders = {};
        for (const [name, value] of Object.entries(raw)) {
            if (!internals.hopByHop.has(name) && value !== undefined) {
                headers[name] = value;
            }
        }

        return headers;
    }
};


export const start = async function (options: { host: string; port: number; view: View; maxSocketsPerEndpoint: number; upstreamIdleTimeoutMs: number }): Promise<Ingress> {

    const agents = new Map<string, http.Agent>();
    const stats = { requests: 0, badGateway: 0, unavailable: 0 };

    const agent = (key: string) => {

        let pool = agents.get(key);
        if (!pool) {
            pool = new http.Agent({ keepAlive: true, maxSockets: options.maxSocketsPerEndpoint, maxFreeSockets: options.maxSocketsPerEndpoint, timeout: options.upstreamIdleTimeoutMs, scheduling: 'lifo' });
            agents.set(key, pool);
        }

        return pool;
    };

    const server = http.createServer({ keepAliveTimeout: 75_000, requestTimeout: 0, headersTimeout: 76_000 }, (req, res) => {

        ++stats.requests;
        const endpoint = options.view.pickRoundRobin();
        if (!endpoint) {
            ++stats.unavailable;
            res.writeHead(503, { 'x-ingress-error': 'no-endpoints' }).end();
            req.resume();
            return;
        }

        const upstream = http.request({
            agent: agent(`${endpoint.ip}:${endpoint.port}`),
            host: endpoint.ip,
            port: endpoint.port,
            method: req.method,
            path: req.url,
            headers: { ...internals.headers(req.headers), 'x-forwarded-for': req.socket.remoteAddress ?? '' }
        }, (upstreamRes) => {

            res.writeHead(upstreamRes.statusCode ?? 502, { ...internals.headers(upstreamRes.headers), 'x-upstream': endpoint.name });
            upstreamRes.pipe(res);
            upstreamRes.once('error', () => res.destroy());
            upstreamRes.once('aborted', () => res.destroy());
        });

        upstream.once('error', (err: NodeJS.ErrnoException) => {

            if (res.headersSent) {
                res.destroy();                  // Mid-body: nginx can only close the client connection
                return;
            }

            ++stats.badGateway;
            res.writeHead(502, { 'x-ingress-error': err.code ?? err.message, 'x-upstream': endpoint.name }).end();
        });

        req.pipe(upstream);
        res.once('close', () => {

            if (!res.writableFinished) {
                upstream.destroy();
            }
        });
    });

    await new Promise<void>((resolve, reject) => {

        server.once('error', reject);
        server.listen(options.port, options.host, () => resolve());
    });

    const { port } = server.address() as AddressInfo;
    return {
        address: { host: options.host, port },
        stats,
        close() {

            for (const pool of agents.values()) {
                pool.destroy();
            }

            server.closeAllConnections();
            return new Promise((resolve) => server.close(() => resolve()));
        }
    };
};
