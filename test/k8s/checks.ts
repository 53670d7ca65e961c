import type { Manifest } from './render.ts';

// Rules a rendered chart must satisfy. They return problems instead of throwing so the
// negative-control tests can show each rule catches what it is meant to catch.

export interface Probe {
    httpGet?: { path?: string; port?: string | number };
    exec?: unknown;
    periodSeconds?: number;
    timeoutSeconds?: number;
    failureThreshold?: number;
    successThreshold?: number;
}

export interface EnvVar {
    name: string;
    value?: string;
    valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string } };
}

export interface Container {
    name: string;
    image: string;
    command?: string[];
    args?: string[];
    env?: EnvVar[];
    envFrom?: { secretRef?: { name: string }; configMapRef?: { name: string } }[];
    ports?: { name?: string; containerPort: number }[];
    livenessProbe?: Probe;
    readinessProbe?: Probe;
    startupProbe?: Probe;
    lifecycle?: { preStop?: { sleep?: { seconds: number }; exec?: unknown; httpGet?: unknown } };
    resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
    securityContext?: SecurityContext;
    volumeMounts?: { name: string; mountPath: string }[];
}

export interface SecurityContext {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    privileged?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
    seccompProfile?: { type?: string };
}

export interface PodSpec {
    containers: Container[];
    securityContext?: SecurityContext;
    automountServiceAccountToken?: boolean;
    serviceAccountName?: string;
    terminationGracePeriodSeconds?: number;
    volumes?: { name: string; emptyDir?: unknown }[];
}

export const dbHealthPath = '/health/ready';

/** The pod spec of a Deployment, Job or Pod. */
export function podSpecOf(manifest: Manifest): PodSpec {
    if (manifest.kind === 'Pod') return manifest.spec as unknown as PodSpec;
    const template = (manifest.spec as { template?: { spec?: PodSpec } } | undefined)?.template;
    if (!template?.spec) throw new Error(`${manifest.kind} ${manifest.metadata.name} has no pod template`);
    return template.spec;
}

export function mainContainer(manifest: Manifest): Container {
    const container = podSpecOf(manifest).containers[0];
    if (!container) throw new Error(`${manifest.kind} ${manifest.metadata.name} has no container`);
    return container;
}

export function envValue(container: Container, name: string): string | undefined {
    return container.env?.find((e) => e.name === name)?.value;
}

/** Probes: all three present, HTTP on the named port, and liveness never touching the DB. */
export function findProbeProblems(deployment: Manifest): string[] {
    const c = mainContainer(deployment);
    const problems: string[] = [];
    const expected = { startupProbe: '/health/startup', livenessProbe: '/health/live', readinessProbe: '/health/ready' } as const;
    for (const [kind, path] of Object.entries(expected) as [keyof typeof expected, string][]) {
        const probe = c[kind];
        if (!probe) {
            problems.push(`${kind} missing`);
            continue;
        }
        if (probe.httpGet?.port !== 'http') problems.push(`${kind} does not use the http port`);
        if (probe.httpGet?.path !== path) problems.push(`${kind} path is ${probe.httpGet?.path}, expected ${path}`);
    }
    for (const kind of ['livenessProbe', 'startupProbe'] as const) {
        if (c[kind]?.httpGet?.path === dbHealthPath) {
            problems.push(`${kind} hits ${dbHealthPath}, which pings the database: a DB blip would restart every pod`);
        }
    }
    return problems;
}

export interface ShutdownBudgets {
    delayMs: number;
    drainTimeoutMs: number;
    cleanupTimeoutMs: number;
    preStopSleepSeconds: number;
    graceMarginSeconds: number;
}

/** The documented formula (docs/deploy.md). */
export function requiredGracePeriodSeconds(b: ShutdownBudgets): number {
    return Math.ceil((b.delayMs + b.drainTimeoutMs + b.cleanupTimeoutMs + 1000) / 1000) + b.preStopSleepSeconds + b.graceMarginSeconds;
}

/**
 * The kubelet SIGKILLs at terminationGracePeriodSeconds, counted from preStop; the app
 * exits at most delay + drain + cleanup + 1 s after SIGTERM, which comes after preStop.
 */
