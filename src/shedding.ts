import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';

import type { Server } from '@hapi/hapi';

import type { Config } from './config.ts';
import type { Logger } from './logger.ts';


// Load shedding in front of hapi's request dispatch, decided by hapi's own load measurement (the same
// limits, sampled by hapi), by event-loop utilization, by the database pool's queue and by the
// connections waiting to be accepted.
//
// hapi checks its limits only after it has built the request object, and its 503 then runs the
// extensions, the response event and the request log: 204 µs of CPU per shed request, ~45 % of a
// served GET; answered here, 70 µs (autocannon, 32 connections, every request shed). At twice the
// capacity, with good clients retrying after Retry-After, hapi's shedding alone left the accepted
// requests waiting seconds. Three more measurements shaped this:
// - the queue forms where hapi does not look: requests waited in the pool for a connection (450 at
//   once, up to the acquire timeout) while the event-loop delay stayed under 30 ms;
// - node accepts one connection per event-loop iteration (libuv/libuv#3696; strace here: 434 accepts
//   in 446 iterations): a saturated loop left new connections, and the kubelet's probes, in a full
//   listen queue for seconds, and the pods left the Service;
// - with more sockets accepting (src/listener.ts), requests still waited there unseen: at the onset of
//   the 2x overload, clients opened hundreds of connections at once (up to 161 waited), and the
//   requests on them were served 0.3-0.6 s late, when the pool's queue happened to be short.
// So the limits here keep the loop unsaturated (utilization), the pool queue and the listen queues
// (read from the kernel) short, and the answer is written before hapi does any work. They shed only
// pressure that lasts (internals.sustainMs): a stall looks the same for a moment; the two queues at
// once past a surge no stall makes. Health checks never reach the gate: terminus answers them first.

type Reason = 'event loop' | 'event loop utilization' | 'heap' | 'rss' | 'database pool' | 'accept queue';


export interface Options {
    readonly limits: Config['load'];
    readonly logger: Logger;
    readonly waitingForDatabase: () => number;      // Requests waiting for a pooled connection
    readonly waitingToBeAccepted: () => number | null;      // Connections in the listen queues (null: unknown)
}


