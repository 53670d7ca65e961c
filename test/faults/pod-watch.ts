import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import * as Processes from '../../bench/processes.ts';
import type * as Cluster from '../support/cluster.ts';
import * as Host from './host.ts';


// What each pod did during a long scenario, second by second, to tell a pod that shed because it was
// sent more than its share from one that shed because it was not given the CPU: the CPU its process
// used, its resident memory, its shedding episodes (from its log), and how busy the whole node was and
// how much of it PostgreSQL and the load generator (this process) took. The log is followed from the
// API server (`kubectl logs -f`) from the moment the container runs, since the kubelet deletes a pod's
// log with the pod. Bounded: one sample a second until stop().

export interface PodObject {
    metadata: { name: string; uid: string; deletionTimestamp?: string };
    status?: { podIP?: string; conditions?: { type: string; status: string }[]; containerStatuses?: { containerID?: string; state?: { running?: unknown } }[] };
}


export interface PodTimeline {
    readonly name: string;
    readonly ip: string | null;                                 // To match a capture on the pods' bridge to a pod
    readonly runningAtS: number;                                // First seen running
    readonly readyAtS: number | null;
    readonly deletingAtS: number | null;
    readonly cpuCores: [number, number][];                      // [second, cores used over that second]
    readonly rssMb: [number, number][];                         // [second, resident memory]
    readonly shedding: { atS: number; line: Record<string, unknown> }[];    // 'load shedding started' / 'stopped', to 0.1 s
}


export interface Timeline {
    readonly machineBusy: [number, number][];                   // [second, share of all CPUs busy]
    readonly postgresCores: [number, number][];                 // [second, cores all of PostgreSQL's processes used]
    readonly loadGeneratorCores: [number, number][];            // [second, cores this process (the clients) used]
    readonly pods: PodTimeline[];
}


interface Followed {
    name: string;
    ip: string | null;
    runningAt: number;
    readyAt: number | null;
    deletingAt: number | null;
    pid: number | null;
    cpuSeconds: (() => number) | null;
    rss: [number, number][];
    lastCpu: { at: number; seconds: number } | null;
    cpu: [number, number][];
    kubectl: ChildProcess;
    out: WriteStream;
    file: string;
}


const internals = {
    // CPU counters read together once a second: the node's, PostgreSQL's and this process's.
    cpu: async (): Promise<{ at: number; busy: number; total: number; postgres: number; self: number }> => {

        const [cpu] = (await readFile('/proc/stat', 'utf8')).split('\n');
        const values = cpu!.split(/\s+/).slice(1).map(Number);
        const total = values.reduce((sum, value) => sum + value, 0);
        const self = process.cpuUsage();
        return { at: Date.now(), busy: total - values[3]! - values[4]!, total, postgres: await Processes.commandCpuSeconds('postgres'), self: (self.user + self.system) / 1e6 };
    },

    async summarise(followed: Followed, originMs: number): Promise<PodTimeline> {

        const second = (ms: number) => Math.floor((ms - originMs) / 1000);
        const shedding: PodTimeline['shedding'] = [];
        const lines = (await readFile(followed.file, 'utf8').catch(() => '')).split('\n').filter((text) => text.includes('"msg":"load shedding') && text.endsWith('}'));
        for (const line of lines.map((text) => JSON.parse(text) as Record<string, unknown> & { time: string })) {
            const { time, level: _level, pid: _pid, hostname: _hostname, ...rest } = line;             // eslint-disable-line @typescript-eslint/no-unused-vars
            shedding.push({ atS: Math.round((Date.parse(time) - originMs) / 100) / 10, line: rest });
        }

        return {
            name: followed.name,
            ip: followed.ip,
            runningAtS: second(followed.runningAt),
            readyAtS: followed.readyAt === null ? null : second(followed.readyAt),
            deletingAtS: followed.deletingAt === null ? null : second(followed.deletingAt),
            cpuCores: followed.cpu.map(([at, cores]) => [second(at), cores]),
            rssMb: followed.rss.map(([at, mb]) => [second(at), mb]),
            shedding
        };
    }
};


