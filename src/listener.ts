import * as Fs from 'node:fs';
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
    socketOptions: { allowHalfOpen: true, noDelay: true } satisfies Net.ServerOpts,

    // The kernel lists listening sockets first in /proc/net/tcp, one 150-byte row each, with the queue
    // of connections not yet accepted as rx_queue (state 0A). A read stops once its buffer is full, so a
    // page holds the listening rows and the kernel does not go on through the connections table: 22-45 µs a
    // read here. Where a page is not full (few connections) the kernel walks the whole table to its end
    // first: ~800 µs on this 24 GiB machine, in a network namespace of its own as a pod's is.
    tableBuffer: Buffer.alloc(4096),

    // Connections waiting in the listening rows of a /proc/net/tcp page for this port (hex, as the table
    // writes it), summed over the sockets.
    queued(table: string, port: string): number {

        let queued = 0;
        for (const row of table.split('\n').slice(1)) {
            const [, local, , state, queues] = row.trim().split(/\s+/);
            if (state !== '0A') {
                break;                                  // Past the listening rows
            }

            if (local!.endsWith(port)) {
                queued += parseInt(queues!.slice(queues!.indexOf(':') + 1), 16);
            }
        }

        return queued;
    }
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

    // Connections the kernel has set up on the port that no socket has accepted yet: they wait unseen by
    // anything node reports (src/shedding.ts). Linux only, null elsewhere or before listen. Another
    // process sharing the port (SO_REUSEPORT) would be counted too.
    waitingToBeAccepted(): number | null {

        const address = this.address();
        if (!address || typeof address === 'string') {
            return null;
        }

        let read: number;
        try {
            const fd = Fs.openSync(address.family === 'IPv6' ? '/proc/self/net/tcp6' : '/proc/self/net/tcp', 'r');
            try {
                read = Fs.readSync(fd, internals.tableBuffer, 0, internals.tableBuffer.length, null);
            }
            finally {
                Fs.closeSync(fd);
            }
        }
        catch {
            return null;
        }

        const port = `:${address.port.toString(16).toUpperCase().padStart(4, '0')}`;
        return internals.queued(internals.tableBuffer.toString('latin1', 0, read), port);
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
