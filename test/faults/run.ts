import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import pg from 'pg';

import * as Proof from '../rollout/proof.ts';
import * as Database from '../rollout/database.ts';
import * as Load from '../rollout/load.ts';
import * as Pods from '../rollout/pods.ts';
import * as Report from '../rollout/report.ts';
import type * as Cluster from '../support/cluster.ts';
import * as Host from './host.ts';
import * as Measure from './measure.ts';


// One fault scenario on the real cluster: the release set to the scenario's chart values, open-loop
// load from good clients through the Service, a warm-up and a baseline, the fault (the scenario's own
// function, which returns when the fault and what it waits for are over), a tail, then the database
// read for lost and duplicated acknowledged writes. The rollout proof's load, database check, pod
// tracker, summary and picture are used as they are.

export interface Context {
    readonly cluster: Cluster.Cluster;
    readonly helm: string;
    readonly namespace: string;
    readonly release: string;
    readonly chart: string;
    readonly values: Record<string, unknown>;       // The run's chart values; a scenario adds its own
    readonly out: string;
    readonly short: boolean;
    readonly rate: number;
    readonly postgres: Host.Postgres;
    readonly service: Load.Target;
    capacity: number | null;                        // Requests per second, once measured
}


export interface Running {
    readonly context: Context;
    readonly tracker: Pods.Tracker;
    readonly startedAt: number;
    readonly notes: Record<string, unknown>;         // What the fault reports about itself
}


export interface Scenario {
    readonly key: string;
    readonly description: string;
    readonly values?: Record<string, unknown>;
    readonly client?: { readonly idempotencyKeys?: boolean; readonly retries?: boolean; readonly retryBudget?: boolean; readonly maxSocketsPerClient?: number };
    readonly rate?: (context: Context, timing: Timing) => number | ((elapsedMs: number) => number);
    readonly prepare?: (context: Context) => Promise<() => Promise<void>>;     // Returns its undo
    readonly fault: (running: Running, timing: Timing) => Promise<Measure.Window[]>;
    readonly judge: (result: Result) => { check: string; pass: boolean }[];
}


export interface Timing {
    readonly warmupMs: number;
    readonly baselineMs: number;
    readonly tailMs: number;
}


export interface Result {
    readonly key: string;
    readonly description: string;
    readonly measures: Measure.Measures;
    readonly summary: Report.Summary;
    readonly series: Report.Series;
    readonly windows: { name: string; fromS: number; toS: number }[];
    readonly notes: Record<string, unknown>;
    readonly restarts: number;
    readonly load: Load.LoadResult;
    readonly windowsRaw: readonly Measure.Window[];
    readonly clientStalls: readonly { at: number; ms: number }[];
}


const internals = {
    timeoutMs: 5000,
    mix: { get: 45, list: 10, post: 25, patch: 20 } as Record<Load.Op, number>,
    retry: { writeAttempts: 8, readAttempts: 2, baseDelayMs: 100, maxDelayMs: 2000, deadlineMs: 30_000 } satisfies Load.RetryPolicy,
    retryBudget: { maxTokens: 10, tokenRatio: 0.1 } satisfies Load.RetryBudget,      // gRFC A6's example
    applied: new WeakMap<Context, string>(),

    // A closed loop (32 in flight) or an open loop at a rate, no retries, until stopped (at most maxMs).
    start(service: Load.Target, name: string, maxMs: number, shape: { rate: number } | { concurrency: number }): Load.Load {

        return Load.start({
            ...('rate' in shape ? { rate: shape.rate, maxSocketsPerClient: 64 } : { rate: 0, concurrency: shape.concurrency, maxSocketsPerClient: 16 }),
            timeoutMs: 5000, maxDurationMs: maxMs, service,
            clients: 4, mix: internals.mix, runId: `${name}-${Date.now().toString(36)}`
        });
    },

    // The same for ms.
    async load(service: Load.Target, name: string, ms: number, shape: { rate: number } | { concurrency: number }): Promise<Load.LoadResult> {

        const generator = internals.start(service, name, ms + 2000, shape);
        await sleep(ms);
        return await generator.stop();
    },

    // After the first second of a run: what it settled to.
    settled: (result: Load.LoadResult) => result.samples.filter((sample) => sample.at - result.startedAt >= 1000)
};


