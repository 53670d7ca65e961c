import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import pg from 'pg';

import { requiredGracePeriodSeconds } from '../k8s/checks.ts';
import * as Proof from '../rollout/proof.ts';
import * as Cluster from '../support/cluster.ts';


// The verbs the service's users run, each against the real cluster, each judged by what the API
// server (or the database) reports afterwards, never by the command's own word alone.

export interface Context {
    readonly cluster: Cluster.Cluster;
    readonly helm4: string;
    readonly helm3: string;
    readonly chart: string;
    readonly out: string;
    readonly short: boolean;
    readonly rate: number;
}


export interface StepResult {
    readonly ok: boolean;
    readonly details: Record<string, unknown>;
    readonly rollout?: readonly Proof.Result[];             // The rollout proof's scenarios, good one first
}


interface Condition {
    type: string;
    status: string;
    reason?: string;
}


interface PodObject {
    metadata: { name: string; uid: string; creationTimestamp: string; deletionTimestamp?: string; labels?: Record<string, string> };
    spec: { terminationGracePeriodSeconds?: number; nodeName?: string };
    status: { phase: string; conditions?: Condition[] };
}


interface DeploymentObject {
    metadata: { generation: number };
    spec: { replicas: number; template: { spec: { terminationGracePeriodSeconds?: number; containers: { env?: { name: string; value?: string }[] }[] } } };
    status: { observedGeneration?: number; replicas?: number; readyReplicas?: number; updatedReplicas?: number; availableReplicas?: number };
}


interface List<T> {
    items: T[];
}


export const helm4 = { namespace: 'item-api', release: 'item-api' };
export const helm3 = { namespace: 'item-api-helm3', release: 'item-api-helm3', database: 'item_api_helm3' };


const internals = {

    // What every install sets: the image imported into the node, shorter startup probing and
    // minReadySeconds (a rollout of pods that start in a second need not wait the defaults), telemetry
    // off (no collector runs here). The shutdown budgets are the chart's own.
    baseValues: {
        image: { repository: 'localhost/item-api', tag: 'dev', pullPolicy: 'Never' },
        probes: { startup: { periodSeconds: 1 }, readiness: { periodSeconds: 2 } },
        minReadySeconds: 2,
        otel: { sdkDisabled: true },
        app: { logLevel: 'warn' }
    } as Record<string, unknown>,

    async valuesFile(context: Context, name: string, values: Record<string, unknown>): Promise<string> {

        const file = join(context.out, 'values', `${name}.json`);
        await mkdir(join(context.out, 'values'), { recursive: true });
        await writeFile(file, JSON.stringify(values, null, 2));
        return file;
    },

    ready: (pod: PodObject) => pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,

    async pods(context: Context, namespace: string, release: string): Promise<PodObject[]> {

        const list = await Cluster.get<List<PodObject>>(context.cluster, `/api/v1/namespaces/${namespace}/pods?labelSelector=${encodeURIComponent(`app.kubernetes.io/instance=${release},app.kubernetes.io/component!=test`)}`);
        return (list?.items ?? []).filter((pod) => !pod.metadata.labels?.['job-name'] && !pod.metadata.labels?.['batch.kubernetes.io/job-name']);
    },

    async deployment(context: Context, namespace: string, release: string): Promise<DeploymentObject | null> {

        return await Cluster.get<DeploymentObject>(context.cluster, `/apis/apps/v1/namespaces/${namespace}/deployments/${release}`);
    },

    /** Ready and complete: every replica updated, ready and available, as `rollout status` means it. */
    async rolledOut(context: Context, namespace: string, release: string): Promise<{ ok: boolean; status: unknown }> {

        const deployment = await internals.deployment(context, namespace, release);
        const s = deployment?.status;
        const replicas = deployment?.spec.replicas ?? -1;
        const ok = Boolean(deployment && s && s.observedGeneration === deployment.metadata.generation &&
            s.updatedReplicas === replicas && s.readyReplicas === replicas && s.availableReplicas === replicas && s.replicas === replicas);
        return { ok, status: { replicas, ...s } };
    },

    async query<T extends pg.QueryResultRow>(context: Context, database: string, sql: string): Promise<T[]> {

        const url = new URL(context.cluster.postgresUrl);
        url.pathname = `/${database}`;
        const client = new pg.Client({ connectionString: url.toString() });
        await client.connect();
        try {
            return (await client.query<T>(sql)).rows;
        }
        finally {
            await client.end();
        }
    },

    /** The migrations the repository holds, against what the database recorded. */
    async migrated(context: Context, database: string): Promise<{ ok: boolean; expected: string[]; applied: string[] }> {

        const expected = (await readdir(join(Cluster.root, 'migrations'))).filter((file) => file.endsWith('.ts')).sort();
        const applied: string[] = await internals.query<{ name: string }>(context, database, 'select name from knex_migrations order by name')
            .then((rows) => rows.map((row) => row.name), () => []);
        return { ok: expected.length > 0 && expected.every((name) => applied.includes(name)), expected, applied };
    },

    /** Events the API server recorded for the namespace, oldest first. */
    async events(context: Context, namespace: string): Promise<{ kind: string; name: string; reason: string; message: string; at: string }[]> {

        const list = await Cluster.get<List<{ involvedObject: { kind: string; name: string }; reason: string; message: string; firstTimestamp?: string; eventTime?: string; metadata: { creationTimestamp: string } }>>(context.cluster, `/api/v1/namespaces/${namespace}/events`);
        return (list?.items ?? [])
            .map((e) => ({ kind: e.involvedObject.kind, name: e.involvedObject.name, reason: e.reason, message: e.message, at: e.firstTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp }))
            .sort((a, b) => a.at.localeCompare(b.at));
    }
};


