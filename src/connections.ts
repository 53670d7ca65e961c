import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

import * as Timers from './timers.ts';


// Tracks the listener's sockets and in-flight requests so the shutdown can move clients away, bound
// the drain and report it. terminus (through stoppable) stops the listener and ends each socket once
// it is idle; this module adds what it lacks:
// - from the signal on, `Connection: close` on every response still to be written. A client whose
//   keep-alive connection is pinned to this pod (conntrack) keeps using it for as long as it stays
//   open, whatever the endpoints say; closing it after its next response during the delay sends the
//   client back through the Service to a ready pod. Left open until the drain, the socket would be
//   ended while the client may be reusing it: a reset (the rollout simulator measured ~5 per drain).
// - the drain's hard deadline, with counts of what it cut.

export interface DrainReport {
    inFlight: number;               // Requests being served when the drain began
    sockets: number;                // Sockets open when the drain began
    socketsEnded: number;           // Closed cleanly before the deadline
    socketsDestroyed: number;       // Destroyed at the deadline
    requestsCut: number;            // Responses that never finished
    forced: boolean;
}


export interface Tracker {
    inFlight(): number;
    endKeepAlive(): void;
    beginDrain(timeoutMs: number): void;
    drained(): Promise<DrainReport>;
}


export const track = function (server: Server): Tracker {

    // The response each socket is serving or served last, read through the socket at the signal and
    // at the deadline: a request costs one Map write here. A 'close' listener on every response, next
    // to hapi's own two, cost ~70 µs of CPU per request (README, Performance). Pipelined requests
    // count as one; an idle keep-alive socket holds its last response until its next request.
    const sockets = new Map<Socket, ServerResponse | null>();
    const report: DrainReport = { inFlight: 0, sockets: 0, socketsEnded: 0, socketsDestroyed: 0, requestsCut: 0, forced: false };
    let draining = false;
    let keepAlive = true;
    let deadline: Timers.Timer | undefined;
    let resolveDrained: (report: DrainReport) => void = () => {};
    const drained = new Promise<DrainReport>((resolve) => {

        resolveDrained = resolve;
    });

    const pending = (res: ServerResponse | null | undefined): res is ServerResponse => !!res && !res.writableFinished;

    const settle = () => {

        if (draining && sockets.size === 0) {
            deadline?.clear();
            resolveDrained(report);
        }
    };

    server.on('connection', (socket: Socket) => {

        sockets.set(socket, null);
        socket.once('close', () => {

            if (draining && pending(sockets.get(socket))) {
                ++report.requestsCut;
            }

            sockets.delete(socket);
            if (draining && !report.forced) {
                ++report.socketsEnded;
            }

            settle();
        });
    });

    server.on('request', (req: IncomingMessage, res: ServerResponse) => {

        if (!keepAlive) {
            res.shouldKeepAlive = false;                // Node writes `Connection: close` and closes the socket after the response
        }

        sockets.set(req.socket, res);
    });

    const inFlight = () => {

        let count = 0;
        for (const res of sockets.values()) {
            count += pending(res) ? 1 : 0;
        }

        return count;
    };

    const endKeepAlive = () => {

        keepAlive = false;
        for (const res of sockets.values()) {
            if (pending(res) && !res.headersSent) {
                res.shouldKeepAlive = false;
            }
        }
    };

    return {
        inFlight,

        endKeepAlive,

        beginDrain(timeoutMs: number) {

            endKeepAlive();
            draining = true;
            report.inFlight = inFlight();
            report.sockets = sockets.size;

            deadline = Timers.atLeast(timeoutMs, () => {

                report.forced = true;
                report.socketsDestroyed = sockets.size;
                for (const socket of sockets.keys()) {
                    socket.destroy();
                }
            }, { ref: false });
            setImmediate(settle);
        },

        drained: () => drained
    };
};
