import { join } from 'node:path';
import type { K8sTools, RunResult } from './tools.ts';
import { run } from './tools.ts';

/** CRDs kept in the repository (a minimal ServiceMonitor); the Gateway API ones come from its module source. */
export const repoCrdDir = join(import.meta.dirname, 'crds');

export interface Validation {
    run: RunResult;
    /** kubectl-validate's JSON report: one entry per file, one status per document. */
    report: Record<string, { status: string; message?: string }[]>;
    /** Every document that did not pass, as `file: message`. */
    failures: string[];
}

/**
 * kubectl-validate against one release's published OpenAPI schemas and the CRDs.
 * `--version` only names the schemas embedded in kubectl-validate (1.30 is its newest)
 * that would serve a group-version missing from the local ones; the matrix checks that
 * every rendered group-version is local, so nothing is validated against 1.30.
 */
export async function kubectlValidate(tools: K8sTools, kubeVersion: string, path: string): Promise<Validation> {
    const result = await run(tools.kubectlValidate, [
        path,
        '--local-schemas', join(tools.k8sOpenApiDir, kubeVersion),
        '--local-crds', repoCrdDir,
        '--local-crds', tools.gatewayApiCrds,
        '--version', '1.30',
        '--output', 'json',
    ]);
    const report = JSON.parse(result.stdout || '{}') as Validation['report'];
    const failures = Object.entries(report).flatMap(([file, docs]) =>
        docs.filter((d) => d.status !== 'Success').map((d) => `${file}: ${d.message ?? JSON.stringify(d)}`));
    return { run: result, report, failures };
}