export function findGracePeriodProblems(deployment: Manifest, graceMarginSeconds: number): string[] {
    const spec = podSpecOf(deployment);
    const c = mainContainer(deployment);
    const ms = (name: string): number => Number(envValue(c, name));
    const budgets: ShutdownBudgets = {
        delayMs: ms('SHUTDOWN_DELAY_MS'),
        drainTimeoutMs: ms('SHUTDOWN_DRAIN_TIMEOUT_MS'),
        cleanupTimeoutMs: ms('SHUTDOWN_CLEANUP_TIMEOUT_MS'),
        preStopSleepSeconds: c.lifecycle?.preStop?.sleep?.seconds ?? 0,
        graceMarginSeconds,
    };
    const problems: string[] = [];
    for (const [name, value] of Object.entries(budgets)) {
        if (!Number.isInteger(value) || value < 0) problems.push(`${name} is not a non-negative integer: ${value}`);
    }
    const required = requiredGracePeriodSeconds(budgets);
    const actual = spec.terminationGracePeriodSeconds ?? 30;
    if (actual < required) problems.push(`terminationGracePeriodSeconds ${actual} < ${required} needed by the budgets`);
    if (c.lifecycle?.preStop?.exec) problems.push('preStop uses exec (needs a shell and sleep in the image)');
    return problems;
}

/** Restricted-profile hardening for any pod the chart renders. */
export function findSecurityProblems(manifest: Manifest): string[] {
    const spec = podSpecOf(manifest);
    const where = `${manifest.kind} ${manifest.metadata.name}`;
    const problems: string[] = [];
    if (spec.automountServiceAccountToken !== false) problems.push(`${where}: service account token is mounted`);
    if (spec.securityContext?.runAsNonRoot !== true) problems.push(`${where}: pod runAsNonRoot is not true`);
    if (spec.securityContext?.seccompProfile?.type !== 'RuntimeDefault') problems.push(`${where}: pod seccomp is not RuntimeDefault`);
    const tmp = spec.volumes?.find((v) => v.name === 'tmp');
    if (!tmp?.emptyDir) problems.push(`${where}: no emptyDir volume for /tmp`);
    for (const c of spec.containers) {
        const sc = c.securityContext ?? {};
        const at = `${where} container ${c.name}`;
        if (sc.runAsNonRoot !== true) problems.push(`${at}: runAsNonRoot is not true`);
        if (sc.runAsUser === undefined || sc.runAsUser === 0) problems.push(`${at}: runAsUser is not a non-zero uid`);
        if (sc.readOnlyRootFilesystem !== true) problems.push(`${at}: root filesystem is writable`);
        if (sc.allowPrivilegeEscalation !== false) problems.push(`${at}: privilege escalation allowed`);
        if (sc.privileged === true) problems.push(`${at}: privileged`);
        if (!sc.capabilities?.drop?.includes('ALL')) problems.push(`${at}: capabilities not dropped`);
        if (sc.capabilities?.add?.length) problems.push(`${at}: capabilities added`);
        if (sc.seccompProfile?.type !== 'RuntimeDefault') problems.push(`${at}: seccomp is not RuntimeDefault`);
        if (!c.resources?.requests || !c.resources.limits) problems.push(`${at}: resources not set`);
        if (!c.volumeMounts?.some((m) => m.name === 'tmp' && m.mountPath === '/tmp')) problems.push(`${at}: /tmp not mounted`);
    }
    return problems;
}

export function hookWeight(manifest: Manifest): number {
    return Number(manifest.metadata.annotations?.['helm.sh/hook-weight'] ?? 0);
}

export function isHook(manifest: Manifest, event: string): boolean {
    return (manifest.metadata.annotations?.['helm.sh/hook'] ?? '').split(',').includes(event);
}

/**
 * A pre-install hook runs before the release's ordinary resources exist. Every Secret
 * or ConfigMap it reads must therefore come from outside the chart, or be a hook of
 * the same event with a lower weight; otherwise the first install deadlocks.
 */
export function findHookOrderingProblems(manifests: readonly Manifest[]): string[] {
    const problems: string[] = [];
    for (const hook of manifests.filter((m) => m.kind === 'Job' && isHook(m, 'pre-install'))) {
        const spec = podSpecOf(hook);
        const refs = new Set<string>();
        for (const c of spec.containers) {
            for (const e of c.env ?? []) {
                const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
                if (ref) refs.add(ref.name);
            }
            for (const f of c.envFrom ?? []) {
                const name = f.secretRef?.name ?? f.configMapRef?.name;
                if (name) refs.add(name);
            }
        }
        if (spec.serviceAccountName) refs.add(spec.serviceAccountName);
        for (const name of refs) {
            const dependency = manifests.find((m) => m.metadata.name === name && ['Secret', 'ConfigMap', 'ServiceAccount'].includes(m.kind));
            if (!dependency) continue;
            if (!isHook(dependency, 'pre-install') || hookWeight(dependency) >= hookWeight(hook)) {
                problems.push(`${hook.metadata.name} reads ${dependency.kind} ${name}, which does not exist yet when the pre-install hook runs`);
            }
        }
    }
    return problems;
}
