import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Model, Probe } from './manifest.ts';


// One pod as the kubelet runs it: a real server process started with the container's command on
// the pod's own address, probed on the manifest's schedule, and stopped the way the kubelet stops
// containers (preStop, SIGTERM, SIGKILL when the grace period counted from preStop runs out).

export type Phase = 'starting' | 'ready' | 'unready' | 'terminating' | 'gone';


export interface PodEvent {
    readonly phase: Phase;
    readonly at: number;
}


export interface Exit {
    readonly code: number | null;
    readonly signal: NodeJS.Signals | null;
}


export interface Pod {
    readonly name: string;
    readonly ip: string;
    readonly port: number;
    readonly revision: number;
    readonly createdAt: number;
    readonly events: PodEvent[];
    readonly ready: boolean;
    readonly readySince: number | null;
    readonly terminating: boolean;
    readonly gone: boolean;
    readonly restarts: { reason: string; at: number }[];
    readonly sigkills: { at: number; reason: string }[];
    readonly exits: Exit[];
    terminate(): Promise<void>;
    destroy(): Promise<void>;
}


export interface PodOptions {
    readonly name: string;
    readonly ip: string;
    readonly revision: number;
    readonly model: Model;
    readonly argv: readonly string[];                   // The container's command, argv[0] the executable
    readonly env: Readonly<Record<string, string>>;
    readonly cwd: string;
    readonly logFile: string;
    readonly onChange: (pod: Pod) => void;
}


const internals = {
    restartDelayMs: 1000,                   // Stands for CrashLoopBackOff's first step, shortened
    preStopOverrunMs: 2000,                 // The one-off extension the kubelet grants a preStop that outlives the grace period

    // An HTTP probe as the kubelet makes it: a new connection, `Connection: close`, 200-399 passes.
    check(ip: string, probe: Probe): Promise<boolean> {

        return new Promise((resolve) => {

            const req = http.get({ host: ip, port: probe.port, path: probe.path, agent: false, headers: { 'user-agent': 'kube-probe/1.34', connection: 'close' } }, (res) => {

                res.resume();
                res.once('end', () => resolve(res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 400));
                res.once('error', () => resolve(false));
            });

            req.setTimeout(probe.timeoutSeconds * 1000, () => req.destroy(new Error('probe timeout')));
            req.once('error', () => resolve(false));
        });
    }
};


