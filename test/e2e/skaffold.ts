import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, createWriteStream, existsSync, openSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import * as Cluster from '../support/cluster.ts';
import * as Podman from '../support/podman.ts';
import { createNamespace } from './steps.ts';
import type { Context, StepResult } from './steps.ts';


// skaffold dev, run and delete against the local cluster, as its users run them: the project's own
// skaffold.yaml (the local-cluster profile activates on the cluster's kube context), images built
// by podman through its Docker API, pushed to the cluster's registry and pulled by the kubelet.
// The project is copied into a workspace of the cluster's so a source change never touches the
// checkout. Every verdict comes from the API server and from the service's own answers.

interface PodObject {
    metadata: { name: string; uid: string; deletionTimestamp?: string };
    spec: { containers: { name: string; image: string }[] };
    status: { phase: string; conditions?: { type: string; status: string }[]; containerStatuses?: { name: string; imageID: string; restartCount: number }[] };
}


interface Invocation {
    readonly skaffold: string;
    readonly cwd: string;
    readonly env: NodeJS.ProcessEnv;
    readonly log: string;
}


interface Skaffold {
    readonly child: ChildProcess;
    output(): string;
    /** Seconds from the start to the first line matching each pattern at or after `from` (an output offset), or null. */
    timeline(patterns: Record<string, RegExp>, from?: number): Record<string, number | null>;
    exited(): Promise<number | null>;
}


