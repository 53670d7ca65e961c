import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import * as Deployment from './deployment.ts';
import * as Manifest from './manifest.ts';


// The pure pieces of the rollout simulator; the simulator itself runs with `npm run rollout`.

const fixture = fileURLToPath(new URL('fixtures/deployment.yaml', import.meta.url));

const pod = (name: string, available: boolean, readySince: number | null = available ? 0 : null) => ({ name, ready: readySince !== null, available, readySince });


describe('rolling update limits', () => {

    it('rounds surge up and unavailability down, as the Deployment controller does', () => {

        expect(Manifest.rollingLimits(3, '25%', '25%')).toEqual({ maxSurge: 1, maxUnavailable: 0 });
        expect(Manifest.rollingLimits(10, '25%', '25%')).toEqual({ maxSurge: 3, maxUnavailable: 2 });
        expect(Manifest.rollingLimits(4, 2, '50%')).toEqual({ maxSurge: 2, maxUnavailable: 2 });
        expect(Manifest.rollingLimits(3, '100%', 0)).toEqual({ maxSurge: 3, maxUnavailable: 0 });
    });

    it('makes unavailability one when both resolve to zero', () => {

        expect(Manifest.rollingLimits(3, '10%', '10%')).toEqual({ maxSurge: 1, maxUnavailable: 0 });
        expect(Manifest.rollingLimits(3, 0, '10%')).toEqual({ maxSurge: 0, maxUnavailable: 1 });
    });

    it('rejects what is neither an integer nor a percentage', () => {

        expect(() => Manifest.resolveIntOrPercent('1.5', 3, true)).toThrow(/integer or a percentage/);
        expect(() => Manifest.resolveIntOrPercent(-1, 3, true)).toThrow(/integer or a percentage/);
    });
});


describe('rollout plan', () => {

    const limits = { replicas: 3, maxSurge: 1, maxUnavailable: 0 };

    it('surges one pod and keeps every old pod until it is available', () => {

        const old = [pod('a', true), pod('b', true), pod('c', true)];
        expect(Deployment.plan({ ...limits, current: [], old })).toEqual({ create: 1, remove: [] });
        expect(Deployment.plan({ ...limits, current: [pod('n1', false)], old })).toEqual({ create: 0, remove: [] });
        expect(Deployment.plan({ ...limits, current: [pod('n1', false, 5)], old })).toEqual({ create: 0, remove: [] });
    });

    it('removes one old pod once the new one is available, the most recently ready first', () => {

        const old = [pod('a', true, 1), pod('b', true, 3), pod('c', true, 2)];
        expect(Deployment.plan({ ...limits, current: [pod('n1', true)], old })).toEqual({ create: 0, remove: ['b'] });
    });

    it('removes unavailable old pods before available ones, within the budget', () => {

        const old = [pod('a', true), pod('b', false), pod('c', true)];
        expect(Deployment.plan({ ...limits, current: [pod('n1', true)], old })).toEqual({ create: 0, remove: ['b'] });
    });

    it('with maxUnavailable, scales the old pods down before the new ones are ready', () => {

        const old = [pod('a', true), pod('b', true), pod('c', true)];
        expect(Deployment.plan({ replicas: 3, maxSurge: 1, maxUnavailable: 1, current: [pod('n1', false)], old }).remove).toHaveLength(1);
        expect(Deployment.plan({ replicas: 3, maxSurge: 0, maxUnavailable: 1, current: [], old })).toEqual({ create: 0, remove: [expect.any(String)] });
        expect(Deployment.plan({ replicas: 3, maxSurge: 0, maxUnavailable: 1, current: [], old: old.slice(1) })).toEqual({ create: 1, remove: [] });
    });

    it('does nothing once the new pods are all there', () => {

        expect(Deployment.plan({ ...limits, current: [pod('n1', true), pod('n2', true), pod('n3', true)], old: [] })).toEqual({ create: 0, remove: [] });
    });
});


describe('manifest', () => {

    it('reads the pods\' model from the rendered Deployment', async () => {

        const source = await Manifest.readFixture(fixture, {});
        const model = Manifest.parse(source.yaml);
        expect(model).toMatchObject({
            replicas: 3,
            maxSurge: 1,
            maxUnavailable: 0,
            minReadySeconds: 5,
            port: 3000,
            preStopSleepSeconds: 0,
            probes: {
                startup: { path: '/health/startup', port: 3000, periodSeconds: 2, failureThreshold: 30 },
                liveness: { path: '/health/live', periodSeconds: 10 },
                readiness: { path: '/health/ready', periodSeconds: 5, failureThreshold: 2, successThreshold: 1 }
            },
            env: { SHUTDOWN_DELAY_MS: '5000', SHUTDOWN_DRAIN_TIMEOUT_MS: '10000', MIGRATE_ON_START: 'false' },
            envFrom: ['DATABASE_URL']
        });
        expect(model.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(21);
    });

    it('maps the chart values the scenarios override onto a fixture', async () => {

        const source = await Manifest.readFixture(fixture, { 'shutdown.delayMs': 0, 'preStopSleepSeconds': 3, 'strategy.maxSurge': '50%', 'probes.readiness.periodSeconds': 1 });
        const model = Manifest.parse(source.yaml);
        expect(model.env.SHUTDOWN_DELAY_MS).toBe('0');
        expect(model.preStopSleepSeconds).toBe(3);
        expect(model.maxSurge).toBe(2);
        expect(model.probes.readiness?.periodSeconds).toBe(1);
        await expect(Manifest.readFixture(fixture, { 'resources.limits.cpu': 1 })).rejects.toThrow(/no mapping/);
    });

    it('applies the API defaults to what a manifest leaves out', () => {

        const model = Manifest.parse(`
apiVersion: apps/v1
kind: Deployment
metadata: { name: bare }
spec:
  template:
    spec:
      containers:
        - name: app
          ports: [{ name: http, containerPort: 8080 }]
          readinessProbe: { httpGet: { path: /ready, port: http } }
`);
        expect(model).toMatchObject({ replicas: 1, maxSurge: 1, maxUnavailable: 0, minReadySeconds: 0, terminationGracePeriodSeconds: 30, port: 8080 });
        expect(model.probes.readiness).toEqual({ path: '/ready', port: 8080, initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 1, failureThreshold: 3, successThreshold: 1 });
    });

    it('refuses what it cannot simulate', () => {

        const deployment = (container: string) => `kind: Deployment\nmetadata: { name: x }\nspec:\n  template:\n    spec:\n      containers:\n        - ${container}\n`;
        expect(() => Manifest.parse(deployment('{ name: a, ports: [{ containerPort: 1 }], livenessProbe: { exec: { command: [true] } } }'))).toThrow(/httpGet/);
        expect(() => Manifest.parse(deployment('{ name: a, ports: [{ containerPort: 1 }], lifecycle: { preStop: { exec: { command: [sleep, "5"] } } } }'))).toThrow(/preStop sleep/);
        expect(() => Manifest.parse('kind: Service\n')).toThrow(/one Deployment/);
    });
});