export const start = function (options: PodOptions): Pod {

    const { model } = options;
    const { startup, liveness, readiness } = model.probes;
    const now = () => performance.now();

    const state = {
        child: null as ChildProcess | null,
        exited: Promise.resolve() as Promise<void>,
        generation: 0,
        started: false,
        ready: false,
        readySince: null as number | null,
        terminating: false,
        gone: false,
        phase: null as Phase | null
    };

    const pod: Pod = {
        name: options.name,
        ip: options.ip,
        port: model.port,
        revision: options.revision,
        createdAt: now(),
        events: [],
        get ready() {
            return state.ready;
        },
        get readySince() {
            return state.readySince;
        },
        get terminating() {
            return state.terminating;
        },
        get gone() {
            return state.gone;
        },
        restarts: [],
        sigkills: [],
        exits: [],
        terminate: () => terminate(),
        destroy: () => destroy()
    };

    const enter = (phase: Phase) => {

        if (state.phase !== phase) {
            state.phase = phase;
            pod.events.push({ phase, at: now() });
        }

        options.onChange(pod);
    };

    const setReady = (ready: boolean) => {

        if (state.ready === ready) {
            return;
        }

        state.ready = ready;
        state.readySince = ready ? now() : null;
        enter(state.terminating ? 'terminating' : ready ? 'ready' : 'unready');
    };

    const run = () => {

        const generation = ++state.generation;
        state.started = !startup;
        const log = openSync(options.logFile, 'a');
        const [command, ...args] = options.argv;
        const child = spawn(command!, args, { cwd: options.cwd, env: { ...options.env }, stdio: ['ignore', log, log] });
        closeSync(log);
        state.child = child;
        state.exited = new Promise((resolve) => {

            child.once('exit', (code, signal) => {

                pod.exits.push({ code, signal });
                resolve();
                if (generation === state.generation && !state.terminating && !state.gone) {
                    void restart('exited');             // Died by itself: restartPolicy Always
                }
            });
        });

        enter('starting');
        if (!startup && !readiness) {
            setReady(true);
        }

        for (const [kind, probe] of [['startup', startup], ['liveness', liveness], ['readiness', readiness]] as const) {
            if (probe) {
                worker(kind, probe, generation);
            }
        }
    };

    // One worker per probe, ticking on its period from container start, as the kubelet's do; the
    // startup probe gates the other two, and only readiness keeps running during termination.
    const worker = (kind: 'startup' | 'liveness' | 'readiness', probe: Probe, generation: number) => {

        let successes = 0;
        let failures = 0;

        const tick = async () => {

            if (generation !== state.generation || state.gone) {
                return;
            }

            const startedAt = now();
            const active = kind === 'startup' ? !state.started : state.started && (kind === 'readiness' || !state.terminating);
            if (active) {
                const ok = await internals.check(options.ip, probe);
                if (generation !== state.generation || state.gone) {
                    return;
                }

                successes = ok ? successes + 1 : 0;
                failures = ok ? 0 : failures + 1;
                if (kind === 'startup') {
                    if (ok) {
                        state.started = true;
                        if (!readiness) {
                            setReady(true);
                        }
                    }
                    else if (failures >= probe.failureThreshold) {
                        void restart('startup probe');
                        return;
                    }
                }
                else if (kind === 'liveness') {
                    if (failures >= probe.failureThreshold) {
                        void restart('liveness probe');
                        return;
                    }
                }
                else if (successes >= probe.successThreshold) {
                    setReady(true);
                }
                else if (failures >= probe.failureThreshold) {
                    setReady(false);
                }
            }

            setTimeout(tick, Math.max(startedAt + probe.periodSeconds * 1000 - now(), 0));
        };

        setTimeout(tick, probe.initialDelaySeconds * 1000);
    };

    // preStop, then SIGTERM, then SIGKILL at the end of the grace period counted from preStop's start.
    const stop = async (reason: string) => {

        const child = state.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) {
            return;
        }

        let exited = false;
        const done = state.exited.then(() => {

            exited = true;
        });

        const deadline = now() + model.terminationGracePeriodSeconds * 1000;
        if (model.preStopSleepSeconds > 0) {
            await Promise.race([sleep(Math.min(model.preStopSleepSeconds * 1000, deadline - now())), done]);
        }

        if (exited) {
            return;
        }

        const killAt = Math.max(deadline, model.preStopSleepSeconds * 1000 > model.terminationGracePeriodSeconds * 1000 ? now() + internals.preStopOverrunMs : 0);
        child.kill('SIGTERM');
        const timer = setTimeout(() => {

            if (!exited) {
                pod.sigkills.push({ at: now(), reason });
                child.kill('SIGKILL');
            }
        }, Math.max(killAt - now(), 0));

        await done;
        clearTimeout(timer);
    };

    const restart = async (reason: string) => {

        pod.restarts.push({ reason, at: now() });
        ++state.generation;                     // Stops the probe workers of the old container
        setReady(false);
        await stop(reason);
        await sleep(internals.restartDelayMs);
        if (!state.terminating && !state.gone) {
            run();
        }
    };

    const terminate = async () => {

        if (state.terminating || state.gone) {
            return;
        }

        state.terminating = true;
        enter('terminating');
        await stop('termination');
        state.gone = true;
        ++state.generation;
        state.ready = false;
        enter('gone');
    };

    // The end of the experiment, not a termination: nothing is recorded.
    const destroy = async () => {

        state.gone = true;
        ++state.generation;
        state.ready = false;
        state.child?.kill('SIGKILL');
        await state.exited;
        enter('gone');
    };

    run();
    return pod;
};
