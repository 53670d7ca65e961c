import { performance } from 'node:perf_hooks';

import type { Pod } from './kubelet.ts';


// The EndpointSlice controller and the views its consumers hold of it. The controller is exact and
// immediate: a pod is ready when its readiness probe passes, and leaves the ready set the instant it
// is deleted. What lags is each consumer's view (kube-proxy's rules, the ingress's upstream list),
// which learns every change after its own propagation delay, in order.

export interface Endpoint {
    readonly name: string;
    readonly ip: string;
    readonly port: number;
    readonly ready: boolean;                // Serving and not terminating: eligible for new traffic
    readonly serving: boolean;              // Readiness passes, terminating or not
    readonly terminating: boolean;
}


export interface View {
    current(): readonly Endpoint[];
    pickRandom(): Endpoint | null;
    pickRoundRobin(): Endpoint | null;
    close(): void;
}


export interface Controller {
    update(pods: Iterable<Pod>): void;
    view(options: { delayMs: number; jitterMs: number; random?: () => number }): View;
    readyCount(): number;
    close(): void;
}


const internals = {

    same(a: readonly Endpoint[], b: readonly Endpoint[]): boolean {

        return a.length === b.length && a.every((endpoint, i) => {

            const other = b[i]!;
            return endpoint.name === other.name && endpoint.ready === other.ready && endpoint.serving === other.serving && endpoint.terminating === other.terminating;
        });
    },

    // Ready endpoints take new traffic; when none is ready, serving terminating ones do, as
    // kube-proxy falls back to since Kubernetes 1.26 rather than drop the traffic.
    eligible(endpoints: readonly Endpoint[]): readonly Endpoint[] {

        const ready = endpoints.filter((endpoint) => endpoint.ready);
        return ready.length ? ready : endpoints.filter((endpoint) => endpoint.serving && endpoint.terminating);
    }
};


export const controller = function (): Controller {

    let endpoints: readonly Endpoint[] = [];
    const subscribers = new Set<(endpoints: readonly Endpoint[]) => void>();

    return {
        update(pods) {

            const next: Endpoint[] = [];
            for (const pod of pods) {
                if (!pod.gone) {
                    next.push({ name: pod.name, ip: pod.ip, port: pod.port, ready: pod.ready && !pod.terminating, serving: pod.ready, terminating: pod.terminating });
                }
            }

            next.sort((a, b) => (a.name < b.name ? -1 : 1));
            if (!internals.same(endpoints, next)) {
                endpoints = next;
                for (const subscriber of subscribers) {
                    subscriber(endpoints);
                }
            }
        },

        view(options) {

            const random = options.random ?? Math.random;
            let current: readonly Endpoint[] = endpoints;
            let eligible = internals.eligible(current);
            let appliedAt = 0;
            let turn = 0;
            const timers = new Set<NodeJS.Timeout>();

            // Each change lands after delay ± jitter, never before one published earlier.
            const subscriber = (snapshot: readonly Endpoint[]) => {

                const lag = options.delayMs + (random() * 2 - 1) * options.jitterMs;
                appliedAt = Math.max(appliedAt, performance.now() + Math.max(lag, 0));
                const timer = setTimeout(() => {

                    timers.delete(timer);
                    current = snapshot;
                    eligible = internals.eligible(current);
                }, appliedAt - performance.now());

                timers.add(timer);
            };

            subscribers.add(subscriber);
            return {
                current: () => current,
                pickRandom: () => (eligible.length ? eligible[Math.floor(random() * eligible.length)]! : null),
                pickRoundRobin: () => (eligible.length ? eligible[turn++ % eligible.length]! : null),
                close() {

                    subscribers.delete(subscriber);
                    for (const timer of timers) {
                        clearTimeout(timer);
                    }
                }
            };
        },

        readyCount: () => endpoints.filter((endpoint) => endpoint.ready).length,

        close() {

            subscribers.clear();
        }
    };
};