const internals = {
    namespace: 'item-api-dev',
    release: 'item-api',
    selector: 'app.kubernetes.io/instance=item-api,app.kubernetes.io/component!=test',
    // Kinds skaffold's cleanup must leave empty in the namespace (what the chart and the dev
    // database manifests create), as `kubectl get` names them.
    deployedKinds: ['deployments', 'replicasets', 'pods', 'services', 'endpointslices', 'jobs', 'secrets', 'poddisruptionbudgets', 'serviceaccounts'],
    // A ServiceAccount and a ConfigMap every namespace gets from the controllers.
    builtIn: new Set(['serviceaccount/default', 'configmap/kube-root-ca.crt']),

    ready: (pod: PodObject) => !pod.metadata.deletionTimestamp && (pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false),

    async pods(context: Context): Promise<PodObject[]> {

        const list = await Cluster.get<{ items: PodObject[] }>(context.cluster, `/api/v1/namespaces/${internals.namespace}/pods?labelSelector=${encodeURIComponent(internals.selector)}`);
        return list?.items ?? [];
    },

    /** The tracked files of the checkout as they are on disk (new ones included), in a fresh git repository. */
    async workspace(context: Context): Promise<string> {

        const dir = join(context.cluster.dir, 'skaffold', 'project');
        await rm(dir, { recursive: true, force: true });
        const listed = await Cluster.must('git ls-files', Cluster.run('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z']));
        for (const file of new Set(listed.stdout.split('\0').filter(Boolean))) {
            if (existsSync(join(Cluster.root, file))) {
                await mkdir(dirname(join(dir, file)), { recursive: true });
                await copyFile(join(Cluster.root, file), join(dir, file));
            }
        }

        // skaffold's default tagger names images by commit, as it does in users' clones.
        const git = (args: string[]) => Cluster.must(`git ${args[0]}`, Cluster.run('git', ['-C', dir, '-c', 'user.name=e2e', '-c', 'user.email=e2e@localhost', ...args]));
        await git(['init', '-q']);
        await git(['add', '-A']);
        await git(['commit', '-qm', 'workspace']);
        return dir;
    },

    /**
     * What skaffold needs around it: kubectl and helm on PATH (Helm 3: skaffold's helm deployer
     * passes its own binary as --post-renderer, which Helm 4 no longer accepts), a Docker API
     * (podman's, on its own socket, with the project's podman storage and build configuration of
     * .ci/podman-env.sh, and the cluster registry declared plain HTTP), and a private HOME whose global
     * skaffold config turns off the update check and usage metrics: nothing leaves the machine.
     */
    async environment(context: Context): Promise<{ env: NodeJS.ProcessEnv; podman: ChildProcess }> {

        const dir = join(context.cluster.dir, 'skaffold');
        const bin = join(dir, 'bin');
        const home = join(dir, 'home');
        await mkdir(bin, { recursive: true });
        await mkdir(join(home, '.skaffold'), { recursive: true });
        for (const [name, target] of [['kubectl', join(context.cluster.bin, 'kubectl')], ['helm', context.helm3]] as const) {
            await rm(join(bin, name), { force: true });
            await symlink(target, join(bin, name));
        }

        await writeFile(join(home, '.skaffold', 'config'), 'global:\n  collect-metrics: false\n  update-check: false\n  survey:\n    disable-prompt: true\nkubeContexts: []\n');
        const registriesConf = join(dir, 'registries.conf');
        await writeFile(registriesConf, `[[registry]]\nlocation = "${context.cluster.registry}"\ninsecure = true\n`);
        const socket = join(dir, 'podman.sock');
        const podmanEnv = { ...process.env, ...Podman.env('build'), CONTAINERS_REGISTRIES_CONF: registriesConf };
        const log = openSync(join(context.out, 'podman-service.log'), 'w');
        const podman = spawn('podman', ['system', 'service', '--time=0', `unix://${socket}`], { env: podmanEnv, stdio: ['ignore', log, log] });
        closeSync(log);
        const deadline = performance.now() + 30_000;
        while (!existsSync(socket)) {
            if (performance.now() > deadline || podman.exitCode !== null) {
                throw new Error(`podman system service did not listen on ${socket} (log: ${join(context.out, 'podman-service.log')})`);
            }

            await sleep(100);
        }

        const env = {
            ...process.env,
            PATH: `${bin}:${process.env.PATH}`,
            HOME: home,
            KUBECONFIG: context.cluster.kubeconfig,
            DOCKER_HOST: `unix://${socket}`,
            SKAFFOLD_DEFAULT_REPO: context.cluster.registry,
            HELM_CONFIG_HOME: join(home, 'helm', 'config'), HELM_CACHE_HOME: join(home, 'helm', 'cache'), HELM_DATA_HOME: join(home, 'helm', 'data')
        };
        return { env, podman };
    },

    start(args: string[], options: Invocation): Skaffold {

        const child = spawn(options.skaffold, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
        const log = createWriteStream(options.log);
        const started = performance.now();
        const arrivals: { offset: number; at: number }[] = [];
        let output = '';
        const collect = (chunk: Buffer) => {

            arrivals.push({ offset: output.length, at: internals.seconds(started) });
            output += chunk.toString();
            log.write(chunk);
        };

        // Where the build, the push and the deploy spend the time (skaffold's output has no timestamps).
        const timeline = (patterns: Record<string, RegExp>, from = 0) => Object.fromEntries(Object.entries(patterns).map(([name, pattern]) => {

            const match = pattern.exec(output.slice(from));
            const offset = match ? from + match.index : -1;
            const arrival = match ? arrivals.findLast((a) => a.offset <= offset) : undefined;
            return [name, arrival?.at ?? null];
        }));

        child.stdout!.on('data', collect);
        child.stderr!.on('data', collect);
        const exit = new Promise<number | null>((resolve) => child.once('close', (code) => {

            log.end();
            resolve(code);
        }));
        return { child, output: () => output, timeline, exited: () => exit };
    },

    /** skaffold to completion (run, delete), bounded. */
    async once(args: string[], options: Invocation & { timeoutMs: number }): Promise<{ code: number | null; output: string; seconds: number }> {

        const started = performance.now();
        const skaffold = internals.start(args, options);
        const timer = setTimeout(() => skaffold.child.kill('SIGKILL'), options.timeoutMs);
        const code = await skaffold.exited();
        clearTimeout(timer);
        return { code, output: skaffold.output(), seconds: internals.seconds(started) };
    },

    seconds: (since: number) => Math.round((performance.now() - since) / 100) / 10,

    milestones: {
        build: /^Building \[/m, built: /^Build \[[^\]]+\] succeeded/m, deploy: /^Starting deploy/m,
        stabilized: /^Deployments stabilized/m, synced: /^Syncing \d+ files?/m, watching: /^Watching for changes/m
    },

    /** Waits (bounded) for the output to contain a line matching the pattern, from a given offset on. */
    async until(skaffold: Skaffold, pattern: RegExp, from: number, timeoutMs: number): Promise<boolean> {

        const deadline = performance.now() + timeoutMs;
        while (performance.now() < deadline) {
            if (pattern.test(skaffold.output().slice(from))) {
                return true;
            }

            if (skaffold.child.exitCode !== null) {
                return false;
            }

            await sleep(100);
        }

        return false;
    },

    /** The title the service's OpenAPI document reports, through the Service's ClusterIP (kube-proxy), or null. */
    title(host: string): Promise<string | null> {

        return new Promise((resolve) => {

            const req = http.get({ host, port: 80, path: '/openapi.json', agent: false, timeout: 2000 }, (res) => {

                let body = '';
                res.setEncoding('utf8');
                res.on('data', (chunk: string) => (body += chunk));
                res.on('end', () => {

                    try {
                        resolve(res.statusCode === 200 ? (JSON.parse(body) as { info: { title: string } }).info.title : null);
                    }
                    catch {
                        resolve(null);
                    }
                });
            });
            req.on('timeout', () => req.destroy());
            req.on('error', () => resolve(null));
        });
    },

    async clusterIp(context: Context): Promise<string> {

        const service = await Cluster.get<{ spec: { clusterIP: string } }>(context.cluster, `/api/v1/namespaces/${internals.namespace}/services/${internals.release}`);
        if (!service) {
            throw new Error(`no Service ${internals.release} in ${internals.namespace}`);
        }

        return service.spec.clusterIP;
    },

    /** Deployment rolled out and every pod of the release Ready; resolves the pods, or null after the bound. */
    async rolledOut(context: Context, timeoutMs: number): Promise<PodObject[] | null> {

        const deadline = performance.now() + timeoutMs;
        while (performance.now() < deadline) {
            const deployment = await Cluster.get<{ metadata: { generation: number }; spec: { replicas: number }; status: { observedGeneration?: number; updatedReplicas?: number; availableReplicas?: number; replicas?: number } }>(
                context.cluster, `/apis/apps/v1/namespaces/${internals.namespace}/deployments/${internals.release}`);
            const pods = await internals.pods(context);
            const status = deployment?.status;
            if (deployment && status?.observedGeneration === deployment.metadata.generation && status.updatedReplicas === deployment.spec.replicas &&
                status.availableReplicas === deployment.spec.replicas && status.replicas === deployment.spec.replicas &&
                pods.length === deployment.spec.replicas && pods.every(internals.ready)) {
                return pods;
            }

            await sleep(250);
        }

        return null;
    },

    /** Edits the OpenAPI title in the workspace; resolves when the file is written. */
    async change(dir: string, title: string): Promise<number> {

        const file = join(dir, 'src', 'server.ts');
        const source = await readFile(file, 'utf8');
        const edited = source.replace(/title: '[^']*'/, `title: '${title}'`);
        if (edited === source) {
            throw new Error(`no OpenAPI title found in ${file}`);
        }

        await writeFile(file, edited);
        return performance.now();
    },

    /** Polls the Service until it serves the title; resolves the seconds from `since`, or null after the bound. */
    async served(host: string, title: string, since: number, timeoutMs: number): Promise<number | null> {

        const deadline = since + timeoutMs;
        while (performance.now() < deadline) {
            if (await internals.title(host) === title) {
                return internals.seconds(since);
            }

            await sleep(100);
        }

        return null;
    },

    /** What is left in the namespace of what was deployed (waits, bounded, for terminating pods). */
    async leftovers(context: Context, timeoutMs: number): Promise<string[]> {

        const deadline = performance.now() + timeoutMs;
        for (;;) {
            const run = await Cluster.kubectl(context.cluster, ['get', [...internals.deployedKinds, 'configmaps'].join(','), '-n', internals.namespace, '-o', 'name']);
            const left = run.code !== 0 ? [`kubectl get failed: ${run.stderr.trim()}`] : run.stdout.split('\n').map((line) => line.trim()).filter((line) => line && !internals.builtIn.has(line.replace(/\.[a-z.]+\//, '/')));
            if (!left.length || performance.now() > deadline) {
                return left;
            }

            await sleep(500);
        }
    },

    summary(pods: readonly PodObject[]): { name: string; uid: string; image: string; imageID: string; restarts: number }[] {

        return pods.map((pod) => ({
            name: pod.metadata.name, uid: pod.metadata.uid, image: pod.spec.containers[0]?.image ?? '',
            imageID: pod.status.containerStatuses?.[0]?.imageID ?? '', restarts: pod.status.containerStatuses?.[0]?.restartCount ?? -1
        }));
    },

    /** SIGINT, as Ctrl+C; SIGKILL after the bound. Resolves skaffold's exit code and the seconds it took. */
    async interrupt(skaffold: Skaffold, timeoutMs: number): Promise<{ code: number | null; seconds: number }> {

        const started = performance.now();
        skaffold.child.kill('SIGINT');
        const timer = setTimeout(() => skaffold.child.kill('SIGKILL'), timeoutMs);
        const code = await skaffold.exited();
        clearTimeout(timer);
        return { code, seconds: internals.seconds(started) };
    }
};


/**
 * One `skaffold dev` session: deployed and Ready, one source change (the OpenAPI title) served, then
 * Ctrl+C and nothing it deployed left. Without a profile the change must arrive in new pods running
 * a new image; with `sync` in the same pods, the same image, no container restart.
 */
const session = async function (context: Context, project: string, env: NodeJS.ProcessEnv, profile: 'rebuild' | 'sync'): Promise<{ ok: boolean; details: Record<string, unknown> }> {

    const args = ['dev', '--namespace', internals.namespace, '--port-forward=off', '--interactive=false', ...(profile === 'sync' ? ['--profile', 'sync'] : [])];
    const started = performance.now();
    const skaffold = internals.start(args, { skaffold: context.cluster.skaffold, cwd: project, env, log: join(context.out, `skaffold-dev-${profile}.log`) });
    const details: Record<string, unknown> = { command: `skaffold ${args.join(' ')}` };
    try {
        const deployed = await internals.until(skaffold, /Watching for changes/, 0, 900_000);
        details.toFirstDeployS = internals.seconds(started);
        details.firstDeployTimeline = skaffold.timeline(internals.milestones);
        const before = deployed ? await internals.rolledOut(context, 120_000) : null;
        if (!before) {
            return { ok: false, details: { ...details, error: 'not deployed and Ready', output: skaffold.output().split('\n').slice(-30) } };
        }

        const host = await internals.clusterIp(context);
        details.servedBefore = await internals.title(host);
        const title = `item-api ${profile} ${Date.now().toString(36)}`;
        const offset = skaffold.output().length;
        const changedAt = await internals.change(project, title);
        details.changedAtS = internals.seconds(started);          // The timelines count from skaffold's start
        details.changeToServedS = await internals.served(host, title, changedAt, 600_000);
        const after = await internals.rolledOut(context, 180_000) ?? [];
        details.changeToRolledOutS = internals.seconds(changedAt);
        const iteration = skaffold.output().slice(offset);
        details.changeTimeline = skaffold.timeline(internals.milestones, offset);
        const rebuilt = /Building \[/.test(iteration);
        const synced = /Syncing \d+ files?/.test(iteration);
        const beforeUids = new Set(before.map((pod) => pod.metadata.uid));
        const beforeImages = new Set(before.map((pod) => pod.status.containerStatuses?.[0]?.imageID));
        const newPods = after.filter((pod) => !beforeUids.has(pod.metadata.uid));
        const restarts = (pods: PodObject[]) => pods.reduce((sum, pod) => sum + (pod.status.containerStatuses?.[0]?.restartCount ?? 0), 0);
        const sameImage = after.every((pod) => beforeImages.has(pod.status.containerStatuses?.[0]?.imageID));
        const pinned = after.every((pod) => pod.spec.containers[0]?.image.startsWith(`${context.cluster.registry}/`) && pod.spec.containers[0].image.includes('@sha256:'));
        Object.assign(details, { rebuilt, synced, podsBefore: internals.summary(before), podsAfter: internals.summary(after), pinnedByDigest: pinned });
        const changeOk = details.changeToServedS !== null && after.length === before.length && pinned && (profile === 'rebuild' ?
            rebuilt && !synced && newPods.length === after.length && !sameImage :
            synced && !rebuilt && newPods.length === 0 && sameImage && restarts(after) === restarts(before));

        const stopped = await internals.interrupt(skaffold, 180_000);
        const left = await internals.leftovers(context, 90_000);
        Object.assign(details, { exitCode: stopped.code, cleanupS: stopped.seconds, leftAfterCtrlC: left });
        return { ok: changeOk && stopped.code === 0 && left.length === 0, details };
    }
    finally {
        if (skaffold.child.exitCode === null) {
            skaffold.child.kill('SIGKILL');
        }
    }
};


const prepare = async function (context: Context): Promise<{ project: string; env: NodeJS.ProcessEnv; podman: ChildProcess }> {

    if (!await Cluster.get(context.cluster, `/api/v1/namespaces/${internals.namespace}`)) {
        await createNamespace(context, internals.namespace);
    }

    const project = await internals.workspace(context);
    return { project, ...await internals.environment(context) };
};


/**
 * Stops the Docker API and untags what skaffold built: the project's podman storage is a cache CI
 * keeps, where tagged images would pile up; untagged, they stay the next build's layer cache (rmi
 * would delete their untagged parents, the npm ci layers among them) and image-build.sh prunes them
 * with the base they were built on.
 */
const stopPodman = async function (context: Context, podman: ChildProcess): Promise<void> {

    if (podman.exitCode === null && podman.signalCode === null) {
        const exited = new Promise((resolve) => podman.once('exit', resolve));
        podman.kill('SIGTERM');
        await Promise.race([exited, sleep(10_000)]);
        podman.kill('SIGKILL');
    }

    const podmanEnv = Podman.env('run');
    const built = await Cluster.run('podman', ['images', '--quiet', '--filter', `reference=${context.cluster.registry}/*`], { env: podmanEnv });
    const ids = [...new Set(built.stdout.split('\n').filter(Boolean))];
    if (ids.length) {
        await Cluster.run('podman', ['untag', ...ids], { env: podmanEnv });
    }
};


/** `skaffold dev` twice: the rebuild path (default) and the file-sync path (`--profile sync`). */
export const dev = async function (context: Context): Promise<StepResult> {

    const { project, env, podman } = await prepare(context);
    try {
        const rebuild = await session(context, project, env, 'rebuild');
        const sync = rebuild.ok ? await session(context, project, env, 'sync') : { ok: false, details: { error: 'not run: the rebuild session failed' } };
        return {
            ok: rebuild.ok && sync.ok,
            details: {
                changeToServedS: { rebuild: rebuild.details.changeToServedS ?? null, sync: sync.details.changeToServedS ?? null },
                rebuild: rebuild.details, sync: sync.details
            }
        };
    }
    finally {
        await stopPodman(context, podman);
    }
};


/** `skaffold run` deploys once and returns with the release Ready; `skaffold delete` removes all of it. */
export const runAndDelete = async function (context: Context): Promise<StepResult> {

    const { project, env, podman } = await prepare(context);
    const invocation = (name: string) => ({ skaffold: context.cluster.skaffold, cwd: project, env, log: join(context.out, `skaffold-${name}.log`), timeoutMs: 900_000 });
    try {
        const run = await internals.once(['run', '--namespace', internals.namespace, '--port-forward=off', '--interactive=false'], invocation('run'));
        // skaffold run waits for the deployments to stabilize itself (status check): Ready on return.
        const pods = await internals.rolledOut(context, 1000);
        const served = pods ? await internals.title(await internals.clusterIp(context)) : null;
        const deleted = await internals.once(['delete', '--namespace', internals.namespace], invocation('delete'));
        const left = await internals.leftovers(context, 90_000);
        return {
            ok: run.code === 0 && pods !== null && served === 'item-api' && deleted.code === 0 && left.length === 0,
            details: {
                run: { exitCode: run.code, seconds: run.seconds, readyOnReturn: pods !== null, pods: internals.summary(pods ?? []), served, output: run.output.trim().split('\n').slice(-8) },
                delete: { exitCode: deleted.code, seconds: deleted.seconds, left, output: deleted.output.trim().split('\n').slice(-8) }
            }
        };
    }
    finally {
        await stopPodman(context, podman);
    }
};
