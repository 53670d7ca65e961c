import { existsSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { parse } from 'yaml';


// The chart's memory limit applied to a server as the kubelet applies it to the container: a memory
// cgroup the process starts in. Node sizes V8's heap from that limit (process.constrainedMemory()),
// so RSS under load is measured as deployed; without it V8 sizes the heap from the machine's 24 GiB
// and grows its young generation far beyond what the pod would. cgroup v1 (this machine) or v2;
// needs root.

export interface Limit {
    readonly bytes: number;
    wrap(file: string, args: string[]): [string, string[]];
    remove(): Promise<void>;
}


const internals = {
    units: { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, K: 1e3, M: 1e6, G: 1e9 } as Record<string, number>,
    next: 0
};


/** Kubernetes quantity ("256Mi") to bytes. */
export const bytes = function (quantity: string): number {

    const match = /^(\d+)(Ki|Mi|Gi|K|M|G)?$/.exec(quantity.trim());
    if (!match) {
        throw new Error(`not a memory quantity: ${quantity}`);
    }

    return Number(match[1]) * (match[2] ? internals.units[match[2]]! : 1);
};


/** resources.limits.memory of the chart's values.yaml, in bytes, and the app's NODE_OPTIONS sized for it. */
export const chart = async function (chartDir: string): Promise<{ limitBytes: number; nodeOptions: string }> {

    const values = parse(await readFile(join(chartDir, 'values.yaml'), 'utf8')) as { resources?: { limits?: { memory?: string } }; app?: { nodeOptions?: string } };
    const memory = values.resources?.limits?.memory;
    if (!memory) {
        throw new Error(`no resources.limits.memory in ${chartDir}/values.yaml`);
    }

    return { limitBytes: bytes(String(memory)), nodeOptions: values.app?.nodeOptions ?? '' };
};


/** A fresh memory cgroup with the limit, or null where none can be made (not root, no memory controller). */
export const create = async function (limitBytes: number): Promise<Limit | null> {

    const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
    const parent = v2 ? '/sys/fs/cgroup' : '/sys/fs/cgroup/memory';
    if (process.getuid?.() !== 0 || !existsSync(parent)) {
        return null;
    }

    const dir = join(parent, `item-api-bench-${process.pid}-${internals.next++}`);
    try {
        await mkdir(dir);
        await writeFile(join(dir, v2 ? 'memory.max' : 'memory.limit_in_bytes'), String(limitBytes));
    }
    catch {
        await rmdir(dir).catch(() => {});
        return null;
    }

    const procs = join(dir, 'cgroup.procs');
    return {
        bytes: limitBytes,
        // The shell joins the cgroup and execs the server, which starts (and sizes its heap) inside it.
        wrap: (file, args) => ['sh', ['-c', 'echo $$ > "$0" && exec "$@"', procs, file, ...args]],
        async remove() {

            for (let attempt = 0; attempt < 50; ++attempt) {
                try {
                    await rmdir(dir);
                    return;
                }
                catch {
                    await sleep(100);                   // Busy until the last process has left it
                }
            }
        }
    };
};
