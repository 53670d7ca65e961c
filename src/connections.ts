import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';


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

    const sockets = new Set<Socket>();
    const responses = new Set<ServerResponse>();
    const report: DrainReport = { inFlight: 0, sockets: 0, socketsEnded: 0, socketsDestroyed: 0, requestsCut: 0, forced: false };
    let draining = false;
    let keepAlive = true;
    let deadline: NodeJS.Timeout | undefined;
    let resolveDrained: (report: DrainReport) => void = () => {};
    const drained = new Promise<DrainReport>((resolve) => {

        resolveDrained = resolve;
    });

    const settle = () => {

        if (draining && sockets.size === 0) {
            clearTimeout(deadline);
            resolveDrained(report);
        }
    };

    server.on('connection', (socket: Socket) => {

        sockets.add(socket);
        socket.once('close', () => {

            sockets.delete(socket);
            if (draining && !report.forced) {
                ++report.socketsEnded;
            }

            settle();
        });
    });

    server.on('request', (_req: IncomingMessage, res: ServerResponse) => {

        if (!keepAlive) {
            res.shouldKeepAlive = false;                // Node writes `Connection: close` and closes the socket after the response
        }

        responses.add(res);
        res.once('close', () => {

            responses.delete(res);
            if (draining && !res.writableFinished) {
                ++report.requestsCut;
            }
        });
    });

    const endKeepAlive = () => {

        keepAlive = false;
        for (const res of responses) {
            if (!res.headersSent) {
                res.shouldKeepAlive = false;
            }
        }
    };

    return {
        inFlight: () => responses.size,

        endKeepAlive,

        beginDrain(timeoutMs: number) {

            endKeepAlive();
            draining = true;
            report.inFlight = responses.size;
            report.sockets = sockets.size;

            deadline = setTimeout(() => {

                report.forced = true;
                report.socketsDestroyed = sockets.size;
                for (const socket of sockets) {
                    socket.destroy();
                }
            }, timeoutMs);

            deadline.unref();
            setImmediate(settle);
        },

        drained: () => drained
    };
};
