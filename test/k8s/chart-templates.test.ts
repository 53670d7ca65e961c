import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
    envValue, findGracePeriodProblems, findHookOrderingProblems, findProbeProblems, findSecurityProblems,
    hookWeight, isHook, mainContainer, podSpecOf, requiredGracePeriodSeconds,
} from './checks.ts';
import { chartDir, find, helmTemplate, kinds, kubeVersions, parseManifests, valuesFile } from './render.ts';
import type { Manifest } from './render.ts';
import { loadTools, run } from './tools.ts';

const { helm3, helm4 } = loadTools();
// Helm 4 is the current major; the matrix renders every value set with Helm 3 as well.
const render = (values: object, kubeVersion?: string) => helmTemplate(helm4, values, kubeVersion);
async function renderOk(values: object, kubeVersion?: string): Promise<Manifest[]> {
    const result = await render(values, kubeVersion);
    expect(result.code, result.stderr).toBe(0);
    return result.manifests;
}
const annotation = (m: Manifest, name: string): string | undefined => m.metadata.annotations?.[name];

describe('terminationGracePeriodSeconds', () => {
    it('is derived from the default budgets: ceil((5000 + 10000 + 5000 + 1000) / 1000) + 0 + 2', async () => {
        const deployment = find(await renderOk({}), 'Deployment');
        expect(podSpecOf(deployment).terminationGracePeriodSeconds).toBe(23);
        const c = mainContainer(deployment);
        expect([envValue(c, 'SHUTDOWN_DELAY_MS'), envValue(c, 'SHUTDOWN_DRAIN_TIMEOUT_MS'), envValue(c, 'SHUTDOWN_CLEANUP_TIMEOUT_MS')])
            .toEqual(['5000', '10000', '5000']);
    });

    it.each([
        { delayMs: 1001, drainTimeoutMs: 1000, cleanupTimeoutMs: 500, preStopSleepSeconds: 0, graceMarginSeconds: 2 },
        { delayMs: 0, drainTimeoutMs: 30000, cleanupTimeoutMs: 10000, preStopSleepSeconds: 5, graceMarginSeconds: 0 },
        { delayMs: 12345, drainTimeoutMs: 67890, cleanupTimeoutMs: 999, preStopSleepSeconds: 7, graceMarginSeconds: 3 },
    ])('rounds up and adds preStop and margin for %o', async (b) => {
        const deployment = find(await renderOk({
            shutdown: { delayMs: b.delayMs, drainTimeoutMs: b.drainTimeoutMs, cleanupTimeoutMs: b.cleanupTimeoutMs, graceMarginSeconds: b.graceMarginSeconds },
            preStopSleepSeconds: b.preStopSleepSeconds,
        }), 'Deployment');
        expect(podSpecOf(deployment).terminationGracePeriodSeconds).toBe(requiredGracePeriodSeconds(b));
        expect(findGracePeriodProblems(deployment, b.graceMarginSeconds)).toEqual([]);
    });

    it('keeps an explicit value that covers the budgets', async () => {
        const deployment = find(await renderOk({ terminationGracePeriodSeconds: 90 }), 'Deployment');
        expect(podSpecOf(deployment).terminationGracePeriodSeconds).toBe(90);
    });

    it('treats an empty value as derived', async () => {
        const deployment = find(await renderOk({ terminationGracePeriodSeconds: '' }), 'Deployment');
        expect(podSpecOf(deployment).terminationGracePeriodSeconds).toBe(23);
    });

    it.each([helm3, helm4])('fails rendering with both numbers when set below the budgets (%s)', async (helm) => {
        const result = await helmTemplate(helm, { terminationGracePeriodSeconds: 10 });
        expect(result.code).not.toBe(0);
        expect(result.stderr).toContain('terminationGracePeriodSeconds 10 is below the 23 seconds');
    });

    it('counts the preStop sleep in the rule', async () => {
        const result = await render({ terminationGracePeriodSeconds: 23, preStopSleepSeconds: 5 });
        expect(result.code).not.toBe(0);
        expect(result.stderr).toMatch(/terminationGracePeriodSeconds 23 is below the 28 seconds/);
    });
});

