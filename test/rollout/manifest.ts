import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { parseAllDocuments } from 'yaml';


// Everything the simulator knows about the pods comes from a Deployment manifest: the one `helm
// template` renders from the chart, or a file. Fields left out take the API server's defaults.

export interface Probe {
    readonly path: string;
    readonly port: number;
    readonly initialDelaySeconds: number;
    readonly periodSeconds: number;
    readonly timeoutSeconds: number;
    readonly failureThreshold: number;
    readonly successThreshold: number;
}


export interface Model {
    readonly name: string;
    readonly replicas: number;
    readonly maxSurge: number;                      // Resolved against replicas, as the Deployment controller does
    readonly maxUnavailable: number;
    readonly minReadySeconds: number;
    readonly terminationGracePeriodSeconds: number;
    readonly preStopSleepSeconds: number;
    readonly port: number;
    readonly probes: { readonly startup?: Probe; readonly liveness?: Probe; readonly readiness?: Probe };
    readonly env: Readonly<Record<string, string>>;            // Literal values only
    readonly envFrom: readonly string[];                        // Variables filled from Secrets or fields: the caller supplies them
}


export interface Source {
    readonly description: string;
    readonly yaml: string;
}


type Json = Record<string, unknown>;


const internals = {
    execFile: promisify(execFile),

    // Defaults of the apps/v1 and core/v1 APIs for what a manifest may leave out.
    defaults: {
        replicas: 1,
        maxSurge: '25%',
        maxUnavailable: '25%',
        minReadySeconds: 0,
        terminationGracePeriodSeconds: 30,
        probe: { initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 1, failureThreshold: 3, successThreshold: 1 }
    },

    object(value: unknown, where: string): Json {

        if (!value || typeof value !== 'object' || Array.isArray(value)) {
            throw new Error(`Deployment manifest: ${where} is not an object`);
        }

        return value as Json;
    },

    number(value: unknown, fallback: number, where: string): number {

        if (value === undefined || value === null) {
            return fallback;
        }

        if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
            throw new Error(`Deployment manifest: ${where} must be a non-negative integer (got ${JSON.stringify(value)})`);
        }

        return value;
    },

    probe(raw: unknown, ports: Map<string, number>, kind: string): Probe | undefined {

        if (raw === undefined || raw === null) {
            return undefined;
        }

        const probe = internals.object(raw, `${kind}Probe`);
        const httpGet = internals.object(probe.httpGet, `${kind}Probe.httpGet (only httpGet probes are simulated)`);
        const port = typeof httpGet.port === 'number' ? httpGet.port : ports.get(String(httpGet.port));
        if (port === undefined) {
            throw new Error(`Deployment manifest: ${kind}Probe port ${JSON.stringify(httpGet.port)} is not a container port`);
        }

        const field = (name: keyof typeof internals.defaults.probe) => internals.number(probe[name], internals.defaults.probe[name], `${kind}Probe.${name}`);
        return {
            path: typeof httpGet.path === 'string' ? httpGet.path : '/',
            port,
            initialDelaySeconds: field('initialDelaySeconds'),
            periodSeconds: Math.max(field('periodSeconds'), 1),
            timeoutSeconds: Math.max(field('timeoutSeconds'), 1),
            failureThreshold: Math.max(field('failureThreshold'), 1),
            successThreshold: Math.max(field('successThreshold'), 1)
        };
    },

    // The simulator's own checkout is the chart's home; helm comes from the cache the CI tools script fills.
    findHelm(): string | undefined {

        if (process.env.HELM) {
            return process.env.HELM;
        }

        const dir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'item-api', 'go-bin');
        if (existsSync(dir)) {
            const binaries = readdirSync(dir).filter((file) => /^helm/.test(file)).sort();
            const helm3 = binaries.filter((file) => file.startsWith('helm3'));
            const pick = (helm3.length ? helm3 : binaries).at(-1);
            if (pick) {
                return join(dir, pick);
            }
        }

        return undefined;
    }
};


// intOrString of a rolling update: a percentage of replicas, rounded up for surge and down for
// unavailability; both zero is not allowed to stall the rollout, so unavailability becomes one.

