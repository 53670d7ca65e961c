import { spawn } from 'node:child_process';
import { mkdir, open, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import * as Cluster from '../support/cluster.ts';


// A real L7 proxy in front of the pods, kept in step with the Service's EndpointSlices the way an
// ingress or Gateway controller does it: HAProxy (from Debian) with a fixed set of server slots,
// re-pointed through its runtime API (no reload, so no connection is cut by the proxy itself), as
// HAProxy's own Kubernetes ingress controller does. Only endpoints whose `ready` condition is true
// get traffic; a terminating endpoint is put in maintenance, which lets its in-flight requests and
// keep-alive connections finish. Upstream connections are kept alive and reused (http-reuse), and
// an upstream error is a 502/503 with no retry (`retries 0`, no redispatch): every failure of a pod
// reaches the client. The controller applies the latest state at most once per `syncPeriodMs`
// (kube-proxy's default minSyncPeriod is the same 1 s), which is where a real controller's lag is.

export interface Ingress {
    readonly address: { host: string; port: number };
    readonly stats: { syncs: number; endpointChanges: number };
    close(): Promise<void>;
}


interface EndpointSlice {
    metadata: { name: string };
    endpoints?: { addresses: string[]; conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean } }[];
    ports?: { name?: string; port?: number }[];
}


const internals = {
    slots: 16,

    config(dir: string, listen: { host: string; port: number }, slots: number): string {

        const servers = Array.from({ length: slots }, (_, i) => `    server pod${i + 1} 127.0.0.1:9 disabled`);
        return [
            'global',
            `    stats socket ${join(dir, 'admin.sock')} mode 600 level admin`,
            `    pidfile ${join(dir, 'haproxy.pid')}`,
            '    maxconn 4096',
            '    log stdout format raw local0',                  // Two fds a connection; root here cannot raise the 20000 limit
            'defaults',
            '    mode http',
            '    log global',
            '    option httplog',
            '    timeout connect 5s',
            '    timeout client 75s',
            '    timeout server 60s',
            '    timeout http-keep-alive 75s',
            '    retries 0',
            'frontend ingress',
            `    bind ${listen.host}:${listen.port}`,
            '    default_backend item_api',
            'backend item_api',
            '    balance roundrobin',
            '    http-reuse safe',
            ...servers,
            ''
        ].join('\n');
    },

    command(socket: string, lines: readonly string[]): Promise<string> {

        return new Promise((resolve, reject) => {

            const client = net.createConnection(socket);
            let out = '';
            client.setEncoding('utf8');
            client.on('connect', () => client.end(`${lines.join(';')}\n`));
            client.on('data', (chunk: string) => (out += chunk));
            client.on('end', () => resolve(out));
            client.on('error', reject);
        });
    }
};


export const start = async function (options: { cluster: Cluster.Cluster; namespace: string; service: string; listen: { host: string; port: number }; dir: string; syncPeriodMs: number }): Promise<Ingress> {

    await mkdir(options.dir, { recursive: true });
    const configFile = join(options.dir, 'haproxy.cfg');
    await writeFile(configFile, internals.config(options.dir, options.listen, internals.slots));
    // Its access log (one line a request: timers, the server, how the session ended) stays with the run.
    const accessLog = await open(join(options.dir, 'access.log'), 'w');
    const child = spawn('haproxy', ['-W', '-db', '-f', configFile], { stdio: ['ignore', accessLog.fd, 'pipe'] });
    let errors = '';
    child.stderr!.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    const socket = join(options.dir, 'admin.sock');
    for (let i = 0; ; ++i) {
        const ok = await internals.command(socket, ['show info']).then(() => true, () => false);
        if (ok) {
            break;
        }

        if (i > 100 || child.exitCode !== null) {
            throw new Error(`haproxy did not start: ${errors}`);
        }

        await sleep(50);
    }

    const slices = new Map<string, EndpointSlice>();
    const slotOf = new Map<string, number>();                   // address -> slot
    // Free slots, least recently freed first: a slot just put in maintenance keeps draining its
    // connections while the others take new pods.
    const free = Array.from({ length: internals.slots }, (_, i) => i + 1);
    const stats = { syncs: 0, endpointChanges: 0 };
    let dirty = false;
    let closed = false;

    const sync = async () => {

        const ready = new Set<string>();
        let port = 0;
        for (const slice of slices.values()) {
            port = slice.ports?.[0]?.port ?? port;
            for (const endpoint of slice.endpoints ?? []) {
                if (endpoint.conditions?.ready !== false) {
                    endpoint.addresses.forEach((address) => ready.add(address));
                }
            }
        }

        const commands: string[] = [];
        for (const [address, slot] of slotOf) {
            if (!ready.has(address)) {
                commands.push(`set server item_api/pod${slot} state maint`);
                slotOf.delete(address);
                free.push(slot);
                stats.endpointChanges++;
            }
        }

        for (const address of ready) {
            if (slotOf.has(address)) {
                continue;
            }

            const slot = free.shift();
            if (slot === undefined) {
                throw new Error('more ready endpoints than ingress slots');
            }

            slotOf.set(address, slot);
            commands.push(`set server item_api/pod${slot} addr ${address} port ${port}`, `set server item_api/pod${slot} state ready`);
            stats.endpointChanges++;
        }

        if (commands.length) {
            const answer = await internals.command(socket, commands);
            if (/unknown|error|invalid|not found/i.test(answer)) {
                throw new Error(`haproxy refused ${commands.join('; ')}: ${answer}`);
            }
        }

        stats.syncs++;
    };

    const watch = Cluster.watch<EndpointSlice>(options.cluster, `/apis/discovery.k8s.io/v1/namespaces/${options.namespace}/endpointslices?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${options.service}`)}`, ({ type, object }) => {

        if (type === 'DELETED') {
            slices.delete(object.metadata.name);
        }
        else {
            slices.set(object.metadata.name, object);
        }

        dirty = true;
    });

    const loop = (async () => {

        while (!closed) {
            if (dirty) {
                dirty = false;
                await sync();
            }

            await sleep(options.syncPeriodMs);
        }
    })();

    // The first sync happens before any traffic is sent.
    for (let i = 0; i < 200 && (stats.syncs === 0 || slotOf.size === 0); ++i) {
        await sleep(50);
    }

    return {
        address: options.listen,
        stats,
        async close() {

            closed = true;
            watch.close();
            await loop;
            child.kill('SIGTERM');
            await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(null)));
            await accessLog.close();
        }
    };
};
