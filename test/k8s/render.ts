import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { run } from './tools.ts';
import type { RunResult } from './tools.ts';

export const repoRoot = resolve(import.meta.dirname, '..', '..');
export const chartDir = join(repoRoot, 'charts', 'item-api');
/** 1.35-1.37 are supported upstream; 1.34 is the floor managed providers still run. */
export const kubeVersions = ['1.34', '1.35', '1.36', '1.37'] as const;
export const newestKubeVersion = '1.37';
export const releaseName = 'item-api';

/** A rendered Kubernetes object; only the fields the checks read are typed. */
export interface Manifest {
    apiVersion: string;
    kind: string;
    metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
    spec?: Record<string, unknown>;
    [key: string]: unknown;
}

export interface Rendered extends RunResult {
    manifests: Manifest[];
}

const valuesDir = mkdtempSync(join(tmpdir(), 'item-api-values-'));
process.once('exit', () => rmSync(valuesDir, { recursive: true, force: true }));         // Also imported outside vitest (test/e2e)
let valuesFiles = 0;

/** Values go through a file (JSON is YAML) so types stay exact, unlike --set. */
export function valuesFile(values: object): string {
    const file = join(valuesDir, `values-${valuesFiles++}.yaml`);
    writeFileSync(file, JSON.stringify(values));
    return file;
}

export function parseManifests(text: string): Manifest[] {
    return parseAllDocuments(text)
        .map((doc) => doc.toJS() as Manifest | null)
        .filter((doc): doc is Manifest => doc !== null && typeof doc === 'object');
}

export async function helmTemplate(helm: string, values: object, kubeVersion: string = newestKubeVersion): Promise<Rendered> {
    const result = await run(helm, [
        'template', releaseName, chartDir,
        '--kube-version', kubeVersion,
        '--values', valuesFile(values),
    ]);
    return { ...result, manifests: result.code === 0 ? parseManifests(result.stdout) : [] };
}

export async function helmLint(helm: string, values: object, kubeVersion: string): Promise<RunResult> {
    return run(helm, ['lint', chartDir, '--strict', '--kube-version', kubeVersion, '--values', valuesFile(values)]);
}

export function find(manifests: readonly Manifest[], kind: string, nameSuffix = ''): Manifest {
    const found = manifests.find((m) => m.kind === kind && m.metadata.name.endsWith(nameSuffix));
    if (!found) throw new Error(`no ${kind}${nameSuffix ? ` named *${nameSuffix}` : ''} rendered`);
    return found;
}

export function kinds(manifests: readonly Manifest[]): string[] {
    return manifests.map((m) => m.kind).sort();
}