export const baseValues = internals.baseValues;


/** A namespace that enforces the restricted Pod Security profile. */
export const createNamespace = async function (context: Context, namespace: string): Promise<void> {

    const cluster = context.cluster;
    await Cluster.must('kubectl create namespace', Cluster.kubectl(cluster, ['create', 'namespace', namespace]));
    await Cluster.must('kubectl label namespace', Cluster.kubectl(cluster, ['label', 'namespace', namespace,
        'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/enforce-version=latest',
        'pod-security.kubernetes.io/warn=restricted', 'pod-security.kubernetes.io/audit=restricted']));
};


/** createNamespace, with the database Secret and Service. */
export const prepareNamespace = async function (context: Context, namespace: string): Promise<void> {

    await createNamespace(context, namespace);
    // The dev Secret as it is; k8s/local/postgres.yaml points the `postgres` Service at the node's
    // PostgreSQL (k8s/dev-postgres.yaml's StatefulSet needs an image that cannot be pulled here).
    for (const file of [join('k8s', 'dev-postgres-secret.yaml'), join('k8s', 'local', 'postgres.yaml')]) {
        await Cluster.must(`kubectl apply ${file}`, Cluster.kubectl(context.cluster, ['apply', '-n', namespace, '-f', join(Cluster.root, file)]));
    }
};


/** helm install --wait: hook Secret (if any) and migration Job first, then pods Ready through their probes. */
const install = async function (context: Context, options: { helm: string; namespace: string; release: string; database: string; values: Record<string, unknown>; availableOnReturn: boolean }): Promise<StepResult> {

    const file = await internals.valuesFile(context, options.release, { ...internals.baseValues, ...options.values });
    const run = await Cluster.helm(context.cluster, options.helm, ['install', options.release, context.chart, '--namespace', options.namespace, '--values', file, '--wait', '--timeout', '5m']);
    // Helm 4 waits with kstatus for the full rollout; Helm 3's legacy wait can return before
    // minReadySeconds have passed, which is why users follow it with `kubectl rollout status`.
    const onReturn = await internals.rolledOut(context, options.namespace, options.release);
    const status = await Cluster.rolloutStatus(context.cluster, options.namespace, options.release, '3m');
    const rollout = await internals.rolledOut(context, options.namespace, options.release);
    const pods = await internals.pods(context, options.namespace, options.release);
    const migrated = await internals.migrated(context, options.database);
    const events = await internals.events(context, options.namespace);
    const jobName = `${options.release}-migrate`;
    const jobCompleted = events.find((e) => e.kind === 'Job' && e.name.startsWith(options.release) && e.reason === 'Completed');
    const firstAppPod = events.find((e) => e.kind === 'ReplicaSet' && e.reason === 'SuccessfulCreate');
    // The Job's completion is recorded before the Deployment's first pod is created: Helm applies the
    // release's resources only after the pre-install hooks succeeded.
    const ordered = Boolean(jobCompleted && firstAppPod && jobCompleted.at <= firstAppPod.at);
    const failedSecretMounts = events.filter((e) => /CreateContainerConfigError|secret .* not found/i.test(`${e.reason} ${e.message}`));
    const ok = run.code === 0 && status.code === 0 && rollout.ok && (onReturn.ok || !options.availableOnReturn) && pods.length > 0 && pods.every(internals.ready) && migrated.ok && ordered && failedSecretMounts.length === 0;
    return {
        ok,
        details: {
            exitCode: run.code, output: (run.stdout + run.stderr).trim().split('\n').slice(-12),
            availableWhenHelmReturned: onReturn.ok, deploymentWhenHelmReturned: onReturn.status, deployment: rollout.status, pods: pods.map((pod) => `${pod.metadata.name} ${pod.status.phase} ready=${internals.ready(pod)}`),
            migrations: migrated, jobCompletedAt: jobCompleted?.at ?? null, firstPodCreatedAt: firstAppPod?.at ?? null, job: jobName,
            hookOrder: ordered, configErrors: failedSecretMounts.map((e) => e.message)
        }
    };
};


