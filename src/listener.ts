import * as Http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as Net from 'node:net';


// hapi's listener, accepting on several sockets bound to the one port (SO_REUSEPORT).
//
// node accepts one connection per event-loop iteration (libuv/libuv#3696). Under a saturated loop
// the connections that clients open when load jumps wait in the listen queue, unread, while
// requests on open connections are answered: in the 2x overload, 104-157 per pod queued for ~1.5 s
// at its onset, and those 2-3 % of the accepted requests set its p99 (0.8-2.9 s). With several
// sockets the kernel spreads new connections over their queues and the loop accepts from each of
// them in an iteration; with 4 the accepted p99 fell to 0.25-0.37 s, the same as on reused
// connections (README, Faults and overload). Every socket hands its connections to the one HTTP
// server, so timeouts, tracking, health checks and the drain see them all alike.
//
// Each socket sets SO_REUSEPORT, so a second process of the same user could bind the port too and
// share its connections instead of failing with EADDRINUSE; one socket (the default) keeps node's
// plain listen and that check.

const internals = {

    // The options node's HTTP server gives its own net.Server (lib/_http_server.js), so a connection
    // taken by another socket is set up as one taken by the listener itself.
    socketOptions: { allowHalfOpen: true, noDelay: true } satisfies Net.ServerOpts
};


export class Listener extends Http.Server {

    readonly #acceptors: number;
    readonly #extra: Net.Server[] = [];

    constructor(acceptors: number) {

        super();
        this.#acceptors = acceptors;
    }

    // hapi calls listen(port, address, callback) for TCP; every other form is node's own.
    override listen(...args: unknown[]): this {

        const [port, address, callback] = args;
        if (this.#acceptors === 1 || typeof port !== 'number' || typeof callback !== 'function') {
            return super.listen(...args as Parameters<Http.Server['listen']>);
        }

        const host = (address as string | null) ?? undefined;
        return super.listen({ port, host, reusePort: true }, () => {

            void this.#listenExtra(host).then(() => (callback as () => void)(), (err: unknown) => {

                this.close();
                this.emit('error', err);
            });
        });
    }

    // Stops every socket accepting at once (terminus closes the listener at the drain, hapi at its stop).
    override close(callback?: (err?: Error) => void): this {

        for (const extra of this.#extra.splice(0)) {
            extra.close();
        }

        return super.close(callback);
    }

    async #listenExtra(host: string | undefined): Promise<void> {

        const { port } = this.address() as AddressInfo;
        for (let i = 1; i < this.#acceptors; ++i) {
            const extra = Net.createServer(internals.socketOptions, (socket) => this.emit('connection', socket));
            this.#extra.push(extra);
            await new Promise<void>((resolve, reject) => {

                extra.once('error', reject);
                extra.listen({ port, host, reusePort: true }, () => {

                    extra.removeListener('error', reject);
                    extra.on('error', (err) => this.emit('error', err));        // As node's own accept errors are
                    resolve();
                });
            });
        }
    }
}
