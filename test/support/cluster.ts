import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as Cache from './cache.ts';


// The local cluster of k8s/local/cluster.sh, seen the way its users see it: the real kubectl and
// helm binaries, and the API server's own REST API (lists and watches) for every assertion.

export interface Cluster {
    readonly dir: string;
    readonly bin: string;
    readonly kubeconfig: string;
    readonly nodeIp: string;
    readonly postgresUrl: string;               // The host's PostgreSQL, as the pods reach it
    readonly registry: string;                  // The image registry containerd pulls from (host:port)
    readonly skaffold: string;                  // The skaffold binary built for the dev loop
}


export interface Run {
    readonly code: number;
    readonly stdout: string;
    readonly stderr: string;
    readonly seconds: number;
}


export interface WatchEvent<T> {
    readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
    readonly object: T;
}


export interface Watch {
    close(): void;
}


const internals = {
    root: fileURLToPath(new URL('../../', import.meta.url)),
    script: fileURLToPath(new URL('../../k8s/local/cluster.sh', import.meta.url)),
    agents: new Map<string, https.Agent>()
};


export const root = internals.root;


/** Runs a command without a shell; never throws on a non-zero exit. */
export const run = function (file: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<Run> {

    const started = performance.now();
    return new Promise((resolve) => {

        const child = execFile(file, args, { cwd: internals.root, env: { ...process.env, ...options.env }, maxBuffer: 256 * 1024 * 1024, timeout: options.timeoutMs ?? 600_000 }, (error, stdout, stderr) => {

            const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
            resolve({ code, stdout, stderr: stderr || (error && code !== 0 && !stderr ? error.message : ''), seconds: Math.round((performance.now() - started) / 100) / 10 });
        });

        if (options.input !== undefined) {
            child.stdin!.end(options.input);
        }
    });
};


const parseEnv = function (text: string): Record<string, string> {

    const env: Record<string, string> = {};
    for (const line of text.split('\n')) {
        const match = /^export ([A-Z_]+)=(.*)$/.exec(line.trim());
        if (match) {
            env[match[1]!] = match[2]!;
        }
    }

    return env;
};


const fromEnv = function (env: Record<string, string>): Cluster {

    const need = (name: string) => {

        const value = env[name];
        if (!value) {
            throw new Error(`k8s/local/cluster.sh did not print ${name}`);
        }

        return value;
    };

    const nodeIp = need('ITEM_API_CLUSTER_NODE_IP');
    return {
        dir: need('ITEM_API_CLUSTER_DIR'),
        bin: need('ITEM_API_CLUSTER_BIN'),
        kubeconfig: need('KUBECONFIG'),
        nodeIp,
        postgresUrl: `postgres://item_api:item_api_dev@${nodeIp}:5432/item_api`,
        registry: need('ITEM_API_CLUSTER_REGISTRY'),
        skaffold: need('ITEM_API_SKAFFOLD')
    };
};


/** Brings the cluster up; its output streams to this process's stderr. */
export const up = async function (): Promise<Cluster> {

    const child = spawn('bash', [internals.script, 'up'], { cwd: internals.root, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    if (code !== 0) {
        throw new Error(`k8s/local/cluster.sh up exited with ${code}`);
    }

    return fromEnv(parseEnv(stdout));
};


/** The cluster that is already up, if any. */
export const current = async function (): Promise<Cluster | null> {

    const result = await run('bash', [internals.script, 'env']);
    const cluster = fromEnv(parseEnv(result.stdout));
    const probe = await run(join(cluster.bin, 'kubectl'), ['--kubeconfig', cluster.kubeconfig, 'get', '--raw', '/readyz'], { timeoutMs: 5000 });
    return probe.code === 0 ? cluster : null;
};


export const down = async function (): Promise<Run> {

    return await run('bash', [internals.script, 'down']);
};


/** The image archive .ci/image-build.sh writes, unless another is given. */
export const imageArchive = function (given?: string): string {

    return resolvePath(given ?? Cache.dir('images', 'item-api-dev.tar'));
};


export interface Session {
    readonly cluster: Cluster;
    readonly upS: number;
    /** Takes down the cluster this session brought up, unless it is kept; null when nothing was taken down. */
    release(): Promise<Run | null>;
}


/**
 * The cluster a run works on: with `keep`, the one already up if there is one; otherwise a fresh one.
 * A run that was killed leaves its cluster behind: down restores the machine from that run's own
 * snapshot first (and is a no-op when nothing is there).
 */
export const acquire = async function (keep: boolean): Promise<Session> {

    const started = performance.now();
    let cluster = keep ? await current() : null;
    const own = !cluster;
    if (own) {
        const stale = await down();
        if (stale.code !== 0) {
            throw new Error(`a previous cluster could not be taken down: ${stale.stderr}`);
        }
    }

    cluster ??= await up();
    return {
        cluster,
        upS: Math.round((performance.now() - started) / 100) / 10,
        release: async () => (own && !keep ? await down() : null)
    };
};


export const load = async function (archive: string): Promise<Run> {

    return await run('bash', [internals.script, 'load', archive]);
};


export const kubectl = function (cluster: Cluster, args: readonly string[], options: { timeoutMs?: number; input?: string } = {}): Promise<Run> {

    return run(join(cluster.bin, 'kubectl'), ['--kubeconfig', cluster.kubeconfig, ...args], options);
};


/** The command's result, or an error carrying its output when it failed. */
export const must = async function (what: string, run: Promise<Run>): Promise<Run> {

    const result = await run;
    if (result.code !== 0) {
        throw new Error(`${what} exited with ${result.code}: ${(result.stderr || result.stdout).slice(-2000)}`);
    }

    return result;
};


/** `kubectl rollout status`, as users wait for a Deployment. */
export const rolloutStatus = function (cluster: Cluster, namespace: string, deployment: string, timeout = '5m'): Promise<Run> {

    return kubectl(cluster, ['rollout', 'status', `deployment/${deployment}`, '-n', namespace, `--timeout=${timeout}`]);
};


/** helm with the cluster's kubeconfig and a private home, so nothing of the user's is read or written. */
export const helm = function (cluster: Cluster, binary: string, args: readonly string[], options: { timeoutMs?: number } = {}): Promise<Run> {

    const home = join(cluster.dir, 'helm', binary.replace(/\W/g, '_'));
    return run(binary, args, {
        ...options,
        env: { KUBECONFIG: cluster.kubeconfig, HELM_CONFIG_HOME: join(home, 'config'), HELM_CACHE_HOME: join(home, 'cache'), HELM_DATA_HOME: join(home, 'data') }
    });
};


const agent = function (cluster: Cluster): https.Agent {

    let existing = internals.agents.get(cluster.dir);
    if (!existing) {
        const pki = join(cluster.dir, 'pki');
        existing = new https.Agent({
            keepAlive: true,
            ca: readFileSync(join(pki, 'ca.crt')),
            cert: readFileSync(join(pki, 'admin.crt')),
            key: readFileSync(join(pki, 'admin.key'))
        });
        internals.agents.set(cluster.dir, existing);
    }

    return existing;
};


const apiUrl = function (cluster: Cluster, path: string): URL {

    const server = /server: "([^"]+)"/.exec(readFileSync(cluster.kubeconfig, 'utf8'))?.[1];
    if (!server) {
        throw new Error(`no server in ${cluster.kubeconfig}`);
    }

    return new URL(path, server);
};


/** GET on the API server; resolves the parsed body, or null on 404. */
export const get = function <T>(cluster: Cluster, path: string): Promise<T | null> {

    return new Promise((resolve, reject) => {

        const req = https.get(apiUrl(cluster, path), { agent: agent(cluster), headers: { accept: 'application/json' } }, (res) => {

            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (body += chunk));
            res.on('end', () => {

                if (res.statusCode === 404) {
                    return resolve(null);
                }

                if (res.statusCode !== 200) {
                    return reject(new Error(`GET ${path}: ${res.statusCode} ${body.slice(0, 300)}`));
                }

                resolve(JSON.parse(body) as T);
            });
        });
        req.on('error', reject);
        req.setTimeout(15_000, () => req.destroy(new Error(`GET ${path} timed out`)));
    });
};


