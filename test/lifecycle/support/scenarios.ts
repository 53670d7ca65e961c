import { setTimeout as sleep } from 'node:timers/promises';

import type { App, Exit } from './app.ts';
import * as Http from './http.ts';


// Scenarios shared by the lifecycle tests and the negative control: the same steps against the real
// shutdown and against a naive one.


export interface InFlightUpload {
    readonly signalledAt: number;
    readonly outcome: Http.Outcome;
    readonly idle: Http.IdleSocket;                 // Kept alive and left idle throughout
    readonly reused: Http.IdleSocket;               // Kept alive, used again during the delay
    readonly reusedDuringDelay: string | null;      // Response head of that request
    readonly exit: Exit;
}


// Two clients with idle keep-alive sockets, another one half-way through a POST /items body; SIGTERM;
// one idle socket is used again during the delay; the body is finished once the delay is over, so the
// response is written during the drain.
export const inFlightUpload = async function (app: App): Promise<InFlightUpload> {

    const idle = await Http.idleSocket(app.port);
    await idle.get('/health/live');
    const reused = await Http.idleSocket(app.port);
    await reused.get('/health/live');

    const upload = await Http.slowUpload(app.port, '/items', { name: 'sent across the signal', quantity: 3 });
    await sleep(150);                               // The server has the headers: the request is in flight

    const signalledAt = app.signal('SIGTERM');
    await app.waitForPhase('signal').catch(() => null);      // Delivered and handled: the request below is in the delay
    const reusedDuringDelay = await reused.get('/health/live').catch(() => null);
    await app.waitForPhase('delay').catch(() => null);

    upload.finish();
    const outcome = await upload.outcome;
    const exit = await app.exited;
    await idle.closed;
    await reused.closed;
    return { signalledAt, outcome, idle, reused, reusedDuringDelay, exit };
};
