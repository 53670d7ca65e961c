import net from 'node:net';

import type { View } from './endpoints.ts';


// The Service's cluster IP as kube-proxy makes it: each new connection is sent to an endpoint picked
// at random from kube-proxy's (lagging) view, and stays there for its whole life, as conntrack
// keeps a DNAT'ed flow on its backend whatever the endpoints become. Bytes are piped both ways
// until either side closes; a half-close is passed on as a half-close.
//
// With iptables a connect to a backend that refuses is answered by the backend's kernel with a RST,
// so the client's connect fails. Here the client's connect has already been accepted by this
// listener, so the client connection is reset instead, and remembered as refused so the client's
// error can be classified as what it would have been.

export interface KubeProxy {
    readonly address: { host: string; port: number };
    readonly stats: { connections: number; refused: number; reset: number; perEndpoint: Map<string, number> };
    wasRefused(localAddress: string, localPort: number): boolean;
    describe(localAddress: string, localPort: number): string;      // Which pod the connection went to, and who reset it
    close(): Promise<void>;
}


export const start = async function (options: { host: string; port: number; view: View }): Promise<KubeProxy> {

    const refused = new Set<string>();
    const flows = new Map<string, string>();
    const stats = { connections: 0, refused: 0, reset: 0, perEndpoint: new Map<string, number>() };
    const open = new Set<net.Socket>();

    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (client) => {

        ++stats.connections;
        open.add(client);
        client.once('close', () => open.delete(client));
        const key = `${client.remoteAddress}:${client.remotePort}`;
        const reject = () => {

            ++stats.refused;
            refused.add(key);
            setTimeout(() => refused.delete(key), 30_000).unref();
            client.resetAndDestroy();
        };

        const endpoint = options.view.pickRandom();
        if (!endpoint) {
            reject();                           // No endpoints: the REJECT rule kube-proxy installs
            return;
        }

        stats.perEndpoint.set(endpoint.name, (stats.perEndpoint.get(endpoint.name) ?? 0) + 1);
        flows.set(key, endpoint.name);
        client.once('close', () => setTimeout(() => flows.delete(key), 5_000).unref());
        const upstream = net.connect({ host: endpoint.ip, port: endpoint.port, allowHalfOpen: true, noDelay: true });
        open.add(upstream);
        upstream.once('close', () => open.delete(upstream));

        let connected = false;
        upstream.once('connect', () => {

            connected = true;
            client.pipe(upstream);
            upstream.pipe(client);
            client.resume();
        });

        // A reset on one side is a reset on the other: the kernel would forward the RST.
        upstream.on('error', () => {

            if (!connected) {
                reject();
                return;
            }

            ++stats.reset;
            flows.set(key, `${endpoint.name}, reset by the pod`);
            client.resetAndDestroy();
        });

        client.on('error', () => {

            flows.set(key, `${endpoint.name}, reset by the client`);
            upstream.resetAndDestroy();
        });
    });

    server.on('error', () => {});
    await new Promise<void>((resolve, reject) => {

        server.once('error', reject);
        server.listen(options.port, options.host, () => resolve());
    });

    return {
        address: { host: options.host, port: options.port },
        stats,
        wasRefused: (localAddress, localPort) => refused.has(`${localAddress}:${localPort}`),
        describe: (localAddress, localPort) => flows.get(`${localAddress}:${localPort}`) ?? 'unknown flow',
        close() {

            for (const socket of open) {
                socket.destroy();
            }

            return new Promise((resolve) => server.close(() => resolve()));
        }
    };
};