export const mix = internals.mix;


// Load shedding off: a closed loop of 32 keeps every pod saturated, and with the limits on the pods would
// shed part of it (the pool's queue stands at its limit): what is measured as the capacity is then what
// the pods serve without shedding.
export const sheddingOff = { app: { load: { maxEventLoopDelayMs: 0, maxEventLoopUtilization: 0, maxDatabaseWaiting: 0, maxAcceptQueue: 0, maxHeapUsedBytes: 0, maxRssBytes: 0 } } };


/** JIT, pools and conntrack warmed by a closed loop (4 s unless told): new pods before a measurement. */
export const warm = async function (service: Load.Target, ms = 4000): Promise<void> {

    await internals.load(service, 'warm', ms, { concurrency: 32 });
};


/**
 * Closed loop, many in flight, no retries: what the whole path (this machine's two cores) serves per
 * second, after warmMs of the same. Pods at a CPU limit need a longer warm-up (scenarios.ts, overload).
 */
export const capacity = async function (service: Load.Target, seconds: number, warmMs = 4000): Promise<{ perSecond: number; p99Ms: number | null; failed: number }> {

    await warm(service, warmMs);
    const result = await internals.load(service, 'capacity', seconds * 1000, { concurrency: 32 });
    const measured = internals.settled(result);
    const failed = measured.filter(Measure.failed).length;
    return {
        perSecond: Math.round((measured.length - failed) / ((result.stoppedAt - result.startedAt - 1000) / 1000)),
        p99Ms: Measure.percentiles(measured).p99,
        failed
    };
};


/**
 * The highest open-loop rate served with nothing failed and p99 under p99BoundMs, in steps of a tenth
 * of the closed-loop capacity from 30 % of it. A closed loop measures throughput with a queue standing
 * (32 in flight); an open loop at 70 % of it kept queues standing on this machine, where the pods, the
 * control plane, PostgreSQL and the load generator share two cores (the soak's p99 was 5.2 s before
 * its first rollout). 0 when no step held.
 */
export const sustainedRate = async function (service: Load.Target, closedLoop: number, stepMs: number, p99BoundMs: number): Promise<{ perSecond: number; steps: { rate: number; p99Ms: number | null; failed: number }[] }> {

    await warm(service);
    const steps: { rate: number; p99Ms: number | null; failed: number }[] = [];
    let perSecond = 0;
    for (let tenths = 3; tenths <= 10; ++tenths) {
        const rate = Math.round(closedLoop * tenths / 10);
        const measured = internals.settled(await internals.load(service, 'sustained', stepMs, { rate }));
        const step = { rate, p99Ms: Measure.percentiles(measured).p99, failed: measured.filter(Measure.failed).length };
        steps.push(step);
        if (step.failed || step.p99Ms === null || step.p99Ms > p99BoundMs) {
            break;
        }

        perSecond = rate;
    }

    return { perSecond, steps };
};


export interface RolloutStep {
    readonly rate: number;
    readonly seconds: number;
    readonly p99Ms: number | null;
    readonly failed: number;
    readonly byKind: Record<Load.Kind, number>;
}


/**
 * The highest open-loop rate at which a whole rollout (rollout(): from the restart until its status is
 * complete, and 5 s more for the last old pod's clients to move) went by with nothing failed, no retries,
 * as the rollout proof judges one; tried from `from` down in tenths of it, each step a rollout of its own.
 * On this one node a rollout's new pod starts on the two cores that the serving pods, PostgreSQL and the
 * load generator share: in the soak at 70 % of the rate sustained between rollouts, the node was 81-100 %
 * busy during every rollout and the failures came there. 0 when no step down to 40 % held.
 */
