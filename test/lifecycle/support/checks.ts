import { expect } from 'vitest';

import type { App, Exit, LogLine } from './app.ts';
import type { Outcome } from './http.ts';


// The assertions the lifecycle must pass, as plain functions: the positive tests and the negative
// control (a deliberately naive shutdown) run exactly the same code, so the control proves these
// checks can fail.


export const shutdownPhases = ['delay', 'drain', 'jobs', 'pool', 'telemetry'] as const;


// A request the server was serving when the signal arrived, answered in full, with `Connection: close`
// so the client (or the proxy in front) does not send the next request on a socket about to close.
export const checkCompletedInFlight = function (outcome: Outcome, status: number): void {

    expect(outcome.error, 'the in-flight request failed').toBeUndefined();
    expect(outcome.status).toBe(status);
    expect(outcome.headers.connection).toBe('close');
};


const internals = {
    end: (line: LogLine) => Date.parse(line.time),
    start: (line: LogLine) => Date.parse(line.time) - (line.durationMs as number)
};


// Each shutdown phase logged once, each starting only after the previous one ended (from the log
// lines' own timestamps and durations), then the exit line, then the exit itself. Returns the lines.
export const checkPhaseOrder = function (app: App, exit: Exit): Record<(typeof shutdownPhases)[number] | 'signal' | 'exit', LogLine> {

    const lines = app.logs().filter((line) => line.component === 'lifecycle' && typeof line.phase === 'string');
    const find = (phase: string) => {

        const matching = lines.filter((line) => line.phase === phase);
        expect(matching, `one "${phase}" phase line`).toHaveLength(1);
        return matching[0]!;
    };

    const signal = find('signal');
    const phases = shutdownPhases.map(find);
    const last = find('exit');

    expect(internals.end(phases[0]!)).toBeGreaterThanOrEqual(internals.end(signal));
    for (let i = 1; i < phases.length; ++i) {
        const previous = phases[i - 1]!;
        const next = phases[i]!;
        expect(internals.start(next), `${String(next.phase)} starts after ${String(previous.phase)} ended`).toBeGreaterThanOrEqual(internals.end(previous));
    }

    expect(internals.end(last)).toBeGreaterThanOrEqual(internals.end(phases[phases.length - 1]!));
    expect(exit.at).toBeGreaterThanOrEqual(internals.end(last));

    const [delay, drain, jobs, pool, telemetry] = phases as [LogLine, LogLine, LogLine, LogLine, LogLine];
    return { signal, delay, drain, jobs, pool, telemetry, exit: last };
};


export const phaseEnd = internals.end;
export const phaseStart = internals.start;


// The process is gone before delay + drain + cleanup + 1 s after the signal, whatever hung.
export const checkExitWithinBudget = function (exit: Exit, signalledAt: number, budgets: { delayMs: number; drainMs: number; cleanupMs: number }): number {

    const elapsed = exit.at - signalledAt;
    expect(elapsed).toBeLessThan(budgets.delayMs + budgets.drainMs + budgets.cleanupMs + 1000);
    return elapsed;
};
