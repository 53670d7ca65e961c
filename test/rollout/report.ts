import type { Phase, Pod } from './pods.ts';
import type { Kind, LoadResult, Path, Sample } from './load.ts';
import { failureKinds } from './load.ts';
import type { WriteCheck } from './database.ts';


// Turns what a scenario recorded into its summary and the series the picture draws. Times in the
// summary are seconds from the start of the load; raw times are performance.now() milliseconds.

export interface RolloutRecord {
    readonly revision: number;
    readonly startedAt: number;
    readonly completedAt: number;
    readonly settledAt: number;
}


export interface ScenarioRecord {
    readonly name: string;
    readonly description: string;
    readonly load: LoadResult;
    readonly warmedAt: number;                          // Before this, the pods were fresh: no latency figures
    readonly rollouts: readonly RolloutRecord[];
    readonly pods: readonly Pod[];
    readonly writes: WriteCheck;
    readonly proxies: Record<string, unknown>;
    readonly machine: { eventLoopDelayMs: { p50: number; p99: number; max: number }; cpuPercent: number; machineBusyPercent: number; loadAverage: { start: number; end: number } };
}


export interface Bucket {
    readonly t: number;                                 // Seconds from the start of the load
    readonly sent: number;
    readonly ok: number;
    readonly failed: Readonly<Record<Kind, number>>;
    readonly p50: number | null;
    readonly p99: number | null;
}


export interface Lane {
    readonly name: string;
    readonly revision: number;
    readonly segments: readonly { phase: Phase; from: number; to: number }[];
    readonly sigkills: readonly number[];
}


export interface Series {
    readonly name: string;
    readonly title: string;
    readonly duration: number;
    readonly buckets: readonly Bucket[];
    readonly lanes: readonly Lane[];
    readonly warmup: number;
    readonly rollouts: readonly { from: number; complete: number; to: number }[];
    readonly windowLabel?: string;                      // What the shaded windows are (default: rollout)
    readonly windowLegend?: string;
    readonly headline: string;
}


const internals = {
    bucketMs: 1000,

    percentile(sorted: readonly number[], p: number): number | null {

        if (!sorted.length) {
            return null;
        }

        return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))]!;
    },

    latency(samples: readonly Sample[]) {

        const sorted = samples.map((sample) => sample.latencyMs).sort((a, b) => a - b);
        const round = (value: number | null) => (value === null ? null : Math.round(value * 10) / 10);
        return { count: sorted.length, p50: round(internals.percentile(sorted, 50)), p99: round(internals.percentile(sorted, 99)), max: round(sorted.at(-1) ?? null) };
    },

    failed: (sample: Sample) => sample.kind !== 'ok' && sample.kind !== 'conflict',

    byKind(samples: readonly Sample[]): Record<Kind, number> {

        const counts = Object.fromEntries(failureKinds.map((kind) => [kind, 0])) as Record<Kind, number>;
        for (const sample of samples) {
            if (internals.failed(sample)) {
                ++counts[sample.kind];
            }
        }

        return counts;
    },

    seconds: (ms: number) => Math.round(ms) / 1000
};


