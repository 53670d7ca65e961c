import { performance } from 'node:perf_hooks';

import * as Cluster from '../support/cluster.ts';


// Each pod's life as the API server reports it, from a watch on the namespace's pods: created,
// Ready, not Ready, terminating (deletionTimestamp set), gone (deleted). How each container ended
// comes from the kubelet's own status: exit code 137 (or signal 9) is a SIGKILL, which is what the
// kubelet sends when the grace period runs out.

export type Phase = 'starting' | 'ready' | 'unready' | 'terminating' | 'gone';


export interface PodEvent {
    readonly phase: Phase;
    readonly at: number;
}


export interface Exit {
    readonly code: number;
    readonly signal: number | null;
    readonly reason: string;
}


export interface Pod {
    readonly name: string;
    readonly revision: number;                      // 1 for the first pod template seen, then 2, ...
    readonly createdAt: number;
    readonly events: PodEvent[];
    readonly sigkills: { at: number; reason: string }[];
    readonly exits: Exit[];
    readonly restarts: number;
}


export interface Tracker {
    readonly pods: Pod[];
    close(): void;
}


interface ContainerState {
    terminated?: { exitCode: number; signal?: number; reason?: string; finishedAt?: string; containerID?: string };
}


export interface PodObject {
    metadata: { name: string; uid: string; labels?: Record<string, string>; deletionTimestamp?: string };
    status?: {
        conditions?: { type: string; status: string }[];
        containerStatuses?: { name: string; restartCount: number; state?: ContainerState; lastState?: ContainerState }[];
    };
}


interface Tracked {
    pod: Pod & { events: PodEvent[]; sigkills: { at: number; reason: string }[]; exits: Exit[]; restarts: number };
    seenExits: Set<string>;
}


const internals = {
    phase(object: PodObject): Phase {

        if (object.metadata.deletionTimestamp) {
            return 'terminating';
        }

        const ready = object.status?.conditions?.find((condition) => condition.type === 'Ready')?.status === 'True';
        return ready ? 'ready' : 'starting';
    }
};


export const track = function (cluster: Cluster.Cluster, namespace: string, selector: string): Tracker {

    const byUid = new Map<string, Tracked>();
    const revisions = new Map<string, number>();
    const pods: Pod[] = [];
    const path = `/api/v1/namespaces/${namespace}/pods?labelSelector=${encodeURIComponent(selector)}`;
    const watch = Cluster.watch<PodObject>(cluster, path, ({ type, object }) => {

        const now = performance.now();
        let tracked = byUid.get(object.metadata.uid);
        if (!tracked) {
            const hash = object.metadata.labels?.['pod-template-hash'] ?? '';
            if (!revisions.has(hash)) {
                revisions.set(hash, revisions.size + 1);
            }

            tracked = {
                pod: { name: object.metadata.name, revision: revisions.get(hash)!, createdAt: now, events: [], sigkills: [], exits: [], restarts: 0 },
                seenExits: new Set()
            };
            byUid.set(object.metadata.uid, tracked);
            pods.push(tracked.pod);
        }

        const { pod } = tracked;
        for (const status of object.status?.containerStatuses ?? []) {
            pod.restarts = Math.max(pod.restarts, status.restartCount);
            for (const terminated of [status.lastState?.terminated, status.state?.terminated]) {
                if (!terminated) {
                    continue;
                }

                const key = `${status.name}/${terminated.containerID ?? ''}/${terminated.finishedAt ?? ''}`;
                if (tracked.seenExits.has(key)) {
                    continue;
                }

                tracked.seenExits.add(key);
                const exit = { code: terminated.exitCode, signal: terminated.signal ?? null, reason: terminated.reason ?? '' };
                pod.exits.push(exit);
                if (exit.code === 137 || exit.signal === 9) {
                    pod.sigkills.push({ at: now, reason: `${status.name} ${exit.reason} exit ${exit.code}` });
                }
            }
        }

        const last = pod.events.at(-1)?.phase;
        let phase: Phase = type === 'DELETED' ? 'gone' : internals.phase(object);
        if (phase === 'starting' && (last === 'ready' || last === 'unready')) {
            phase = 'unready';
        }

        if (phase !== last && last !== 'gone') {
            pod.events.push({ phase, at: now });
        }
    });

    return { pods, close: () => watch.close() };
};
