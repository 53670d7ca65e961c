import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

import type { Summary } from './load.ts';


export interface Outcome {
    readonly name: string;
    readonly description: string;
    readonly scenario: string;
    readonly readyMs: number | null;
    readonly summary: Summary | null;
    readonly logBytesPerRequest: number | null;
    readonly loadAverage: number;                   // 1-minute, after the run: high when something else shared the machine
    readonly otlpExports: number | null;            // Export requests the sink received, for variants that export
    readonly failure: string | null;
}


export interface Report {
    readonly meta: Record<string, unknown>;
    readonly header: string[];
    readonly outcomes: Outcome[];
    readonly ratios: Record<string, number[]>;
    readonly rounds: Record<string, Outcome[]>;
}


const internals = {
    columns: ['variant', 'request', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'non-2xx', 'vs bare', 'server CPU', 'CPU µs/req', 'RSS MB', 'ready ms', 'log B/req', 'load1'],
    requests: { get: 'GET /items/{id}', list: 'GET /items?limit=20', create: 'POST /items + key' } as Record<string, string>,

    fixed: (value: number | null | undefined, digits: number) => (value === null || value === undefined ? '-' : value.toFixed(digits)),

    row(outcome: Outcome, baseline: number | undefined): string[] {

        const summary = outcome.summary;
        if (!summary) {
            return [outcome.name, internals.requests[outcome.scenario] ?? outcome.scenario, 'FAILED', ...internals.columns.slice(3).map(() => '-')];
        }

        return [
            outcome.name,
            internals.requests[outcome.scenario] ?? outcome.scenario,
            internals.fixed(summary.requestsPerSecond, 0),
            internals.fixed(summary.latencyMs.p50, 1),
            internals.fixed(summary.latencyMs.p99, 1),
            String(summary.errors),
            String(summary.non2xx),
            baseline && outcome.scenario === 'get' ? internals.fixed(summary.requestsPerSecond / baseline, 2) : '-',
            summary.server ? `${summary.server.cpuPercent.toFixed(0)}%` : '-',
            internals.fixed(summary.server?.cpuMicrosPerRequest, 0),
            internals.fixed(summary.server?.rssMB, 0),
            internals.fixed(outcome.readyMs, 0),
            internals.fixed(outcome.logBytesPerRequest, 0),
            internals.fixed(outcome.loadAverage, 1)
        ];
    }
};


// The round with the median req/s stands for the variant; a round that failed fails it.
export const median = function (rounds: Outcome[]): Outcome {

    const failed = rounds.find((outcome) => !outcome.summary);
    if (failed) {
        return failed;
    }

    const sorted = [...rounds].sort((a, b) => a.summary!.requestsPerSecond - b.summary!.requestsPerSecond);
    const errors = rounds.reduce((sum, outcome) => sum + outcome.summary!.errors, 0);
    const non2xx = rounds.reduce((sum, outcome) => sum + outcome.summary!.non2xx, 0);
    const chosen = sorted[Math.floor((sorted.length - 1) / 2)]!;
    return { ...chosen, summary: { ...chosen.summary!, errors, non2xx } };          // Errors in any round count
};


// A variant fails the run when it served nothing or anything went wrong: the CI check is exactly this.
export const failures = function (outcomes: Outcome[]): string[] {

    return outcomes.flatMap((outcome) => {

        const summary = outcome.summary;
        if (!summary) {
            return [`${outcome.name}: ${outcome.failure ?? 'no result'}`];
        }

        const problems = [
            ...(summary.requestsPerSecond > 0 && summary.requests > 0 ? [] : ['zero throughput']),
            ...(summary.errors ? [`${summary.errors} errors ${JSON.stringify(summary.errorKinds)}`] : []),
            ...(summary.non2xx ? [`${summary.non2xx} non-2xx responses`] : []),
            ...(summary.warmupErrors ? [`${summary.warmupErrors} errors or non-2xx during warm-up`] : []),
            ...(outcome.otlpExports === 0 ? ['no traces exported'] : [])
        ];

        return problems.map((problem) => `${outcome.name}: ${problem}`);
    });
};