export const helm4Install = async function (context: Context): Promise<StepResult> {

    await prepareNamespace(context, helm4.namespace);
    return await install(context, { helm: context.helm4, ...helm4, database: 'item_api', values: { existingSecret: 'item-api-db' }, availableOnReturn: true });
};


/** Helm 3, with the chart's own hook Secret instead of an existing one, on its own database. */
export const helm3Install = async function (context: Context): Promise<StepResult> {

    await prepareNamespace(context, helm3.namespace);
    await internals.query(context, 'item_api', `create database ${helm3.database}`);
    return await install(context, {
        helm: context.helm3, ...helm3, database: helm3.database,
        values: { replicaCount: 1, database: { url: `postgres://item_api:item_api_dev@postgres:5432/${helm3.database}` } },
        availableOnReturn: false
    });
};


export const helmTest = async function (context: Context): Promise<StepResult> {

    const run = await Cluster.helm(context.cluster, context.helm4, ['test', helm4.release, '--namespace', helm4.namespace, '--timeout', '3m']);
    const events = await internals.events(context, helm4.namespace);
    const testPod = events.filter((e) => e.kind === 'Pod' && e.name === `${helm4.release}-test`).map((e) => `${e.reason}: ${e.message}`);
    const succeeded = /Phase:\s+Succeeded/.test(run.stdout);
    // The pod really ran: the kubelet reported starting its container.
    const ran = testPod.some((line) => line.startsWith('Started'));
    return { ok: run.code === 0 && succeeded && ran, details: { exitCode: run.code, output: run.stdout.trim().split('\n'), stderr: run.stderr.trim(), testPodEvents: testPod } };
};


/**
 * The chart refuses values that break the restricted profile; with the documented opt-out it renders
 * them, and the API server's own Pod Security admission must then refuse every pod (server-side
 * dry run), while the default rendering is admitted. The chart's rule list and the server agree.
 */
export const podSecurity = async function (context: Context): Promise<StepResult> {

    const render = async (name: string, values: Record<string, unknown>) => {

        const file = await internals.valuesFile(context, name, { ...internals.baseValues, existingSecret: 'item-api-db', ...values });
        return await Cluster.helm(context.cluster, context.helm4, ['template', helm4.release, context.chart, '--namespace', helm4.namespace, '--values', file]);
    };

    const apply = (manifests: string) => Cluster.kubectl(context.cluster, ['apply', '--dry-run=server', '-n', helm4.namespace, '-f', '-'], { input: manifests });
    const broken = { securityContext: { runAsUser: 0, allowPrivilegeEscalation: true, capabilities: { drop: ['ALL'], add: ['NET_ADMIN'] } } };
    const refusedByChart = await render('pod-security-refused', broken);
    const optedOut = await render('pod-security-opt-out', { ...broken, podSecurity: { allowNonRestricted: true } });
    const serverOnOptOut = await apply(optedOut.stdout);
    const serverOnDefault = await apply((await render('pod-security-default', {})).stdout);
    // Admission refuses a Pod outright and only warns for the workloads that would create such pods.
    const forbidden = [...serverOnOptOut.stderr.matchAll(/pods "([^"]+)" is forbidden: violates PodSecurity "restricted:latest"/g)].map((m) => m[1]);
    const warned = [...serverOnOptOut.stderr.matchAll(/would violate PodSecurity "restricted:latest".*?container "([^"]+)"/g)].map((m) => m[1]);
    const violations = { forbidden, warned };
    const ok = refusedByChart.code !== 0 && /Pod Security/.test(refusedByChart.stderr) && optedOut.code === 0 &&
        serverOnOptOut.code !== 0 && forbidden.includes(`${helm4.release}-test`) && warned.includes('item-api') && warned.includes('migrate') &&
        serverOnDefault.code === 0 && !/PodSecurity/.test(serverOnDefault.stderr);
    return {
        ok,
        details: {
            chartRefusal: refusedByChart.stderr.trim().split('\n').slice(0, 6), serverRefused: violations,
            serverOnOptOut: serverOnOptOut.stderr.split('\n').filter((line) => /PodSecurity/.test(line)), defaultAdmitted: serverOnDefault.code === 0, defaultPodSecurityWarnings: serverOnDefault.stderr.split('\n').filter((line) => /PodSecurity/.test(line))
        }
    };
};