/** A watch on a collection path (e.g. /api/v1/namespaces/x/pods); events arrive as the API server sends them. */
export const watch = function <T>(cluster: Cluster, path: string, onEvent: (event: WatchEvent<T>) => void): Watch {

    let closed = false;
    let req: ReturnType<typeof https.get> | undefined;
    let resourceVersion = '';
    const open = () => {

        if (closed) {
            return;
        }

        const url = apiUrl(cluster, path);
        url.searchParams.set('watch', '1');
        url.searchParams.set('allowWatchBookmarks', 'true');
        if (resourceVersion) {
            url.searchParams.set('resourceVersion', resourceVersion);
        }

        req = https.get(url, { agent: new https.Agent({ ...agent(cluster).options, keepAlive: false }) }, (res) => {

            let buffer = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {

                buffer += chunk;
                let newline: number;
                while ((newline = buffer.indexOf('\n')) >= 0) {
                    const line = buffer.slice(0, newline);
                    buffer = buffer.slice(newline + 1);
                    if (!line.trim()) {
                        continue;
                    }

                    const event = JSON.parse(line) as WatchEvent<T & { metadata?: { resourceVersion?: string } }>;
                    if (event.type === 'ERROR') {
                        resourceVersion = '';                   // Expired: start over from a fresh list
                        continue;
                    }

                    resourceVersion = event.object.metadata?.resourceVersion ?? resourceVersion;
                    if (event.type !== 'BOOKMARK') {
                        onEvent(event);
                    }
                }
            });
            res.on('end', () => setTimeout(open, 100));         // The API server ends watches on its own schedule
        });
        req.on('error', () => setTimeout(open, 500));
    };

    open();
    return {
        close() {

            closed = true;
            req?.destroy();
        }
    };
};
