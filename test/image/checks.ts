import { setTimeout as sleep } from 'node:timers/promises';

import { expect } from 'vitest';

import type { Exit } from '../lifecycle/support/app.ts';
import * as Lifecycle from '../lifecycle/support/checks.ts';
import type { Container } from './container.ts';


// The assertions the image must pass as the chart runs it, as plain functions: the positive tests
// and the negative controls (the same image run in deliberately broken ways) call the same code,
// so the controls prove these checks can fail.


export interface Inspection {
    readonly status: Record<string, string>;        // /proc/1/status of the container's PID 1
    readonly cmdline: string[];                     // /proc/1/cmdline
    readonly writes: Record<string, string>;        // path -> 'ok' or the error code of writing it
    readonly present: Record<string, number>;       // path -> size, for the paths that exist
}


const internals = {
    // Runs inside the container (node is all the runtime image has to run). /home/node belongs to
    // uid 1000, so a write there fails only because the root filesystem is read-only.
    probe: `
        const fs = require('node:fs');
        const status = Object.fromEntries(fs.readFileSync('/proc/1/status', 'utf8').trim().split('\\n').map((line) => line.split(/:\\s*/)));
        const cmdline = fs.readFileSync('/proc/1/cmdline', 'utf8').split('\\0').filter(Boolean);
        const writes = {};
        for (const path of ['/home/node/probe', '/app/probe', '/probe', '/tmp/probe']) {
            try {
                fs.writeFileSync(path, 'x');
                fs.rmSync(path);
                writes[path] = 'ok';
            }
            catch (err) {
                writes[path] = err.code;
            }
        }
        const present = {};
        for (const path of ['/usr/local/etc/npmrc', '/usr/local/etc/npm-build-ca.crt', '/usr/local/lib/node_modules/npm', '/usr/local/bin/npm']) {
            try {
                present[path] = fs.lstatSync(path).size;
            }
            catch {}
        }
        process.stdout.write(JSON.stringify({ status, cmdline, writes, present }));
    `,

    capabilities: ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']
};


export const inspect = async function (container: Container): Promise<Inspection> {

    return JSON.parse(await container.exec(['node', '-e', internals.probe])) as Inspection;
};


// uid and gid 1000 (real, effective, saved, filesystem), no capability in any set, no way to gain one.
export const checkIdentity = function (inspection: Inspection): void {

    const { status } = inspection;
    expect(status.Uid?.split(/\s+/), 'Uid of PID 1').toEqual(['1000', '1000', '1000', '1000']);
    expect(status.Gid?.split(/\s+/), 'Gid of PID 1').toEqual(['1000', '1000', '1000', '1000']);
    for (const set of internals.capabilities) {
        expect(BigInt(`0x${status[set]}`), `${set} of PID 1`).toBe(0n);
    }

    expect(status.NoNewPrivs, 'NoNewPrivs of PID 1').toBe('1');
};


// Nothing under / can be written, even where uid 1000 owns the directory; /tmp (the chart's
// emptyDir) can.
export const checkReadOnlyRoot = function (inspection: Inspection): void {

    expect(inspection.writes['/home/node/probe'], 'write to /home/node (owned by uid 1000)').toBe('EROFS');
    expect(inspection.writes['/app/probe'], 'write to /app').toMatch(/^(EROFS|EACCES)$/);
    expect(inspection.writes['/probe'], 'write to /').toMatch(/^(EROFS|EACCES)$/);
    expect(inspection.writes['/tmp/probe'], 'write to /tmp').toBe('ok');
};


// PID 1 is node itself, started with the image's CMD: nothing in between to swallow SIGTERM.
export const checkNodeIsPid1 = function (inspection: Inspection, cmd: string[]): void {

    expect(inspection.cmdline, '/proc/1/cmdline').toEqual(cmd);
    expect(inspection.cmdline[0], 'PID 1').toBe('node');
};


// The build's npm configuration and CA bundle were mounted for the RUN steps only: at most an empty
// mount point is left, never their content. npm itself is removed from the runtime image.
export const checkNoBuildSecrets = function (inspection: Inspection): void {

    expect(inspection.present['/usr/local/etc/npmrc'] ?? 0, 'size of /usr/local/etc/npmrc').toBe(0);
    expect(inspection.present['/usr/local/etc/npm-build-ca.crt'] ?? 0, 'size of /usr/local/etc/npm-build-ca.crt').toBe(0);
    expect(Object.keys(inspection.present).filter((path) => path.includes('/npm') && !path.includes('/etc/')), 'npm in the runtime image').toEqual([]);
};


export interface Budgets {
    readonly delayMs: number;
    readonly drainMs: number;
    readonly cleanupMs: number;
}


// What the kubelet does to a terminating pod: SIGTERM to the container, then the five shutdown
// phases in order, then exit code 0, all before delay + drain + cleanup + 1 s. A container still
// running at that point fails here (the caller removes it).
export const checkShutdown = async function (container: Container, budgets: Budgets): Promise<{ elapsedMs: number; exit: Exit }> {

    const signalledAt = container.signal('SIGTERM');
    const limitMs = budgets.delayMs + budgets.drainMs + budgets.cleanupMs + 1000;
    const exit = await Promise.race([container.exited, sleep(limitMs + 500, null)]);
    expect(exit, `container still running ${limitMs + 500} ms after SIGTERM; output:\n${container.output()}`).not.toBeNull();

    Lifecycle.checkPhaseOrder(container, exit!);
    expect(exit!.code, `exit code; output:\n${container.output()}`).toBe(0);
    const elapsedMs = Lifecycle.checkExitWithinBudget(exit!, signalledAt, budgets);
    return { elapsedMs, exit: exit! };
};