export const rolloutRestart = async function (context: Context): Promise<StepResult> {

    const options: Proof.Options = {
        cluster: context.cluster, helm: context.helm4, namespace: helm4.namespace, release: helm4.release, chart: context.chart,
        values: { ...internals.baseValues, existingSecret: 'item-api-db' }, out: join(context.out, 'rollout'), rate: context.rate, short: context.short
    };
    const results: Proof.Result[] = [];
    for (const scenario of Proof.scenarios({ good: context.short ? 1 : 3, controls: 1 })) {
        results.push(await Proof.run(options, scenario));
    }

    // Back to the chart's own settings for the steps that follow.
    await Proof.apply(options, options.values);
    const verdict = Proof.judge(results);
    await Proof.picture(options.out, results, context.rate);
    // What failed, not only how many: a status alone does not say which of the service's 503s it was.
    const failures = Object.fromEntries(results.filter((result) => result.summary.failed).map((result) => [result.summary.scenario, result.summary.failureDetails]));
    return { ok: verdict.pass, details: { checks: verdict.checks, failures }, rollout: results };
};


/** helm upgrade raising the drain budget: pods roll and carry the grace period derived from it. */
export const helmUpgrade = async function (context: Context): Promise<StepResult> {

    const before = new Set((await internals.pods(context, helm4.namespace, helm4.release)).map((pod) => pod.metadata.uid));
    const shutdown = { delayMs: 5000, drainTimeoutMs: 20000, cleanupTimeoutMs: 5000, graceMarginSeconds: 2 };
    const file = await internals.valuesFile(context, 'upgrade', { ...internals.baseValues, existingSecret: 'item-api-db', shutdown });
    const run = await Cluster.helm(context.cluster, context.helm4, ['upgrade', helm4.release, context.chart, '--namespace', helm4.namespace, '--values', file, '--wait', '--timeout', '5m']);
    const rollout = await internals.rolledOut(context, helm4.namespace, helm4.release);
    const deployment = await internals.deployment(context, helm4.namespace, helm4.release);
    let pods = await internals.pods(context, helm4.namespace, helm4.release);
    for (let i = 0; i < 100 && pods.some((pod) => before.has(pod.metadata.uid)); ++i) {
        await sleep(500);                                   // Old pods may still be draining
        pods = await internals.pods(context, helm4.namespace, helm4.release);
    }

    const expected = requiredGracePeriodSeconds({ ...shutdown, preStopSleepSeconds: 0 });
    const template = deployment?.spec.template.spec.terminationGracePeriodSeconds;
    const drainEnv = deployment?.spec.template.spec.containers[0]?.env?.find((e) => e.name === 'SHUTDOWN_DRAIN_TIMEOUT_MS')?.value;
    const ok = run.code === 0 && rollout.ok && template === expected && drainEnv === '20000' &&
        pods.length > 0 && pods.every((pod) => !before.has(pod.metadata.uid) && pod.spec.terminationGracePeriodSeconds === expected);
    return { ok, details: { exitCode: run.code, expectedGraceSeconds: expected, templateGraceSeconds: template, drainEnv, pods: pods.map((pod) => `${pod.metadata.name} grace=${pod.spec.terminationGracePeriodSeconds}`), deployment: rollout.status } };
};


