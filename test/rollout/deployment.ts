import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Pod } from './kubelet.ts';
import type { Model } from './manifest.ts';


// The Deployment controller's RollingUpdate: scale the new ReplicaSet up within maxSurge, scale the
// old ones down only as far as maxUnavailable allows, counting a pod as available once it has been
// ready for minReadySeconds. Terminating pods count for neither, as in Kubernetes: a replacement
// starts while the pod it replaces is still draining.

export interface PodState {
    readonly name: string;
    readonly ready: boolean;
    readonly available: boolean;
    readonly readySince: number | null;
}


export interface Plan {
    readonly create: number;
    readonly remove: readonly string[];
}


export interface Rollout {
    readonly revision: number;
    readonly startedAt: number;
    readonly completedAt: number;           // All new pods available, no old pod left (what `kubectl rollout status` waits for)
    readonly settled: Promise<number>;      // When the last pod it replaced is gone
}


export interface DeploymentController {
    readonly pods: readonly Pod[];
    scaleUp(): Promise<void>;
    rollout(): Promise<Rollout>;
    settled(): Promise<void>;
    destroy(): Promise<void>;
}


const internals = {
    tickMs: 100,
    rolloutTimeoutMs: 300_000,

    // Old pods go in the order a ReplicaSet picks victims: not ready first, then the most recently ready.
    victims(pods: readonly PodState[], count: number): string[] {

        const rank = (pod: PodState) => (pod.ready ? 1 : 0);
        return [...pods]
            .sort((a, b) => rank(a) - rank(b) || (b.readySince ?? 0) - (a.readySince ?? 0))
            .slice(0, Math.max(count, 0))
            .map((pod) => pod.name);
    }
};


// One reconcile step, from the pods that are not terminating. Follows the Deployment controller's
// reconcileNewReplicaSet and reconcileOldReplicaSets (cleanupUnhealthyReplicas, then
// scaleDownOldReplicaSetsForRollingUpdate), at the granularity of pods.

export const plan = function (options: { replicas: number; maxSurge: number; maxUnavailable: number; current: readonly PodState[]; old: readonly PodState[] }): Plan {

    const { replicas, maxSurge, maxUnavailable, current, old } = options;
    const total = current.length + old.length;

    const create = current.length < replicas ? Math.max(Math.min(replicas - current.length, replicas + maxSurge - total), 0) : 0;

    const minAvailable = replicas - maxUnavailable;
    const currentUnavailable = current.filter((pod) => !pod.available).length;
    const maxScaledDown = total - minAvailable - currentUnavailable;
    if (maxScaledDown <= 0 || !old.length) {
        return { create, remove: [] };
    }

    const unhealthy = old.filter((pod) => !pod.available);
    const cleaned = internals.victims(unhealthy, Math.min(maxScaledDown, unhealthy.length));

    const available = [...current, ...old].filter((pod) => pod.available).length;
    const healthy = old.filter((pod) => pod.available);
    const scaledDown = internals.victims(healthy, Math.min(available - minAvailable, healthy.length));

    return { create, remove: [...cleaned, ...scaledDown] };
};


export const create = function (options: { model: Model; createPod: (revision: number) => Pod }): DeploymentController {

    const { model } = options;
    const pods: Pod[] = [];
    let revision = 0;

    const state = (pod: Pod): PodState => ({
        name: pod.name,
        ready: pod.ready,
        readySince: pod.readySince,
        available: pod.ready && pod.readySince !== null && performance.now() - pod.readySince >= model.minReadySeconds * 1000
    });

    const live = () => pods.filter((pod) => !pod.terminating && !pod.gone);

    const reconcile = () => {

        const current = live().filter((pod) => pod.revision === revision);
        const old = live().filter((pod) => pod.revision !== revision);
        const step = plan({ replicas: model.replicas, maxSurge: model.maxSurge, maxUnavailable: model.maxUnavailable, current: current.map(state), old: old.map(state) });

        for (let i = 0; i < step.create; ++i) {
            pods.push(options.createPod(revision));
        }

        for (const name of step.remove) {
            void pods.find((pod) => pod.name === name)!.terminate();
        }

        const complete = current.length === model.replicas && old.length === 0 && current.every((pod) => state(pod).available);
        return complete;
    };

    const until = async (done: () => boolean, what: string) => {

        const deadline = performance.now() + internals.rolloutTimeoutMs;
        while (!done()) {
            if (performance.now() > deadline) {
                throw new Error(`${what} did not finish within ${internals.rolloutTimeoutMs} ms`);
            }

            await sleep(internals.tickMs);
        }
    };

    const settledNow = () => pods.every((pod) => pod.gone || (!pod.terminating && pod.revision === revision));

    return {
        pods,

        async scaleUp() {

            await until(reconcile, 'scale up');
        },

        async rollout() {

            const startedAt = performance.now();
            ++revision;
            await until(reconcile, `rollout ${revision}`);
            const replaced = pods.filter((pod) => pod.revision !== revision && !pod.gone);
            const settled = until(() => replaced.every((pod) => pod.gone), `termination of the pods replaced by revision ${revision}`).then(() => performance.now());
            settled.catch(() => {});
            return { revision, startedAt, completedAt: performance.now(), settled };
        },

        settled: () => until(settledNow, 'termination'),

        async destroy() {

            await Promise.all(pods.map((pod) => pod.destroy()));
        }
    };
};