describe('probes', () => {
    it('point startup, liveness and readiness at their own endpoints with the configured timings', async () => {
        const deployment = find(await renderOk({ probes: { readiness: { path: '/health/ready', initialDelaySeconds: 1, periodSeconds: 3, timeoutSeconds: 2, failureThreshold: 4, successThreshold: 2 } } }), 'Deployment');
        expect(findProbeProblems(deployment)).toEqual([]);
        const c = mainContainer(deployment);
        expect(c.livenessProbe?.httpGet?.path).toBe('/health/live');
        expect(c.livenessProbe?.httpGet?.path).not.toBe('/health/ready');
        expect(c.startupProbe?.httpGet?.path).toBe('/health/startup');
        expect(c.readinessProbe).toMatchObject({ periodSeconds: 3, timeoutSeconds: 2, failureThreshold: 4, successThreshold: 2 });
    });

    it('negative control: a liveness probe on the DB-backed path is flagged', async () => {
        const deployment = find(await renderOk({
            probes: { liveness: { path: '/health/ready', initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3, successThreshold: 1 } },
        }), 'Deployment');
        expect(findProbeProblems(deployment)).toContain(
            'livenessProbe hits /health/ready, which pings the database: a DB blip would restart every pod');
    });

    it('negative control: a grace period the budgets do not fit is flagged by the check too', async () => {
        const deployment = find(await renderOk({}), 'Deployment');
        podSpecOf(deployment).terminationGracePeriodSeconds = 20;
        expect(findGracePeriodProblems(deployment, 2)).toEqual(['terminationGracePeriodSeconds 20 < 23 needed by the budgets']);
    });
});

describe('pod hardening', () => {
    it('applies to the Deployment, the migration Job and the test Pod', async () => {
        const manifests = await renderOk({});
        const pods = manifests.filter((m) => ['Deployment', 'Job', 'Pod'].includes(m.kind));
        expect(pods).toHaveLength(3);
        expect(pods.flatMap(findSecurityProblems)).toEqual([]);
        const deployment = find(manifests, 'Deployment');
        expect(mainContainer(deployment).securityContext).toMatchObject({
            runAsNonRoot: true, runAsUser: 1000, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
        });
        expect(podSpecOf(deployment).automountServiceAccountToken).toBe(false);
    });

    it('negative control: a writable root filesystem is flagged', async () => {
        const manifests = await renderOk({ securityContext: { readOnlyRootFilesystem: false } });
        expect(findSecurityProblems(find(manifests, 'Deployment'))).toContain(
            'Deployment item-api container item-api: root filesystem is writable');
    });

    it('rolls out with maxUnavailable 0 and maxSurge 1, two replicas and a PDB', async () => {
        const manifests = await renderOk({});
        const deployment = find(manifests, 'Deployment');
        expect(deployment.spec).toMatchObject({ replicas: 2, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } });
        expect(find(manifests, 'PodDisruptionBudget').spec).toMatchObject({ maxUnavailable: 1 });
    });

    it('drops the PDB for a single replica and the replicas field under an HPA', async () => {
        expect(kinds(await renderOk({ replicaCount: 1 }))).not.toContain('PodDisruptionBudget');
        const manifests = await renderOk({ autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 5 } });
        expect(find(manifests, 'Deployment').spec?.replicas).toBeUndefined();
        expect(find(manifests, 'HorizontalPodAutoscaler')).toMatchObject({ apiVersion: 'autoscaling/v2', spec: { minReplicas: 3, maxReplicas: 5 } });
        expect(kinds(manifests)).toContain('PodDisruptionBudget');
    });

    it('refuses a strategy that can never progress', async () => {
        const result = await render({ strategy: { maxSurge: 0, maxUnavailable: 0 } });
        expect(result.code).not.toBe(0);
        expect(result.stderr).toContain('cannot both be 0');
    });
});

