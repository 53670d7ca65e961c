import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';


// Tracks the listener's sockets and in-flight requests so the drain can be bounded and reported.
// terminus (through stoppable) stops the listener and ends each socket once it is idle; this module
// adds what it lacks: `Connection: close` on every response still to be written, so keep-alive
// clients and proxies stop reusing the socket, and the hard deadline, with counts of what it cut.

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
    beginDrain(timeoutMs: number): void;
    drained(): Promise<DrainReport>;
}


export const track = function (server: Server): Tracker {

    const sockets = new Set<Socket>();
    const responses = new Set<ServerResponse>();
    const report: DrainReport = { inFlight: 0, sockets: 0, socketsEnded: 0, socketsDestroyed: 0, requestsCut: 0, forced: false };
    let draining = false;
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

        if (draining) {
            res.shouldKeepAlive = false;
        }

        responses.add(res);
        res.once('close', () => {

            responses.delete(res);
            if (draining && !res.writableFinished) {
                ++report.requestsCut;
            }
        });
    });

    return {
        inFlight: () => responses.size,

        beginDrain(timeoutMs: number) {

            draining = true;
            report.inFlight = responses.size;
            report.sockets = sockets.size;

            // Node writes `Connection: close` and closes the socket after the response.
            for (const res of responses) {
                if (!res.headersSent) {
                    res.shouldKeepAlive = false;
                }
            }

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