export const resolveIntOrPercent = function (value: unknown, replicas: number, roundUp: boolean, where = 'value'): number {

    if (typeof value === 'number' && Number.isInteger(value) && value >= 0) {
        return value;
    }

    const match = typeof value === 'string' ? /^(\d+)%$/.exec(value.trim()) : null;
    if (!match) {
        throw new Error(`Deployment manifest: ${where} must be an integer or a percentage (got ${JSON.stringify(value)})`);
    }

    const scaled = Number(match[1]) * replicas / 100;
    return roundUp ? Math.ceil(scaled) : Math.floor(scaled);
};


export const rollingLimits = function (replicas: number, maxSurge: unknown, maxUnavailable: unknown): { maxSurge: number; maxUnavailable: number } {

    const surge = resolveIntOrPercent(maxSurge, replicas, true, 'maxSurge');
    const unavailable = resolveIntOrPercent(maxUnavailable, replicas, false, 'maxUnavailable');
    return { maxSurge: surge, maxUnavailable: surge === 0 && unavailable === 0 ? 1 : unavailable };
};


export const parse = function (yaml: string): Model {

    const documents = parseAllDocuments(yaml).map((document) => document.toJS() as unknown).filter(Boolean);
    const deployments = documents.filter((document) => (document as Json).kind === 'Deployment') as Json[];
    if (deployments.length !== 1) {
        throw new Error(`Deployment manifest: expected one Deployment, found ${deployments.length}`);
    }

    const deployment = deployments[0]!;
    const spec = internals.object(deployment.spec, 'spec');
    const strategy = spec.strategy === undefined ? {} : internals.object(spec.strategy, 'spec.strategy');
    if (strategy.type !== undefined && strategy.type !== 'RollingUpdate') {
        throw new Error(`Deployment manifest: only the RollingUpdate strategy is simulated (got ${JSON.stringify(strategy.type)})`);
    }

    const rolling = strategy.rollingUpdate === undefined ? {} : internals.object(strategy.rollingUpdate, 'spec.strategy.rollingUpdate');
    const replicas = internals.number(spec.replicas, internals.defaults.replicas, 'spec.replicas');
    const limits = rollingLimits(replicas, rolling.maxSurge ?? internals.defaults.maxSurge, rolling.maxUnavailable ?? internals.defaults.maxUnavailable);

    const podSpec = internals.object(internals.object(spec.template, 'spec.template').spec, 'spec.template.spec');
    const containers = podSpec.containers as Json[] | undefined;
    if (!Array.isArray(containers) || containers.length !== 1) {
        throw new Error('Deployment manifest: expected exactly one container');
    }

    const container = internals.object(containers[0], 'container');
    const ports = new Map<string, number>();
    for (const port of (container.ports ?? []) as Json[]) {
        ports.set(String(port.name ?? port.containerPort), Number(port.containerPort));
    }

    const httpPort = ports.get('http') ?? [...ports.values()][0];
    if (httpPort === undefined) {
        throw new Error('Deployment manifest: the container declares no port');
    }

    const env: Record<string, string> = {};
    const envFrom: string[] = [];
    for (const variable of (container.env ?? []) as Json[]) {
        if (typeof variable.value === 'string') {
            env[String(variable.name)] = variable.value;
        }
        else if (variable.valueFrom !== undefined) {
            envFrom.push(String(variable.name));
        }
        else {
            env[String(variable.name)] = variable.value === undefined ? '' : String(variable.value);
        }
    }

    const preStop = container.lifecycle ? (internals.object(container.lifecycle, 'lifecycle').preStop as Json | undefined) : undefined;
    if (preStop && !preStop.sleep) {
        throw new Error('Deployment manifest: only the native preStop sleep action is simulated');
    }

    const sleep = preStop?.sleep ? internals.object(preStop.sleep, 'lifecycle.preStop.sleep') : undefined;
    const probes: { startup?: Probe; liveness?: Probe; readiness?: Probe } = {};
    for (const kind of ['startup', 'liveness', 'readiness'] as const) {
        const probe = internals.probe(container[`${kind}Probe`], ports, kind);
        if (probe) {
            probes[kind] = probe;
        }
    }

    return {
        name: String(internals.object(deployment.metadata, 'metadata').name),
        replicas,
        ...limits,
        minReadySeconds: internals.number(spec.minReadySeconds, internals.defaults.minReadySeconds, 'spec.minReadySeconds'),
        terminationGracePeriodSeconds: internals.number(podSpec.terminationGracePeriodSeconds, internals.defaults.terminationGracePeriodSeconds, 'terminationGracePeriodSeconds'),
        preStopSleepSeconds: internals.number(sleep?.seconds, 0, 'lifecycle.preStop.sleep.seconds'),
        port: httpPort,
        probes,
        env,
        envFrom
    };
};