describe('credentials', () => {
    const password = 'pa55-w0rd-never-in-a-pod-spec';

    it('keeps the secret value out of the Deployment and Job, referencing the chart Secret instead', async () => {
        const manifests = await renderOk({ database: { host: 'db', user: 'app', password, name: 'items' } });
        const secret = find(manifests, 'Secret');
        expect((secret as { stringData?: Record<string, string> }).stringData?.DATABASE_URL).toBe(`postgres://app:${password}@db:5432/items`);
        for (const m of manifests.filter((x) => x.kind !== 'Secret')) {
            expect(JSON.stringify(m)).not.toContain(password);
            expect(JSON.stringify(m)).not.toContain('postgres://');
        }
        const deployment = find(manifests, 'Deployment');
        expect(mainContainer(deployment).env?.find((e) => e.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef)
            .toEqual({ name: secret.metadata.name, key: 'DATABASE_URL' });
        expect(annotation(deployment.spec?.template as Manifest, 'checksum/secret')).toMatch(/^[0-9a-f]{64}$/);
    });

    it('rolls the pods when the Secret content changes', async () => {
        const checksum = async (pw: string) =>
            annotation(find(await renderOk({ database: { password: pw } }), 'Deployment').spec?.template as Manifest, 'checksum/secret');
        expect(await checksum('one')).not.toBe(await checksum('two'));
    });

    it('percent-encodes credential parts', async () => {
        const secret = find(await renderOk({ database: { user: 'a@b', password: 'p:w/d' } }), 'Secret');
        expect((secret as { stringData?: Record<string, string> }).stringData?.DATABASE_URL).toBe('postgres://a%40b:p%3Aw%2Fd@postgres:5432/item_api');
    });

    it('uses existingSecret with the configured key and renders no Secret', async () => {
        const manifests = await renderOk({ existingSecret: 'shared-db', existingSecretKey: 'uri' });
        expect(kinds(manifests)).not.toContain('Secret');
        for (const m of [find(manifests, 'Deployment'), find(manifests, 'Job')]) {
            expect(mainContainer(m).env?.find((e) => e.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef).toEqual({ name: 'shared-db', key: 'uri' });
        }
        expect(annotation(find(manifests, 'Deployment').spec?.template as Manifest, 'checksum/secret')).toBeUndefined();
    });

    it('defaults the existingSecret key to DATABASE_URL', async () => {
        const deployment = find(await renderOk({ existingSecret: 'shared-db' }), 'Deployment');
        expect(mainContainer(deployment).env?.find((e) => e.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef?.key).toBe('DATABASE_URL');
    });
});

describe('migrations', () => {
    it('run as a bounded pre-install/pre-upgrade hook after the credentials Secret', async () => {
        const manifests = await renderOk({});
        const job = find(manifests, 'Job', '-migrate');
        const secret = find(manifests, 'Secret', '-db-migrate');
        for (const m of [job, secret]) {
            expect(isHook(m, 'pre-install') && isHook(m, 'pre-upgrade'), m.kind).toBe(true);
            expect(annotation(m, 'helm.sh/hook-delete-policy')).toContain('before-hook-creation');
        }
        expect(hookWeight(secret)).toBeLessThan(hookWeight(job));
        // Helm never deletes hook resources on uninstall: the Job's copy goes once the hooks end.
        expect(annotation(secret, 'helm.sh/hook-delete-policy')).toContain('hook-succeeded');
        expect(annotation(secret, 'helm.sh/hook-delete-policy')).toContain('hook-failed');
        expect(mainContainer(job).env?.find((e) => e.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef?.name).toBe('item-api-db-migrate');
        expect(annotation(job, 'helm.sh/hook-delete-policy')).toContain('hook-succeeded');
        expect(job.spec).toMatchObject({ activeDeadlineSeconds: 300, backoffLimit: 1, ttlSecondsAfterFinished: 3600 });
        expect(findHookOrderingProblems(manifests)).toEqual([]);
    });

    it('give the pods a Secret that is a release resource, so uninstall removes it', async () => {
        const manifests = await renderOk({});
        const secret = find(manifests, 'Secret', '-db');
        expect(secret.metadata.annotations?.['helm.sh/hook']).toBeUndefined();
        expect(mainContainer(find(manifests, 'Deployment')).env?.find((e) => e.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef?.name).toBe('item-api-db');
    });

    it('use the app image, the migrate command and no app selector labels', async () => {
        const manifests = await renderOk({ image: { repository: 'registry.example/item-api', tag: 'abc123' } });
        const job = find(manifests, 'Job');
        const deployment = find(manifests, 'Deployment');
        expect(mainContainer(job).image).toBe('registry.example/item-api:abc123');
        expect(mainContainer(job).image).toBe(mainContainer(deployment).image);
        expect(mainContainer(job).command).toEqual(['node', 'src/migrate.ts']);
        expect(podSpecOf(job)).toMatchObject({ restartPolicy: 'Never' });
        const selector = (deployment.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
        const jobLabels = (job.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
        expect(Object.entries(selector).every(([k, v]) => jobLabels[k] === v)).toBe(false);
    });

    it('leave schema changes to the Job, not to the pods', async () => {
        expect(envValue(mainContainer(find(await renderOk({}), 'Deployment')), 'MIGRATE_ON_START')).toBe('false');
    });

    it('negative control: a credentials Secret that is not an earlier hook is flagged', async () => {
        const manifests = await renderOk({});
        const secret = find(manifests, 'Secret', '-db-migrate');
        delete secret.metadata.annotations;
        expect(findHookOrderingProblems(manifests)).toEqual([
            'item-api-migrate reads Secret item-api-db-migrate, which does not exist yet when the pre-install hook runs',
        ]);
    });
});

describe('native preStop sleep', () => {
    // GA since 1.34, the chart's floor: no version gate, the same rendering everywhere.
    it.each([...kubeVersions])('renders lifecycle.preStop.sleep on %s, never exec', async (v) => {
        const c = mainContainer(find(await renderOk({ preStopSleepSeconds: 4 }, v), 'Deployment'));
        expect(c.lifecycle).toEqual({ preStop: { sleep: { seconds: 4 } } });
    });

    it('is off by default, with no lifecycle at all (no stopSignal: alpha through 1.37)', async () => {
        expect(mainContainer(find(await renderOk({}), 'Deployment')).lifecycle).toBeUndefined();
    });
});

describe('service, metrics and options', () => {
    it('names the http and metrics ports and points the ServiceMonitor at metrics', async () => {
        const manifests = await renderOk({ metrics: { serviceMonitor: { enabled: true } } });
        expect(mainContainer(find(manifests, 'Deployment')).ports).toEqual([
            { name: 'http', containerPort: 3000, protocol: 'TCP' },
            { name: 'metrics', containerPort: 9464, protocol: 'TCP' },
        ]);
        const monitor = find(manifests, 'ServiceMonitor');
        expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1');
        expect(monitor.spec).toMatchObject({ endpoints: [{ port: 'metrics', path: '/metrics' }] });
    });

    it('refuses a ServiceMonitor without the Prometheus exporter', async () => {
        const result = await render({ otel: { metricsExporter: 'otlp' }, metrics: { serviceMonitor: { enabled: true } } });
        expect(result.code).not.toBe(0);
        expect(result.stderr).toContain('otel.metricsExporter=prometheus');
    });

    it('passes the runtime settings the app validates', async () => {
        const c = mainContainer(find(await renderOk({ env: [{ name: 'EXTRA', value: '1' }] }), 'Deployment'));
        expect(Object.fromEntries((c.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]))).toMatchObject({
            NODE_ENV: 'production', HOST: '0.0.0.0', PORT: '3000', MIGRATE_ON_START: 'false',
            OTEL_METRICS_EXPORTER: 'prometheus', OTEL_SERVICE_NAME: 'item-api', EXTRA: '1',
        });
    });

    it('passes the load limits, and refuses limits without sampling as the app does', async () => {
        const c = mainContainer(find(await renderOk({ app: { load: { sampleIntervalMs: 50, maxEventLoopDelayMs: 80, maxEventLoopUtilization: 0.9, maxDatabaseWaiting: 25, maxAcceptQueue: 8, maxHeapUsedBytes: 0, maxRssBytes: 3221225472 } } }), 'Deployment'));
        expect(Object.fromEntries((c.env ?? []).filter((e) => e.name.startsWith('LOAD_')).map((e) => [e.name, e.value]))).toEqual({
            LOAD_SAMPLE_INTERVAL_MS: '50', LOAD_MAX_EVENT_LOOP_DELAY_MS: '80', LOAD_MAX_EVENT_LOOP_UTILIZATION: '0.9', LOAD_MAX_DB_WAITING: '25',
            LOAD_MAX_ACCEPT_QUEUE: '8', LOAD_MAX_HEAP_USED_BYTES: '0', LOAD_MAX_RSS_BYTES: '3221225472'
        });
        const off = { sampleIntervalMs: 0, maxEventLoopDelayMs: 0, maxEventLoopUtilization: 0, maxDatabaseWaiting: 0, maxAcceptQueue: 0, maxHeapUsedBytes: 0, maxRssBytes: 0 };
        const refused = await render({ app: { load: { ...off, maxRssBytes: 1 } } });
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toContain('app.load.sampleIntervalMs must be at least 1 when a load limit is set');

        // Utilization and the pool's queue are not hapi's sampler's: they render without an interval.
        await renderOk({ app: { load: { ...off, maxEventLoopUtilization: 0.85, maxDatabaseWaiting: 10 } } });

        // Unset, the app's own default applies: as many waiting as the pool has connections.
        const defaults = mainContainer(find(await renderOk({}), 'Deployment'));
        expect((defaults.env ?? []).map((e) => e.name)).not.toContain('LOAD_MAX_DB_WAITING');
    });

    it('refuses a headers timeout that does not exceed the keep-alive timeout', async () => {
        const result = await render({ app: { httpKeepAliveTimeoutMs: 65000, httpHeadersTimeoutMs: 65000 } });
        expect(result.code).not.toBe(0);
        expect(result.stderr).toContain('app.httpHeadersTimeoutMs 65000 must be above app.httpKeepAliveTimeoutMs 65000');
    });

    it('renders overrides given as --set/--set-string, as CD pipelines and the rollout simulator pass them', async () => {
        const result = await run(helm3, [
            'template', 'rollout', chartDir, '--kube-version', '1.34', '--show-only', 'templates/deployment.yaml',
            '--set', 'shutdown.drainTimeoutMs=0', '--set', 'preStopSleepSeconds=2', '--set', 'probes.readiness.periodSeconds=1',
            '--set-string', 'otel.sdkDisabled=true', '--set-string', 'strategy.maxSurge=25%', '--set-string', 'database.url=postgres://u:p@h:5432/d',
        ]);
        expect(result.code, result.stderr).toBe(0);
        const deployment = find(parseManifests(result.stdout), 'Deployment');
        const c = mainContainer(deployment);
        expect(envValue(c, 'OTEL_SDK_DISABLED')).toBe('true');
        expect(envValue(c, 'SHUTDOWN_DRAIN_TIMEOUT_MS')).toBe('0');
        expect(deployment.spec).toMatchObject({ strategy: { rollingUpdate: { maxSurge: '25%' } } });
        expect(podSpecOf(deployment).terminationGracePeriodSeconds).toBe(Math.ceil((5000 + 0 + 5000 + 1000) / 1000) + 2 + 2);
    });

    it('renders only the default set of objects by default', async () => {
        expect(kinds(await renderOk({}))).toEqual(['Deployment', 'Job', 'Pod', 'PodDisruptionBudget', 'Secret', 'Secret', 'Service']);
    });
});

describe('values.schema.json', () => {
    it.each([
        ['a string replica count', { replicaCount: 'two' }, 'replicaCount'],
        ['a negative delay', { shutdown: { delayMs: -1 } }, 'delayMs'],
        ['a fractional drain timeout', { shutdown: { drainTimeoutMs: 1500.5 } }, 'drainTimeoutMs'],
        ['an absurd cleanup timeout', { shutdown: { cleanupTimeoutMs: 86_400_000 } }, 'cleanupTimeoutMs'],
        ['a drain timeout as a duration string', { shutdown: { drainTimeoutMs: '10s' } }, 'drainTimeoutMs'],
        ['a negative grace period', { terminationGracePeriodSeconds: -5 }, 'terminationGracePeriodSeconds'],
        ['a negative preStop sleep', { preStopSleepSeconds: -1 }, 'preStopSleepSeconds'],
        ['a probe period as a string', { probes: { liveness: { periodSeconds: '10s' } } }, 'periodSeconds'],
        ['a liveness successThreshold above 1', { probes: { liveness: { successThreshold: 2 } } }, 'successThreshold'],
        ['an unknown shutdown key', { shutdown: { delaySeconds: 5 } }, 'delaySeconds'],
        ['a non-boolean toggle', { autoscaling: { enabled: 'yes' } }, 'enabled'],
        ['an unknown exporter', { otel: { tracesExporter: 'jaeger' } }, 'tracesExporter'],
        ['a privileged port', { containerPort: 80 }, 'containerPort'],
        ['a drain timeout above the app\'s bound', { shutdown: { drainTimeoutMs: 300_001 } }, 'drainTimeoutMs'],
        ['a delay above the app\'s bound', { shutdown: { delayMs: 120_001 } }, 'delayMs'],
        ['a boolean toggle as an arbitrary string', { otel: { sdkDisabled: 'yes' } }, 'sdkDisabled'],
    ])('rejects %s', async (_label, values, field) => {
        const result = await render(values);
        expect(result.code).not.toBe(0);
        expect(result.stderr).toContain('schema');
        expect(result.stderr).toContain(field);
    });

    it('gives the app container the NODE_OPTIONS of app.nodeOptions, and none when it is empty', async () => {
        const env = (manifests: Manifest[]) => (mainContainer(find(manifests, 'Deployment')) as { env?: { name: string; value?: string }[] }).env ?? [];
        expect(env(await renderOk({}))).toContainEqual({ name: 'NODE_OPTIONS', value: '--max-semi-space-size=16' });
        expect(env(await renderOk({ app: { nodeOptions: '' } })).map((e) => e.name)).not.toContain('NODE_OPTIONS');
        // One entry per name: the API server's server-side apply refuses duplicates (found on the real cluster).
        const own = env(await renderOk({ env: [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=100' }] })).filter((e) => e.name === 'NODE_OPTIONS');
        expect(own).toEqual([{ name: 'NODE_OPTIONS', value: '--max-old-space-size=100' }]);
    });

    it('pins the image by digest when one is given, and refuses what is not a sha256 digest', async () => {
        const digest = `sha256:${'ab'.repeat(32)}`;
        const manifests = await renderOk({ image: { repository: 'localhost:5001/item-api', tag: 'v1', digest } });
        expect(mainContainer(find(manifests, 'Deployment')).image).toBe(`localhost:5001/item-api:v1@${digest}`);
        expect(mainContainer(find(manifests, 'Job')).image).toBe(`localhost:5001/item-api:v1@${digest}`);
        const refused = await render({ image: { repository: 'item-api', digest: 'latest' } });
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toMatch(/digest/);
    });

    it('accepts a numeric image tag (all-digit commit ids)', async () => {
        expect(mainContainer(find(await renderOk({ image: { tag: 1234567 } }), 'Deployment')).image).toBe('item-api:1234567');
    });
});

describe('NOTES.txt', () => {
    // helm template never prints NOTES, and install --dry-run needs a cluster's version:
    // render a copy of the chart where the notes are the body of a YAML block scalar.
    async function notes(helm: string, values: object): Promise<string> {
        const dir = mkdtempSync(join(tmpdir(), 'item-api-notes-'));
        try {
            const copy = join(dir, 'chart');
            cpSync(chartDir, copy, { recursive: true });
            const text = readFileSync(join(copy, 'templates', 'NOTES.txt'), 'utf8');
            const indented = text.split('\n').map((line) => (line.trim() ? `  ${line}` : line)).join('\n');
            writeFileSync(join(copy, 'templates', 'notes-check.yaml'), `notes: |\n${indented}`);
            const result = await run(helm, ['template', 'item-api', copy, '--kube-version', '1.34', '--show-only', 'templates/notes-check.yaml', '--values', valuesFile(values)]);
            expect(result.code, result.stderr).toBe(0);
            return (parseManifests(result.stdout)[0] as unknown as { notes: string }).notes;
        }
        finally {
            rmSync(dir, { recursive: true, force: true });
        }
    }

    it.each([helm3, helm4])('explain the grace period, the test and the Secret cleanup (%s)', async (helm) => {
        const text = await notes(helm, {});
        expect(text).toContain('terminationGracePeriodSeconds is 23 s');
        expect(text).toContain('helm test item-api');
        expect(text).toContain('Secret item-api-db, removed by `helm uninstall`');
        expect(await notes(helm, { existingSecret: 'shared-db' })).toContain('kubectl rollout restart deployment/item-api');
    });
});