const internals = {
    // Utilization is judged over a window, not hapi's single 100 ms sample: one busy sample (a new
    // process compiling its first requests, a neighbour taking the CPU) shed the first requests a new
    // pod was sent. A window of 500 ms, moved every step.
    utilizationWindowMs: 500,
    stepMs: 50,

    // Overload is pressure that lasts. A stall (a neighbour holding the CPU, a collection, a new process
    // compiling its first requests) also delays the loop, keeps it busy and queues requests for the
    // database, and hapi's sample reports it after it ended: its backlog was shed just as the process
    // could serve it in milliseconds. In the rollout proof, at 100 req/s on pods that serve ~500,
    // warm pods shed 10-17 requests after a 300 ms stall, new ones 2-8. So shedding starts once some
    // pressure has been seen for this long without a break, and stops once none has been seen for as long.
    sustainMs: 500,

    // A queue for the pool this many times its limit is no stall's backlog (at the rollout proof's 50
    // requests per second a pod, a 300 ms stall backs up 15, against a limit of 10): it sheds at once.
    // Held for sustainMs like the rest, the 2x overload's queue grew for half a second before the first
    // 503, and the requests accepted meanwhile set its p99.
    surgeFactor: 4,

    // An episode of shedding ends once nothing has been shed for this long: one line when it starts
    // (what pressed, at that moment) and one when it ends (how many, for how long), not one a request.
    episodeGapMs: 1000,

    body(reason: string): Buffer {

        // hapi's error shape and heavy's messages, so clients see one 503 whichever check sent it
        return Buffer.from(JSON.stringify({ statusCode: 503, error: 'Service Unavailable', message: `Server under heavy load (${reason})` }));
    },

    // Event-loop utilization over the last window, from node's own counters, sampled at every step: from
    // the newest mark at least a window old (a loop blocked for longer widens the window to the block);
    // 0 until a whole window has passed since the first sample.
    utilization(): { sample: () => void; value: () => number } {

        const marks: { at: number; elu: ReturnType<typeof performance.eventLoopUtilization> }[] = [];
        let current = 0;
        const sample = () => {

            marks.push({ at: performance.now(), elu: performance.eventLoopUtilization() });
            const now = marks.at(-1)!;
            while (marks.length > 2 && marks[1]!.at <= now.at - internals.utilizationWindowMs) {
                marks.shift();
            }

            const from = marks[0]!;
            current = now.at - from.at >= internals.utilizationWindowMs ? performance.eventLoopUtilization(now.elu, from.elu).utilization : 0;
        };

        return { sample, value: () => current };
    },

    // Whether the process is overloaded. Pressure is counted per step (stepMs): a step is pressed
    // when any observation in it (the step's own, every request's) saw pressure, so a queue that empties
    // for a moment between two requests does not break a run (when every observation had to see it, the
    // 2x overload was never shed: 737 connections refused, accepted p99 4.8 s); a whole step without any
    // does. The state changes once the current run of pressed (or clear) steps has lasted sustainMs. A
    // pressed run is timed from its first pressure seen: a loop blocked for a while observes nothing, so
    // a stall does not make a run by itself. A surge (a queue no stall makes) is overload already: the
    // state changes at once, and ends as any other, after a clear run. While it waited out the run
    // instead, the requests the 2x overload's pods accepted once the surge was over, in its first half
    // second, waited behind a pool queue under 4 x its limit: 94, 34, 17 and 76 over 250 ms there in
    // four full runs, against 0, 14, 1 and 19 now.
    sustained(): { observe: (pressing: boolean) => boolean; surged: () => void; step: () => void } {

        let overloaded = false;
        let stepStart = performance.now();
        let pressedAt: number | null = null;            // First pressure seen in the current step
        let run = { pressed: false, since: stepStart };

        const observe = (pressing: boolean) => {

            if (pressing && pressedAt === null) {
                pressedAt = performance.now();
            }

            return overloaded;
        };

        const surged = () => {

            observe(true);
            overloaded = true;
        };

        const step = () => {

            const now = performance.now();
            const pressed = pressedAt !== null;
            if (pressed !== run.pressed) {
                run = { pressed, since: pressedAt ?? stepStart };
            }

            if (now - run.since >= internals.sustainMs) {
                overloaded = pressed;
            }

            pressedAt = null;
            stepStart = now;
        };

        return { observe, surged, step };
    },

    // The connections waiting in the listen queues, read from the kernel at the steps in which some
    // connection was accepted (the read walks the kernel's connections table when it holds few: up to ~0.8 ms,
    // src/listener.ts), so a process whose clients keep their connections open pays nothing. A queue
    // at the limit sheds at once, as a surge of the pool's queue does: it holds requests that have
    // waited already, and a stall makes a short one, because clients open connections only when all
    // theirs are busy (a 300 ms stall at the rollout proof's 50 requests a second holds at most 15,
    // one a request). Its requests are read as the queue is accepted and their 503s are cheap, so it
    // drains quickly.
    acceptQueue(server: Server, limit: number, waiting: () => number | null, logger: Logger): { sample: () => void; full: () => boolean; last: () => number } | null {

        if (!limit) {
            return null;
        }

        let accepted = 0;
        let queued = 0;
        let unknown = false;
        server.listener.on('connection', () => ++accepted);
        const sample = () => {

            const read = accepted ? waiting() : 0;
            accepted = 0;
            queued = read ?? 0;
            if (read === null && !unknown) {
                unknown = true;
                logger.warn('the accept queue limit is off: the listen queues cannot be read here (Linux only)');
            }
        };

        return { sample, full: () => queued >= limit, last: () => queued };
    },

    // Shedding as the operator sees it: one warning when a pod starts to shed, with the measurements that
    // made it, and one when it stops, with what was shed by reason (a warning too, so a log kept at warn
    // shows where each episode ended). 503s answered here never reach hapi and its request log.
    episodes(logger: Logger, state: () => Record<string, number>): { shed: (reason: Reason) => void; step: () => void } {

        let episode: { since: number; last: number; shed: Partial<Record<Reason, number>> } | null = null;

        const shed = (reason: Reason) => {

            const now = performance.now();
            if (!episode) {
                episode = { since: now, last: now, shed: {} };
                logger.warn({ reason, ...state() }, 'load shedding started');
            }

            episode.last = now;
            episode.shed[reason] = (episode.shed[reason] ?? 0) + 1;
        };

        const step = () => {

            const now = performance.now();
            if (episode && now - episode.last >= internals.episodeGapMs) {
                logger.warn({ shed: episode.shed, durationMs: Math.round(episode.last - episode.since) }, 'load shedding stopped');
                episode = null;
            }
        };

        return { shed, step };
    }
};