// `helm template` of the chart with value overrides, as a CD pipeline would render it.

export const renderChart = async function (options: { chart: string; values: Record<string, string | number>; kubeVersion: string }): Promise<Source> {

    const helm = internals.findHelm();
    if (!helm) {
        throw new Error('helm not found: set HELM, run .ci/k8s-tools.sh, or pass --manifest FILE');
    }

    const sets = Object.entries(options.values).flatMap(([key, value]) => [typeof value === 'number' ? '--set' : '--set-string', `${key}=${value}`]);
    const args = ['template', 'rollout', options.chart, '--kube-version', options.kubeVersion, '--show-only', 'templates/deployment.yaml', ...sets];
    const { stdout } = await internals.execFile(helm, args, { maxBuffer: 16 * 1024 * 1024 });
    return { description: `helm template ${options.chart} --kube-version ${options.kubeVersion} ${sets.join(' ')}`.trim(), yaml: stdout };
};


export const chartAvailable = function (chart: string): boolean {

    return existsSync(join(chart, 'Chart.yaml')) && Boolean(internals.findHelm());
};


// A file stands in for the chart when helm is not at hand. Chart values the scenarios override are
// mapped onto the manifest here, and only these: anything else must come from the chart itself.

export const readFixture = async function (file: string, values: Record<string, string | number>): Promise<Source> {

    const documents = parseAllDocuments(await readFile(file, 'utf8')).map((document) => document.toJS() as Json);
    const deployment = documents.find((document) => document?.kind === 'Deployment');
    if (!deployment) {
        throw new Error(`${file}: no Deployment`);
    }

    const spec = deployment.spec as Json;
    const podSpec = (spec.template as Json).spec as Json;
    const container = (podSpec.containers as Json[])[0]!;
    const env = (container.env ?? []) as Json[];
    const setEnv = (name: string, value: string | number) => {

        const existing = env.find((variable) => variable.name === name);
        if (existing) {
            existing.value = String(value);
        }
        else {
            env.push({ name, value: String(value) });
        }

        container.env = env;
    };

    const envValues: Record<string, string> = {
        'shutdown.delayMs': 'SHUTDOWN_DELAY_MS',
        'shutdown.drainTimeoutMs': 'SHUTDOWN_DRAIN_TIMEOUT_MS',
        'shutdown.cleanupTimeoutMs': 'SHUTDOWN_CLEANUP_TIMEOUT_MS',
        'app.logLevel': 'LOG_LEVEL'
    };

    for (const [key, value] of Object.entries(values)) {
        const probe = /^probes\.(startup|liveness|readiness)\.(\w+)$/.exec(key);
        if (envValues[key]) {
            setEnv(envValues[key], value);
        }
        else if (key === 'otel.sdkDisabled') {
            setEnv('OTEL_SDK_DISABLED', String(value));
        }
        else if (key === 'replicaCount') {
            spec.replicas = Number(value);
        }
        else if (key === 'minReadySeconds') {
            spec.minReadySeconds = Number(value);
        }
        else if (key === 'terminationGracePeriodSeconds') {
            podSpec.terminationGracePeriodSeconds = Number(value);
        }
        else if (key === 'strategy.maxSurge' || key === 'strategy.maxUnavailable') {
            const rolling = ((spec.strategy as Json).rollingUpdate ??= {}) as Json;
            rolling[key.slice('strategy.'.length)] = /%$/.test(String(value)) ? String(value) : Number(value);
        }
        else if (key === 'preStopSleepSeconds') {
            container.lifecycle = Number(value) > 0 ? { preStop: { sleep: { seconds: Number(value) } } } : undefined;
        }
        else if (probe) {
            const field = probe[2] === 'path' ? 'httpGet' : probe[2]!;
            const target = container[`${probe[1]}Probe`] as Json;
            if (field === 'httpGet') {
                (target.httpGet as Json).path = String(value);
            }
            else {
                target[field] = Number(value);
            }
        }
        else if (key !== 'database.url') {
            throw new Error(`${file}: the chart value ${key} has no mapping onto a fixture; render the chart with helm instead`);
        }
    }

    const { stringify } = await import('yaml');
    const overrides = Object.entries(values).map(([key, value]) => `${key}=${value}`).join(' ');
    return { description: `${file}${overrides ? ` with ${overrides}` : ''}`, yaml: stringify(deployment) };
};