export const heldThroughRollout = async function (service: Load.Target, from: number, rollout: () => Promise<void>): Promise<{ perSecond: number; steps: RolloutStep[] }> {

    const steps: RolloutStep[] = [];
    for (let tenths = 10; tenths >= 4; --tenths) {
        const rate = Math.round(from * tenths / 10);
        const generator = internals.start(service, 'rollout-held', 600_000, { rate });
        await sleep(2000);
        await rollout();
        await sleep(5000);
        const result = await generator.stop();
        const measured = internals.settled(result);
        const failures = measured.filter(Measure.failed);
        const step = { rate, seconds: Math.round((result.stoppedAt - result.startedAt) / 1000), p99Ms: Measure.percentiles(measured).p99, failed: failures.length, byKind: Measure.failedByKind(failures) };
        steps.push(step);
        if (!step.failed) {
            return { perSecond: rate, steps };
        }
    }

    return { perSecond: 0, steps };
};


/** The release at the run's values plus the scenario's; a no-op when they are already applied. */
export const values = async function (context: Context, scenarioValues: Record<string, unknown> = {}): Promise<void> {

    const wanted = Proof.merge(context.values, scenarioValues);
    const key = JSON.stringify(wanted);
    if (internals.applied.get(context) === key) {
        return;
    }

    await Proof.apply({ ...context, rate: context.rate, short: context.short }, wanted);
    internals.applied.set(context, key);
};


/** Connections of the service's pods to PostgreSQL, by pod process (application_name). */
export const poolSizes = async function (cluster: Cluster.Cluster): Promise<Record<string, number>> {

    const client = new pg.Client({ connectionString: cluster.postgresUrl });
    await client.connect();
    try {
        const { rows } = await client.query<{ name: string; n: number }>(`select application_name as name, count(*)::int as n from pg_stat_activity where application_name like 'item-api:%' group by 1`);
        return Object.fromEntries(rows.map((row) => [row.name, row.n]));
    }
    finally {
        await client.end();
    }
};


