import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

import * as App from '../lifecycle/support/app.ts';
import * as LogStream from '../support/log-stream.ts';
import * as Podman from '../support/podman.ts';
import { freePort } from '../../src/embedded-db.ts';


// The built image run with podman exactly as the chart's Deployment runs it: read-only root, /tmp
// as the only writable path, uid/gid 1000, every capability dropped, no privilege escalation, the
// chart's environment. The handle is the lifecycle tests' App, so their checks apply unchanged.
// podman uses the configuration and storage .ci/image-build.sh set up (.ci/podman-env.sh).


export const image = process.env.ITEM_API_IMAGE ?? 'localhost/item-api:dev';


const internals = {
    names: new Set<string>(),
    exec: promisify(execFile)
};


export const env = function (): NodeJS.ProcessEnv {

    return { ...process.env, ...Podman.env('run') };
};


export const podman = async function (args: string[], timeoutMs = 60_000): Promise<string> {

    const { stdout } = await internals.exec('podman', args, { env: env(), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
};


// The chart's securityContext (charts/item-api/values.yaml) in podman's words.
export const chartSecurity = ['--read-only', '--tmpfs', '/tmp', '--user', '1000:1000', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges'];


export interface RunOptions {
    readonly env: Record<string, string>;
    readonly security?: string[];                   // Replaces chartSecurity: the negative controls weaken it
    readonly entrypoint?: string[];                 // Overrides the image's ENTRYPOINT (with `command` as its arguments)
    readonly command?: string[];                    // Overrides the image's CMD
    readonly waitFor?: 'started' | 'none';
}


export interface Container extends App.App {
    readonly name: string;
    exec(command: string[]): Promise<string>;
}


// Starts the container attached, so its stdout (the JSON log lines) and its exit code come back
// through the podman process, as the kubelet reads them from the runtime.
export const run = async function (options: RunOptions): Promise<Container> {

    const port = await freePort();
    const name = `item-api-image-test-${randomBytes(4).toString('hex')}`;
    const envArgs = Object.entries({ ...options.env, HOST: '127.0.0.1', PORT: String(port) }).flatMap(([key, value]) => ['--env', `${key}=${value}`]);
    const entrypoint = options.entrypoint ? ['--entrypoint', JSON.stringify(options.entrypoint)] : [];
    const args = ['run', '--rm', '--name', name, '--network', 'host', '--pull', 'never', ...(options.security ?? chartSecurity), ...envArgs, ...entrypoint, image, ...(options.command ?? [])];

    internals.names.add(name);
    const spawnedAt = Date.now();
    const child: ChildProcess = spawn('podman', args, { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });

    const stream = LogStream.follow(child, 'container');
    const { exited, waitForLog } = stream;
    void exited.then(() => internals.names.delete(name));

    const app = App.handle({
        pid: child.pid!,
        port,
        spawnedAt,
        stream,
        // What the kubelet does on pod deletion: the runtime signals the container's PID 1.
        signal: (signalName) => execFile('podman', ['kill', '--signal', signalName.replace(/^SIG/, ''), name], { env: env() }, () => {})
    });
    // Added to the handle itself: its `exit` is a getter that a copy would freeze.
    const container: Container = Object.assign(app, { name, exec: (command: string[]) => podman(['exec', name, ...command]) });

    if ((options.waitFor ?? 'started') === 'started') {
        // Generous: the container runtime and Node's startup share two busy cores.
        await waitForLog((line) => line.component === 'lifecycle' && line.msg === 'started', 60_000);
    }

    return container;
};


// A one-off container to completion (the migration Job): its exit code and output.
export const runToCompletion = async function (options: RunOptions): Promise<{ code: number | null; output: string }> {

    const container = await run({ ...options, waitFor: 'none' });
    const exit = await container.exited;
    return { code: exit.code, output: container.output() };
};


// For afterEach: whatever a test left running is removed.
export const removeAll = async function (): Promise<void> {

    const names = [...internals.names];
    internals.names.clear();
    await Promise.all(names.map((name) => podman(['rm', '--force', '--time', '0', name]).catch(() => {})));
};