export const gate = function (server: Server, options: Options): void {

    const { limits, waitingForDatabase, waitingToBeAccepted } = options;
    const bodies = new Map<Reason, Buffer>();                  // Each reason's body, built once

    // Pressure: what an overload looks like at this instant, and also a stall.
    const utilization = limits.maxEventLoopUtilization ? internals.utilization() : null;
    const acceptQueue = internals.acceptQueue(server, limits.maxAcceptQueue, waitingToBeAccepted, options.logger);
    const pressure = (): Reason | null => {

        if (limits.maxEventLoopDelayMs && server.load.eventLoopDelay > limits.maxEventLoopDelayMs) {
            return 'event loop';
        }

        // Utilization alone also counts a process warming up or waiting for a CPU a neighbour holds: the
        // rollout proof saw new pods shed 9 requests at 100 req/s. Only with requests queued for the
        // database does a busy loop mean more work than the process gets through.
        const waiting = waitingForDatabase();
        if (utilization && utilization.value() > limits.maxEventLoopUtilization && waiting > 0) {
            return 'event loop utilization';
        }

        if (limits.maxDatabaseWaiting && waiting >= limits.maxDatabaseWaiting) {
            return 'database pool';
        }

        return null;
    };

    const episodes = internals.episodes(options.logger, () => ({
        databaseWaiting: waitingForDatabase(),
        acceptQueue: acceptQueue?.last() ?? 0,
        eventLoopDelayMs: Math.round(server.load.eventLoopDelay),
        eventLoopUtilization: Math.round((utilization?.value() ?? 0) * 100) / 100
    }));

    // Every step samples utilization and observes pressure, so a run is seen when no request comes, and
    // ends a shedding episode.
    const overload = internals.sustained();
    if (limits.maxEventLoopDelayMs || utilization || limits.maxDatabaseWaiting || limits.maxHeapUsedBytes || limits.maxRssBytes || acceptQueue) {
        let timer: NodeJS.Timeout | undefined;
        server.events.on('start', () => {

            utilization?.sample();
            timer = setInterval(() => {

                utilization?.sample();
                acceptQueue?.sample();
                overload.observe(pressure() !== null);
                overload.step();
                episodes.step();
            }, internals.stepMs).unref();
        });

        server.events.on('stop', () => clearInterval(timer));
    }

    // Queues no stall makes: requests that waited already, shed at once and counted as pressure.
    const surge = (): Reason | null => {

        if (limits.maxDatabaseWaiting && waitingForDatabase() >= internals.surgeFactor * limits.maxDatabaseWaiting) {
            return 'database pool';
        }

        return acceptQueue?.full() ? 'accept queue' : null;
    };

    // Memory limits are not a stall: past them every request is shed at once, as hapi does.
    const shed = (): Reason | null => {

        const load = server.load;
        if (limits.maxHeapUsedBytes && load.heapUsed > limits.maxHeapUsedBytes) {
            return 'heap';
        }

        if (limits.maxRssBytes && load.rss > limits.maxRssBytes) {
            return 'rss';
        }

        const surged = surge();
        if (surged) {
            overload.surged();
            return surged;
        }

        const reason = pressure();
        return overload.observe(reason !== null) ? reason : null;
    };

    const listener = server.listener;
    const [dispatch] = listener.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
    listener.removeListener('request', dispatch!);
    listener.on('request', (req: IncomingMessage, res: ServerResponse) => {

        const reason = shed();
        if (!reason) {
            dispatch!(req, res);
            return;
        }

        episodes.shed(reason);

        let body = bodies.get(reason);
        if (!body) {
            body = internals.body(reason);
            bodies.set(reason, body);
        }
        res.writeHead(503, {
            'content-type': 'application/json; charset=utf-8',
            'cache-control': 'no-cache',
            'retry-after': '1',
            'content-length': body.length
        });
        res.end(body);
        req.resume();                                   // A body not read would hold the keep-alive socket
    });
};