export const run = async function (context: Context, scenario: Scenario): Promise<Result> {

    const { cluster, namespace, release } = context;
    const timing: Timing = context.short ? { warmupMs: 2000, baselineMs: 3000, tailMs: 6000 } : { warmupMs: 3000, baselineMs: 5000, tailMs: 10_000 };
    await values(context, scenario.values);
    const undo = await scenario.prepare?.(context);
    const tracker = Pods.track(cluster, namespace, `app.kubernetes.io/instance=${release},app.kubernetes.io/component!=test`);
    const notes: Record<string, unknown> = {};
    const restartsBefore = new Map<string, number>();
    const meter = Proof.clientMeter();
    let load: Load.LoadResult;
    let windows: Measure.Window[];
    let warmedAt: number;
    const invalidBefore = await Host.conntrackInvalid();
    try {
        const generator = Load.start({
            rate: scenario.rate?.(context, timing) ?? context.rate,
            timeoutMs: internals.timeoutMs,
            maxDurationMs: 1_800_000,
            service: context.service,
            clients: 4,
            maxSocketsPerClient: scenario.client?.maxSocketsPerClient ?? 64,
            mix: internals.mix,
            ...(scenario.client?.retries === false ? {} : { retry: scenario.client?.retryBudget ? { ...internals.retry, budget: internals.retryBudget } : internals.retry }),
            idempotencyKeys: scenario.client?.idempotencyKeys ?? true,
            runId: `${scenario.key}-${Date.now().toString(36)}`
        });
        const startedAt = performance.now();
        try {
            await sleep(timing.warmupMs);
            warmedAt = await meter.start();
            // Restarts are counted from here: earlier scenarios' restarts stay on the same pods.
            for (const pod of tracker.pods) {
                restartsBefore.set(pod.name, pod.restarts);
            }

            await sleep(timing.baselineMs);
            windows = await scenario.fault({ context, tracker, startedAt, notes }, timing);
            await sleep(timing.tailMs);
        }
        finally {
            load = await generator.stop();
            await meter.stop();
            const invalidAfter = await Host.conntrackInvalid();
            notes.conntrackInvalidPackets = invalidBefore === null || invalidAfter === null ? null : invalidAfter - invalidBefore;
        }
    }
    finally {
        tracker.close();
        await undo?.();
    }

    const writes = await Database.check(cluster.postgresUrl, load.acknowledged, load.keyPrefix);
    const record: Report.ScenarioRecord = {
        name: scenario.key,
        description: scenario.description,
        load,
        warmedAt,
        rollouts: windows.map((window) => ({ revision: 0, startedAt: window.from, completedAt: window.to, settledAt: window.to })),
        pods: tracker.pods,
        writes,
        proxies: {},
        machine: meter.report(load.stoppedAt)
    };

    const summary = Report.summarize(record);
    const measures = Measure.measure(load, windows, warmedAt);
    const t0 = load.startedAt;
    const restarts = tracker.pods.reduce((sum, pod) => sum + pod.restarts - (restartsBefore.get(pod.name) ?? 0), 0);
    const series: Report.Series = {
        ...Report.series(record, summary),
        windowLabel: 'fault',
        windowLegend: `✕ SIGKILL · shaded: ${windows.map((window) => window.name).join(', ')}`,
        headline: `${measures.requests} requests, ${measures.failed} failed ${JSON.stringify(measures.failedByKind)}, ${measures.retried} retried, ` +
            `lost writes ${writes.lostWrites}, duplicates ${writes.duplicateWrites}; p99 ${measures.latencyMs.before.p99} ms before, ${measures.latencyMs.during.p99} during, ${measures.latencyMs.after.p99} after; recovered in ${measures.recoverS} s`
    };

    const result: Result = {
        key: scenario.key,
        description: scenario.description,
        measures,
        summary,
        series,
        windows: windows.map((window) => ({ name: window.name, fromS: Math.round((window.from - t0) / 100) / 10, toS: Math.round((window.to - t0) / 100) / 10 })),
        notes,
        restarts,
        load,
        windowsRaw: windows,
        clientStalls: meter.stalls()
    };

    await mkdir(join(context.out, scenario.key), { recursive: true });
    console.log(`[${scenario.key}] ${series.headline}`);
    return result;
};


// result.json, and every request as a line of samples.ndjson (times in ms from the load's start, with
// the fault windows and the clients' own stalls first), to find where the slow ones waited.
export const write = async function (out: string, result: Result, verdict: { pass: boolean; checks: { check: string; pass: boolean }[] }): Promise<void> {

    const { key, description, measures, summary, windows, notes, restarts, load } = result;
    await writeFile(join(out, result.key, 'result.json'), `${JSON.stringify({ key, description, measures, windows, notes, restarts, summary, ...verdict }, null, 2)}\n`);

    const t0 = load.startedAt;
    const ms = (at: number) => Math.round((at - t0) * 10) / 10;
    const lines = [
        JSON.stringify({ windows: result.windowsRaw.map((window) => ({ name: window.name, from: ms(window.from), to: ms(window.to) })), clientStalls: result.clientStalls.map((stall) => ({ at: ms(stall.at), ms: stall.ms })) }),
        ...load.samples.map((sample) => JSON.stringify({ ...sample, at: ms(sample.at), latencyMs: Math.round(sample.latencyMs * 10) / 10, lagMs: Math.round(sample.lagMs * 10) / 10, connectMs: Math.round(sample.connectMs * 10) / 10 }))
    ];
    await writeFile(join(out, result.key, 'samples.ndjson'), `${lines.join('\n')}\n`);
};
