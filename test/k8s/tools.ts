import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';

import * as Cache from '../support/cache.ts';

const execFileAsync = promisify(execFile);

export interface K8sTools {
    helm3: string;
    helm4: string;
    kubectlValidate: string;
    skaffoldSchema: string;
    skaffoldSchemaVersion: string;
    k8sOpenApiDir: string;
    gatewayApiCrds: string;
    gatewayApiVersion: string;
}

/** Paths written by .ci/k8s-tools.sh; environment variables of the same name win. */
export function loadTools(): K8sTools {
    const envFile = Cache.dir('k8s-tools.env');
    const fromFile: Record<string, string> = {};
    if (existsSync(envFile)) {
        for (const line of readFileSync(envFile, 'utf8').split('\n')) {
            const eq = line.indexOf('=');
            if (eq > 0) fromFile[line.slice(0, eq)] = line.slice(eq + 1);
        }
    }
    const get = (name: string): string => {
        const value = process.env[name] ?? fromFile[name];
        if (!value) throw new Error(`${name} is not set and ${envFile} lacks it: run .ci/k8s-tools.sh first`);
        return value;
    };
    const tools: K8sTools = {
        helm3: get('HELM3'),
        helm4: get('HELM4'),
        kubectlValidate: get('KUBECTL_VALIDATE'),
        skaffoldSchema: get('SKAFFOLD_SCHEMA'),
        skaffoldSchemaVersion: get('SKAFFOLD_SCHEMA_VERSION'),
        k8sOpenApiDir: get('K8S_OPENAPI_DIR'),
        gatewayApiCrds: get('GATEWAY_API_CRDS'),
        gatewayApiVersion: get('GATEWAY_API_VERSION'),
    };
    for (const path of [tools.helm3, tools.helm4, tools.kubectlValidate, tools.skaffoldSchema, tools.k8sOpenApiDir, tools.gatewayApiCrds]) {
        if (!existsSync(path)) throw new Error(`${path} is missing: run .ci/k8s-tools.sh`);
    }
    return tools;
}

export interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
}

/** Runs a command without a shell; a non-zero exit is a result, not an exception. */
export async function run(file: string, args: readonly string[], cwd?: string): Promise<RunResult> {
    try {
        const { stdout, stderr } = await execFileAsync(file, args, { cwd, maxBuffer: 64 * 1024 * 1024 });
        return { code: 0, stdout, stderr };
    } catch (error) {
        const failed = error as { code?: number | string; stdout?: string; stderr?: string; message: string };
        if (typeof failed.code !== 'number') throw error;
        return { code: failed.code, stdout: failed.stdout ?? '', stderr: failed.stderr ?? failed.message };
    }
}

/** Runs tasks with at most `limit` in flight: the machine has 2 cores. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
    const results: R[] = new Array<R>(items.length);
    let next = 0;
    const worker = async (): Promise<void> => {
        while (next < items.length) {
            const index = next++;
            results[index] = await task(items[index] as T);
        }
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
    return results;
}
