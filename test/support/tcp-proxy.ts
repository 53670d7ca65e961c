import net from 'node:net';
import { performance } from 'node:perf_hooks';


// A TCP proxy that makes a network worse on purpose, for the tests and the fault scenarios: added
// latency with jitter on every chunk (order kept, as TCP keeps it), then a blackhole that holds
// everything in both directions, as a link losing every packet does while TCP retransmits, and a
// cut that resets every connection. It listens on one address and forwards to one target; nothing
// else is ever connected to.

export interface Conditions {
    readonly latencyMs: number;             // Added to each chunk, each way
    readonly jitterMs: number;              // Plus a uniform 0..jitterMs
    readonly blackhole: boolean;            // Hold every byte (and new connections' bytes) until lifted
}


export interface Stats {
    connections: number;
    open: number;
    bytesUp: number;
    bytesDown: number;
    cut: number;
}


export interface Proxy {
    readonly address: { host: string; port: number };
    readonly stats: Stats;
    set(conditions: Partial<Conditions>): void;
    cut(): number;                          // Resets every open connection; returns how many
    close(): Promise<void>;
}


export interface ProxyOptions {
    readonly listen: { host: string; port: number };        // port 0: any free port
    readonly target: { host: string; port: number };
    readonly maxConnections?: number;
}


interface Direction {
    readonly to: net.Socket;
    held: Buffer[];
    lastAt: number;
}


const internals = {
    noConditions: { latencyMs: 0, jitterMs: 0, blackhole: false } as Conditions
};


export const start = async function (options: ProxyOptions): Promise<Proxy> {

    let conditions: Conditions = internals.noConditions;
    const stats: Stats = { connections: 0, open: 0, bytesUp: 0, bytesDown: 0, cut: 0 };
    const pairs = new Set<{ client: net.Socket; upstream: net.Socket; flush: () => void }>();

    // Delivers a chunk after the latency, never before the previous chunk of the same direction.
    const forward = (direction: Direction, chunk: Buffer) => {

        if (conditions.blackhole) {
            direction.held.push(chunk);
            return;
        }

        const delay = conditions.latencyMs + Math.random() * conditions.jitterMs;
        if (delay <= 0 && direction.lastAt <= performance.now()) {
            direction.to.write(chunk);
            return;
        }

        const at = Math.max(performance.now() + delay, direction.lastAt);
        direction.lastAt = at;
        setTimeout(() => {

            if (!direction.to.destroyed) {
                direction.to.write(chunk);
            }
        }, at - performance.now());
    };

    const server = net.createServer({ pauseOnConnect: false }, (client) => {

        ++stats.connections;
        ++stats.open;
        const upstream = net.connect(options.target);
        const up: Direction = { to: upstream, held: [], lastAt: 0 };
        const down: Direction = { to: client, held: [], lastAt: 0 };
        const pair = {
            client,
            upstream,
            flush() {

                for (const direction of [up, down]) {
                    const held = direction.held;
                    direction.held = [];
                    for (const chunk of held) {
                        forward(direction, chunk);
                    }
                }
            }
        };

        pairs.add(pair);
        client.on('data', (chunk: Buffer) => {

            stats.bytesUp += chunk.length;
            forward(up, chunk);
        });
        upstream.on('data', (chunk: Buffer) => {

            stats.bytesDown += chunk.length;
            forward(down, chunk);
        });

        const close = () => {

            if (pairs.delete(pair)) {
                --stats.open;
            }

            client.destroy();
            upstream.destroy();
        };

        client.on('error', close);
        upstream.on('error', close);
        client.on('close', close);
        upstream.on('close', close);
    });

    server.maxConnections = options.maxConnections ?? 1000;
    await new Promise<void>((resolve, reject) => {

        server.once('error', reject);
        server.listen(options.listen.port, options.listen.host, () => resolve());
    });

    const bound = server.address() as net.AddressInfo;
    return {
        address: { host: bound.address, port: bound.port },
        stats,
        set(next) {

            const lifted = conditions.blackhole && next.blackhole === false;
            conditions = { ...conditions, ...next };
            if (lifted) {
                for (const pair of pairs) {
                    pair.flush();
                }
            }
        },
        cut() {

            const count = pairs.size;
            for (const pair of [...pairs]) {
                pair.client.resetAndDestroy();
                pair.upstream.resetAndDestroy();
            }

            stats.cut += count;
            return count;
        },
        async close() {

            for (const pair of [...pairs]) {
                pair.client.destroy();
                pair.upstream.destroy();
            }

            await new Promise<void>((resolve) => server.close(() => resolve()));
        }
    };
};