/** kubectl drain on the only node: the PDB lets one pod go and blocks the rest until uncordon. */
export const drain = async function (context: Context): Promise<StepResult> {

    const { cluster } = context;
    const node = 'item-api-node';
    const before = await internals.pods(context, helm4.namespace, helm4.release);
    const pdb = await Cluster.get<{ status: { disruptionsAllowed: number; currentHealthy: number; desiredHealthy: number } }>(cluster, `/apis/policy/v1/namespaces/${helm4.namespace}/poddisruptionbudgets/${helm4.release}`);
    const run = await Cluster.kubectl(cluster, ['drain', node, '--pod-selector', `app.kubernetes.io/instance=${helm4.release}`, '--delete-emptydir-data', '--ignore-daemonsets', '--timeout=40s']);
    const during = await internals.pods(context, helm4.namespace, helm4.release);
    const evicted = before.filter((pod) => !during.some((p) => p.metadata.uid === pod.metadata.uid && !p.metadata.deletionTimestamp));
    const pending = during.filter((pod) => pod.status.phase === 'Pending' && pod.status.conditions?.some((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable'));
    const blocked = /disruption budget/i.test(run.stdout + run.stderr);
    await Cluster.must('kubectl uncordon', Cluster.kubectl(cluster, ['uncordon', node]));
    await Cluster.must('kubectl rollout status', Cluster.rolloutStatus(cluster, helm4.namespace, helm4.release, '3m'));
    const after = await internals.rolledOut(context, helm4.namespace, helm4.release);
    const allowed = pdb?.status.disruptionsAllowed ?? -1;
    const ok = run.code !== 0 && blocked && allowed >= 1 && evicted.length === allowed && pending.length === allowed && after.ok;
    return {
        ok,
        details: {
            exitCode: run.code, blockedByPdb: blocked, pdb: pdb?.status ?? null, podsBefore: before.length,
            evicted: evicted.map((pod) => pod.metadata.name), pendingUnschedulable: pending.map((pod) => pod.metadata.name),
            afterUncordon: after.status, output: (run.stdout + run.stderr).trim().split('\n').slice(-8)
        }
    };
};


/** helm uninstall --wait, then nothing of either release is left in its namespace. */
export const uninstall = async function (context: Context): Promise<StepResult> {

    const { cluster } = context;
    const types = (await Cluster.must('kubectl api-resources', Cluster.kubectl(cluster, ['api-resources', '--verbs=list', '--namespaced', '-o', 'name'])))
        .stdout.split('\n').filter((type) => type && !/^events(\.events\.k8s\.io)?$/.test(type));
    const details: Record<string, unknown> = {};
    let ok = true;
    for (const [helm, target] of [[context.helm4, helm4], [context.helm3, helm3]] as const) {
        const run = await Cluster.helm(cluster, helm, ['uninstall', target.release, '--namespace', target.namespace, '--wait', '--timeout', '3m']);
        // The namespace's own objects and the ones prepared for it before the install stay.
        const outside = /^(configmap\/kube-root-ca\.crt|serviceaccount\/default|secret\/item-api-db|service\/postgres|endpointslice\.discovery\.k8s\.io\/postgres-node|endpoints\/postgres)$/;
        const remaining = async () => {

            const listed = await Cluster.must('kubectl get', Cluster.kubectl(cluster, ['get', types.join(','), '-n', target.namespace, '-o', 'name']));
            return listed.stdout.split('\n').filter((line) => line && !outside.test(line));
        };

        // helm returns once the release's objects are deleted; their pods then drain through the
        // shutdown sequence (the grace period) before the API server lets them go.
        const started = performance.now();
        const atReturn = await remaining();
        let left = atReturn;
        while (left.length && left.every((name) => name.startsWith('pod/')) && performance.now() - started < 90_000) {
            await sleep(1000);
            left = await remaining();
        }

        details[target.release] = { exitCode: run.code, output: (run.stdout + run.stderr).trim(), podsDrainingWhenHelmReturned: atReturn, left, goneAfterS: Math.round((performance.now() - started) / 100) / 10 };
        ok &&= run.code === 0 && left.length === 0;
    }

    return { ok, details };
};