export const summarize = function (record: ScenarioRecord) {

    const { load } = record;
    const t0 = load.startedAt;
    const samples = load.samples;
    const windows = record.rollouts.map((rollout) => [rollout.startedAt, rollout.settledAt] as const);
    const during = (sample: Sample) => windows.some(([from, to]) => sample.at >= from && sample.at <= to);
    const completed = samples.filter((sample) => sample.kind === 'ok' || sample.kind === 'conflict');
    const failures = samples.filter(internals.failed);

    const details: Record<string, number> = {};
    for (const sample of failures) {
        const key = `${sample.path} ${sample.op} ${sample.kind}: ${sample.detail}`.slice(0, 160);
        details[key] = (details[key] ?? 0) + 1;
    }

    const byPath = (path: Path) => internals.byKind(samples.filter((sample) => sample.path === path));
    const sigkills = record.pods.flatMap((pod) => pod.sigkills.map((kill) => ({ pod: pod.name, at: internals.seconds(kill.at - t0), reason: kill.reason })));
    const durationS = (load.stoppedAt - t0) / 1000;

    return {
        scenario: record.name,
        description: record.description,
        requests: samples.length,
        durationS: Math.round(durationS * 10) / 10,
        ratePerSecond: Math.round(samples.length / durationS),
        failed: failures.length,
        failures: internals.byKind(samples),
        failuresByPath: { service: byPath('service'), ingress: byPath('ingress') },
        failureDetails: Object.fromEntries(Object.entries(details).sort((a, b) => b[1] - a[1]).slice(0, 20)),
        firstFailures: Object.fromEntries(failureKinds.map((kind) => [kind, failures.filter((sample) => sample.kind === kind).slice(0, 12)
            .map((sample) => `${internals.seconds(sample.at - t0)} s ${sample.path} ${sample.op} ${sample.status || ''} ${sample.detail}`.replace(/\s+/g, ' '))]).filter(([, list]) => list!.length)),
        inFlightLost: samples.filter((sample) => sample.inFlightLost).length,
        conflicts: samples.filter((sample) => sample.kind === 'conflict').length,
        latencyMs: {
            warmup: internals.latency(completed.filter((sample) => sample.at < record.warmedAt)),
            steady: internals.latency(completed.filter((sample) => sample.at >= record.warmedAt && !during(sample))),
            duringRollout: internals.latency(completed.filter(during))
        },
        writes: {
            acknowledgedCreates: samples.filter((sample) => sample.op === 'post' && sample.kind === 'ok').length,
            acknowledgedUpdates: samples.filter((sample) => sample.op === 'patch' && sample.kind === 'ok').length,
            acknowledgedItems: record.writes.acknowledged,
            itemsFoundAtAcknowledgedVersion: record.writes.acknowledged - record.writes.lostWrites,
            rowsWritten: record.writes.rows,
            lost: record.writes.lost,
            duplicates: record.writes.duplicates
        },
        lostWrites: record.writes.lostWrites,
        duplicateWrites: record.writes.duplicateWrites,
        sigkills: sigkills.length,
        sigkillDetails: sigkills,
        rollouts: record.rollouts.map((rollout) => ({
            revision: rollout.revision,
            startS: internals.seconds(rollout.startedAt - t0),
            durationS: internals.seconds(rollout.completedAt - rollout.startedAt),
            untilReplacedPodsGoneS: internals.seconds(rollout.settledAt - rollout.startedAt)
        })),
        pods: record.pods.map((pod) => ({
            name: pod.name,
            revision: pod.revision,
            phases: pod.events.map((event) => `${event.phase} ${internals.seconds(event.at - t0)}`).join(', '),
            exits: pod.exits.map((exit) => `${exit.code} ${exit.reason}`.trim()),
            restarts: pod.restarts
        })),
        proxies: record.proxies,
        machine: record.machine
    };
};


export type Summary = ReturnType<typeof summarize>;


export const series = function (record: ScenarioRecord, summary: Summary): Series {

    const t0 = record.load.startedAt;
    const end = record.load.stoppedAt;
    const count = Math.max(Math.floor((end - t0) / internals.bucketMs), 1);             // The last, partial second is left out
    const groups: Sample[][] = Array.from({ length: count }, () => []);
    for (const sample of record.load.samples) {
        groups[Math.floor((sample.at - t0) / internals.bucketMs)]?.push(sample);
    }

    const buckets = groups.map((group, i): Bucket => {

        const latencies = group.filter((sample) => !internals.failed(sample)).map((sample) => sample.latencyMs).sort((a, b) => a - b);
        return {
            t: i * internals.bucketMs / 1000,
            sent: group.length,
            ok: group.filter((sample) => sample.kind === 'ok').length,
            failed: internals.byKind(group),
            p50: internals.percentile(latencies, 50),
            p99: internals.percentile(latencies, 99)
        };
    });

    const lanes = record.pods.map((pod): Lane => {

        const events = pod.events.filter((event) => event.at <= end);
        const segments = events.filter((event) => event.phase !== 'gone').map((event, i) => ({
            phase: event.phase,
            from: Math.max(event.at - t0, 0) / 1000,
            to: ((events[i + 1]?.at ?? end) - t0) / 1000
        }));

        return { name: pod.name, revision: pod.revision, segments, sigkills: pod.sigkills.map((kill) => (kill.at - t0) / 1000) };
    });

    const f = summary.failures;
    return {
        name: record.name,
        title: `${record.name}: ${record.description}`,
        duration: (end - t0) / 1000,
        buckets,
        lanes,
        warmup: (record.warmedAt - t0) / 1000,
        rollouts: record.rollouts.map((rollout) => ({ from: (rollout.startedAt - t0) / 1000, complete: (rollout.completedAt - t0) / 1000, to: (rollout.settledAt - t0) / 1000 })),
        headline: `${summary.requests} requests at ${summary.ratePerSecond}/s, ${summary.failed} failed (refused ${f.refused}, reset ${f.reset}, 5xx ${f['5xx']}, timeout ${f.timeout}), ` +
            `${summary.inFlightLost} in flight lost, lost writes ${summary.lostWrites}, duplicates ${summary.duplicateWrites}, SIGKILLs ${summary.sigkills}; ` +
            `p99 ${summary.latencyMs.steady.p99} ms steady, ${summary.latencyMs.duringRollout.p99} ms during rollouts`
    };
};