/** Watches the pods `list` returns until stop(); `originMs` (epoch) is second 0 of the timeline. */
export const watch = function (options: { cluster: Cluster.Cluster; namespace: string; list: () => Promise<PodObject[]>; dir: string }): { stop: (originMs: number) => Promise<Timeline> } {

    const followed = new Map<string, Followed>();
    const machineBusy: [number, number][] = [];
    const postgresCores: [number, number][] = [];
    const loadGeneratorCores: [number, number][] = [];
    let stopping = false;

    const follow = async (pod: PodObject) => {

        await mkdir(options.dir, { recursive: true });
        const file = join(options.dir, `${pod.metadata.name}.log`);
        const out = createWriteStream(file);
        const kubectl = spawn(join(options.cluster.bin, 'kubectl'), ['--kubeconfig', options.cluster.kubeconfig, 'logs', '-f', '-n', options.namespace, pod.metadata.name], { stdio: ['ignore', 'pipe', 'ignore'] });
        kubectl.stdout!.pipe(out);
        const id = pod.status!.containerStatuses![0]!.containerID!;
        const [pid] = await Host.containerPids(options.cluster, [id]);
        followed.set(pod.metadata.uid, { name: pod.metadata.name, ip: pod.status?.podIP ?? null, runningAt: Date.now(), readyAt: null, deletingAt: null, pid: pid ?? null, cpuSeconds: Processes.cpuSeconds(pid), rss: [], lastCpu: null, cpu: [], kubectl, out, file });
    };

    const sample = async () => {

        const now = Date.now();
        for (const pod of await options.list()) {
            const running = pod.status?.containerStatuses?.[0]?.state?.running && pod.status.containerStatuses[0].containerID;
            if (running && !followed.has(pod.metadata.uid)) {
                await follow(pod);
            }

            const known = followed.get(pod.metadata.uid);
            if (known) {
                const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
                known.readyAt ??= ready ? now : null;
                known.deletingAt ??= pod.metadata.deletionTimestamp ? now : null;
            }
        }

        for (const pod of followed.values()) {
            const seconds = (() => {

                try {
                    return pod.cpuSeconds?.() ?? null;
                }
                catch {
                    return null;                            // The process has exited
                }
            })();

            if (seconds !== null && pod.lastCpu) {
                pod.cpu.push([now, Math.round((seconds - pod.lastCpu.seconds) / ((now - pod.lastCpu.at) / 1000) * 100) / 100]);
            }

            pod.lastCpu = seconds === null ? null : { at: now, seconds };
            const rssMb = pod.pid === null ? null : await Host.rssMb(pod.pid);
            if (rssMb !== null) {
                pod.rss.push([now, rssMb]);
            }
        }
    };

    const loop = (async () => {

        const round = (value: number) => Math.round(value * 100) / 100;
        let last = await internals.cpu();
        while (!stopping) {
            await sample().catch(() => {});                 // An API hiccup costs one sample, not the scenario
            await sleep(1000);
            const next = await internals.cpu();
            const seconds = (next.at - last.at) / 1000;
            machineBusy.push([next.at, round((next.busy - last.busy) / (next.total - last.total))]);
            postgresCores.push([next.at, round(Math.max(next.postgres - last.postgres, 0) / seconds)]);
            loadGeneratorCores.push([next.at, round((next.self - last.self) / seconds)]);
            last = next;
        }
    })();

    const stop = async (originMs: number) => {

        stopping = true;
        await loop;
        for (const pod of followed.values()) {
            pod.kubectl.kill();
            await finished(pod.out).catch(() => {});
        }

        const pods = await Promise.all([...followed.values()].map((pod) => internals.summarise(pod, originMs)));
        const seconds = (series: [number, number][]) => series.map(([at, value]): [number, number] => [Math.floor((at - originMs) / 1000), value]);
        return { machineBusy: seconds(machineBusy), postgresCores: seconds(postgresCores), loadGeneratorCores: seconds(loadGeneratorCores), pods };
    };

    return { stop };
};
