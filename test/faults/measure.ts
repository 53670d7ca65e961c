import type * as Load from '../rollout/load.ts';
import { failureKinds } from '../rollout/load.ts';


// The numbers each fault scenario is judged by, from the clients' samples: failures by kind, the error
// window (first to last failed request), the time to recover after the fault ended, and latency
// before, during and after the fault. Times are seconds from the start of the load.

export interface Window {
    readonly name: string;
    readonly from: number;                  // performance.now() milliseconds
    readonly to: number;
}


export interface Measures {
    readonly requests: number;
    readonly failed: number;
    readonly failedByKind: Record<string, number>;
    readonly retried: number;               // Requests that needed more than one attempt
    readonly attempts: number;
    readonly errorWindowS: number;          // First to last failed request (0 when none failed)
    readonly recoverS: number;              // From the end of the last fault to the last request it disturbed
    readonly latencyMs: { before: Percentiles; during: Percentiles; after: Percentiles };
}


export interface Percentiles {
    readonly count: number;
    readonly p50: number | null;
    readonly p99: number | null;
}


const internals = {
    settleMs: 2000,                         // "After" starts this long after the last fault ends

    percentile(sorted: readonly number[], p: number): number | null {

        if (!sorted.length) {
            return null;
        }

        return Math.round(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))]! * 10) / 10;
    },

    seconds: (ms: number) => Math.round(ms / 100) / 10
};


/** Failed as the client saw it: neither served nor a 412 on a version it raced. */
export const failed = (sample: Load.Sample): boolean => sample.kind !== 'ok' && sample.kind !== 'conflict';


export const percentiles = function (samples: readonly Load.Sample[]): Percentiles {

    const sorted = samples.filter((sample) => !failed(sample)).map((sample) => sample.latencyMs).sort((a, b) => a - b);
    return { count: sorted.length, p50: internals.percentile(sorted, 50), p99: internals.percentile(sorted, 99) };
};


/** The p-th percentile of any values, as percentiles() reports latencies; null when there are none. */
export const percentile = function (values: readonly number[], p: number): number | null {

    return internals.percentile([...values].sort((a, b) => a - b), p);
};


/** Failures (already filtered with failed()) counted by kind, every kind present (0 when none). */
export const failedByKind = function (failures: readonly Load.Sample[]): Record<Load.Kind, number> {

    return Object.fromEntries(failureKinds.map((kind) => [kind, failures.filter((sample) => sample.kind === kind).length])) as Record<Load.Kind, number>;
};


export const measure = function (load: Load.LoadResult, windows: readonly Window[], warmedAt: number): Measures {

    const samples = load.samples;
    const failures = samples.filter(failed).sort((a, b) => a.at - b.at);
    const firstFault = Math.min(...windows.map((window) => window.from));
    const lastFault = Math.max(...windows.map((window) => window.to));
    const before = samples.filter((sample) => sample.at >= warmedAt && sample.at < firstFault);
    const during = samples.filter((sample) => windows.some((window) => sample.at >= window.from && sample.at <= window.to));
    const after = samples.filter((sample) => sample.at > lastFault + internals.settleMs);

    // Disturbed: failed, retried, or far slower than before the fault.
    const slow = Math.max(250, 3 * (percentiles(before).p99 ?? 0));
    const disturbed = samples.filter((sample) => sample.at >= firstFault && (failed(sample) || sample.attempts > 1 || sample.latencyMs > slow));
    // Not Math.max(...): spread as arguments, the disturbed requests of the 2x overload's control (limits
    // off: over 150,000 once the measured capacity rose) overflowed the stack.
    const lastDisturbed = disturbed.reduce((last, sample) => Math.max(last, sample.at), disturbed.length ? -Infinity : lastFault);

    return {
        requests: samples.length,
        failed: failures.length,
        failedByKind: failedByKind(failures),
        retried: samples.filter((sample) => sample.attempts > 1).length,
        attempts: samples.reduce((sum, sample) => sum + sample.attempts, 0),
        errorWindowS: failures.length ? internals.seconds(failures.at(-1)!.at - failures[0]!.at) : 0,
        recoverS: Math.max(0, internals.seconds(lastDisturbed - lastFault)),
        latencyMs: { before: percentiles(before), during: percentiles(during), after: percentiles(after) }
    };
};
