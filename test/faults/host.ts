import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import * as Cluster from '../support/cluster.ts';


// What the fault scenarios do to the node itself: PostgreSQL (k8s/local/cluster.sh runs it on the
// node as the postgres user) restarted with pg_ctl or frozen with SIGSTOP, containers SIGKILLed
// through containerd as the OOM killer would, and a container's resident memory and descriptors
// read from /proc. Everything here stays on this machine and ends bounded.

export interface Postgres {
    restart(mode: 'fast' | 'immediate'): Promise<{ downMs: number }>;
    freeze(ms: number): Promise<{ processes: number }>;
    stop(): Promise<void>;              // Only if it was restarted (cluster.sh down stops the one it started)
}


const internals = {
    pgBin: process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin',

    ctr(cluster: Cluster.Cluster, args: readonly string[]): Promise<Cluster.Run> {

        return Cluster.run('ctr', ['--address', join(cluster.dir, 'containerd', 'containerd.sock'), '--namespace', 'k8s.io', ...args], { timeoutMs: 30_000 });
    },

    async children(parent: number): Promise<number[]> {

        const pids: number[] = [];
        for (const entry of await readdir('/proc')) {
            if (!/^\d+$/.test(entry)) {
                continue;
            }

            const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
            const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
            if (ppid === parent) {
                pids.push(Number(entry));
            }
        }

        return pids;
    }
};


export const postgres = function (cluster: Cluster.Cluster): Postgres {

    const data = join(cluster.dir, 'postgres', 'data');
    const pgCtl = (args: readonly string[]) => Cluster.run('runuser', ['-u', 'postgres', '--', join(internals.pgBin, 'pg_ctl'), '-D', data, ...args], { timeoutMs: 90_000 });
    let restarted = false;

    return {
        async restart(mode) {

            const started = performance.now();
            restarted = true;
            await Cluster.must(`pg_ctl restart -m ${mode}`, pgCtl(['restart', '-m', mode, '-w', '-t', '60', '-l', join(cluster.dir, 'postgres', 'restarted.log')]));
            return { downMs: Math.round(performance.now() - started) };
        },

        async freeze(ms) {

            const postmaster = Number((await readFile(join(data, 'postmaster.pid'), 'utf8')).split('\n')[0]);
            const stopped: number[] = [];
            try {
                // The postmaster first, so it forks nothing new while its children are being stopped.
                process.kill(postmaster, 'SIGSTOP');
                stopped.push(postmaster);
                for (const pid of await internals.children(postmaster)) {
                    process.kill(pid, 'SIGSTOP');
                    stopped.push(pid);
                }

                await sleep(ms);
            }
            finally {
                for (const pid of stopped.reverse()) {
                    try {
                        process.kill(pid, 'SIGCONT');
                    }
                    catch {
                        // Gone meanwhile
                    }
                }
            }

            return { processes: stopped.length };
        },

        async stop() {

            if (restarted) {
                await pgCtl(['stop', '-m', 'fast', '-w', '-t', '30']);
            }
        }
    };
};


/** SIGKILL to the container's processes, through containerd: what the kernel's OOM killer does. */
export const sigkill = async function (cluster: Cluster.Cluster, containerId: string): Promise<void> {

    await Cluster.must('ctr tasks kill', internals.ctr(cluster, ['tasks', 'kill', '--signal', 'SIGKILL', containerId.replace(/^containerd:\/\//, '')]));
};


/** The main process of each running container, in the order given (undefined for one not running). */
export const containerPids = async function (cluster: Cluster.Cluster, containerIds: readonly string[]): Promise<(number | undefined)[]> {

    const tasks = await internals.ctr(cluster, ['tasks', 'ls']);
    const pids = new Map(tasks.stdout.split('\n').slice(1).map((line) => line.trim().split(/\s+/)).filter((fields) => fields[2] === 'RUNNING').map((fields) => [fields[0]!, Number(fields[1])]));
    return containerIds.map((full) => pids.get(full.replace(/^containerd:\/\//, '')));
};


/** A process's resident memory in MB (0.1 MB steps), or null once it has exited. */
export const rssMb = async function (pid: number): Promise<number | null> {

    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    return Number.isFinite(rssKb) ? Math.round(rssKb / 102.4) / 10 : null;
};


/** Resident memory and open descriptors of each running container's main process. */
export const processStats = async function (cluster: Cluster.Cluster, containerIds: readonly string[]): Promise<{ id: string; rssMb: number; fds: number }[]> {

    const pids = await containerPids(cluster, containerIds);
    const stats = [];
    for (const [i, full] of containerIds.entries()) {
        const id = full.replace(/^containerd:\/\//, '');
        const pid = pids[i];
        if (!pid) {
            continue;
        }

        const rss = await rssMb(pid);
        const fds = (await readdir(`/proc/${pid}/fd`).catch(() => [])).length;
        if (rss !== null) {
            stats.push({ id, rssMb: rss, fds });
        }
    }

    return stats;
};


/**
 * Packets conntrack marked INVALID on this node since boot (/proc/net/stat/nf_conntrack, summed over
 * its CPUs); null where the file is not there. kube-proxy drops such packets only in FORWARD, on their
 * way to a pod; a client on the node itself (the load generator here) receives them in INPUT, not
 * translated back from the pod's address, and the node answers the pod with a reset, which closes the
 * client's connection (kubernetes/kubernetes#117924).
 */
export const conntrackInvalid = async function (): Promise<number | null> {

    const [header, ...rows] = (await readFile('/proc/net/stat/nf_conntrack', 'utf8').catch(() => '')).trim().split('\n');
    const column = header?.trim().split(/\s+/).indexOf('invalid') ?? -1;
    return column < 0 ? null : rows.reduce((sum, row) => sum + parseInt(row.trim().split(/\s+/)[column]!, 16), 0);
};