export const table = function (outcomes: Outcome[], baselineName: string): string {

    const baseline = outcomes.find((outcome) => outcome.name === baselineName)?.summary?.requestsPerSecond;
    const rows = [internals.columns, ...outcomes.map((outcome) => internals.row(outcome, baseline))];
    const widths = internals.columns.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
    const line = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');

    return [line(rows[0]!), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.slice(1).map(line)].join('\n');
};


export const write = async function (file: string, report: Report): Promise<void> {

    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
};


// Each round's req/s over the baseline's in the same round: a burst of other work on the machine
// moves both, so these move less than req/s do.
export const ratios = function (rounds: Map<string, Outcome[]>, baselineName: string): Record<string, number[]> {

    const baseline = rounds.get(baselineName) ?? [];
    const result: Record<string, number[]> = {};
    for (const [name, outcomes] of rounds) {
        if (outcomes[0]?.scenario !== 'get') {
            continue;
        }

        result[name] = outcomes.flatMap((outcome, i) => {

            const base = baseline[i]?.summary?.requestsPerSecond;
            return outcome.summary && base ? [outcome.summary.requestsPerSecond / base] : [];
        });
    }

    return result;
};


export const spread = function (ratios: Record<string, number[]>): string {

    const width = Math.max(...Object.keys(ratios).map((name) => name.length));
    const lines = Object.entries(ratios).map(([name, values]) => {

        const sorted = [...values].sort((a, b) => a - b);
        const median = sorted[Math.floor((sorted.length - 1) / 2)];
        return `${name.padEnd(width)}  median ${median?.toFixed(2) ?? '-'}  min ${sorted[0]?.toFixed(2) ?? '-'}  max ${sorted.at(-1)?.toFixed(2) ?? '-'}  rounds ${sorted.map((value) => value.toFixed(2)).join(' ')}`;
    });

    return ['vs bare, per round (same round\'s bare):', ...lines].join('\n');
};


// The table as the README shows it, from the same outcomes: req/s next to the server's CPU time per
// request, the ratio to the bare handler with its spread over the rounds, memory and start time.
export const markdown = function (outcomes: Outcome[], ratios: Record<string, number[]>): string {

    const lines = [
        '| variant | request | req/s | p50 / p99 ms | vs bare, median (min–max) | server CPU per request | RSS at end | start to ready |',
        '| --- | --- | --- | --- | --- | --- | --- | --- |'
    ];

    for (const outcome of outcomes) {
        const summary = outcome.summary;
        if (!summary) {
            lines.push(`| ${outcome.description} | ${internals.requests[outcome.scenario] ?? outcome.scenario} | failed | | | | | |`);
            continue;
        }

        const sorted = [...(ratios[outcome.name] ?? [])].sort((a, b) => a - b);
        const ratio = sorted.length ? `${sorted[Math.floor((sorted.length - 1) / 2)]!.toFixed(2)}${sorted.length > 1 ? ` (${sorted[0]!.toFixed(2)}–${sorted.at(-1)!.toFixed(2)})` : ''}` : '-';
        lines.push([
            '',
            outcome.description,
            `\`${internals.requests[outcome.scenario] ?? outcome.scenario}\``,
            Math.round(summary.requestsPerSecond).toLocaleString('en-US'),
            `${internals.fixed(summary.latencyMs.p50, 0)} / ${internals.fixed(summary.latencyMs.p99, 0)}`,
            ratio,
            summary.server ? `${summary.server.cpuMicrosPerRequest.toFixed(0)} µs` : '-',
            summary.server?.rssMB ? `${summary.server.rssMB.toFixed(0)} MB` : '-',
            outcome.readyMs === null ? '-' : `${(outcome.readyMs / 1000).toFixed(2)} s`,
            ''
        ].join(' | ').trim());
    }

    return lines.join('\n');
};
