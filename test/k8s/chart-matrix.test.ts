import { copyFileSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { findGracePeriodProblems, findHookOrderingProblems, findProbeProblems, findSecurityProblems } from './checks.ts';
import { find, helmLint, helmTemplate, kubeVersions, repoRoot } from './render.ts';
import type { Manifest } from './render.ts';
import { loadTools, mapLimit, run } from './tools.ts';
import type { RunResult } from './tools.ts';
import { valueSets } from './value-sets.ts';

const tools = loadTools();
const helms = { helm3: tools.helm3, helm4: tools.helm4 } as const;
type HelmName = keyof typeof helms;
const setNames = Object.keys(valueSets);
const crdDir = join(import.meta.dirname, 'crds');

interface Cell {
    helm: HelmName;
    kubeVersion: string;
    set: string;
}
interface CellResult {
    lint: RunResult;
    template: RunResult;
    manifests: Manifest[];
}

const cells: Cell[] = Object.keys(helms).flatMap((helm) =>
    kubeVersions.flatMap((kubeVersion) => setNames.map((set) => ({ helm: helm as HelmName, kubeVersion, set }))));
const key = (c: Cell): string => `${c.helm}/${c.kubeVersion}/${c.set}`;
const results = new Map<string, CellResult>();
const validations = new Map<string, RunResult>();
const outDir = mkdtempSync(join(tmpdir(), 'item-api-rendered-'));

/** kubectl-validate embeds 1.30; newer versions come from the extracted release specs. */
function validateArgs(kubeVersion: string, dir: string): string[] {
    const args = [dir, '--local-crds', crdDir, '--output', 'json'];
    if (kubeVersion === '1.30') return [...args, '--version', '1.30'];
    // Local schemas take precedence over the embedded 1.30 ones, type by type; the
    // group-version test below makes sure nothing rendered relies on the 1.30 fallback.
    return [...args, '--version', '1.30', '--local-schemas', join(tools.k8sOpenApiDir, kubeVersion)];
}

beforeAll(async () => {
    await mapLimit(cells, 4, async (cell) => {
        const values = valueSets[cell.set] ?? {};
        const [lint, template] = await Promise.all([
            helmLint(helms[cell.helm], values, cell.kubeVersion),
            helmTemplate(helms[cell.helm], values, cell.kubeVersion),
        ]);
        results.set(key(cell), { lint, template, manifests: template.manifests });
        const dir = join(outDir, cell.helm, cell.kubeVersion);
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, `${cell.set}.yaml`), template.stdout);
    });
    // One kubectl-validate run per (helm, version): its start-up dominates per-file cost.
    const dirs = Object.keys(helms).flatMap((helm) => kubeVersions.map((v) => ({ helm, v })));
    await mapLimit(dirs, 2, async ({ helm, v }) => {
        const dir = join(outDir, helm, v);
        copyFileSync(join(repoRoot, 'k8s', 'dev-postgres.yaml'), join(dir, 'dev-postgres.yaml'));
        validations.set(`${helm}/${v}`, await run(tools.kubectlValidate, validateArgs(v, dir)));
    });
});

describe.each(Object.keys(helms))('%s', (helm) => {
    describe.each([...kubeVersions])('Kubernetes %s', (kubeVersion) => {
        it.each(setNames)('lints and renders %s', (set) => {
            const result = results.get(key({ helm: helm as HelmName, kubeVersion, set }));
            expect(result?.lint.code, result?.lint.stdout + (result?.lint.stderr ?? '')).toBe(0);
            expect(result?.template.code, result?.template.stderr).toBe(0);
            expect(result?.manifests.length).toBeGreaterThan(3);
        });

        it('passes kubectl-validate for every rendered manifest and the dev Postgres', () => {
            const result = validations.get(`${helm}/${kubeVersion}`);
            expect(result, 'validation did not run').toBeDefined();
            const report = JSON.parse(result?.stdout || '{}') as Record<string, { status: string; message?: string }[]>;
            const failures = Object.entries(report).flatMap(([file, docs]) =>
                docs.filter((d) => d.status !== 'Success').map((d) => `${file}: ${d.message ?? JSON.stringify(d)}`));
            expect(failures).toEqual([]);
            expect(Object.keys(report)).toHaveLength(setNames.length + 1);
            expect(result?.code, result?.stderr).toBe(0);
        });

        it.each(setNames)('keeps probes, grace period, hardening and hook order right for %s', (set) => {
            const manifests = results.get(key({ helm: helm as HelmName, kubeVersion, set }))?.manifests ?? [];
            const values = valueSets[set] as { shutdown?: { graceMarginSeconds?: number } };
            const deployment = find(manifests, 'Deployment');
            expect(findProbeProblems(deployment)).toEqual([]);
            expect(findGracePeriodProblems(deployment, values.shutdown?.graceMarginSeconds ?? 2)).toEqual([]);
            const pods = manifests.filter((m) => ['Deployment', 'Job', 'Pod'].includes(m.kind));
            expect(pods.map((m) => m.kind).sort()).toEqual(['Deployment', 'Job', 'Pod']);
            expect(pods.flatMap(findSecurityProblems)).toEqual([]);
            expect(findHookOrderingProblems(manifests)).toEqual([]);
        });
    });
});

describe('schemas used for validation', () => {
    // A group-version missing from the target release would otherwise be validated
    // against the 1.30 schema kubectl-validate embeds.
    it.each(kubeVersions.filter((v) => v !== '1.30'))('cover every rendered apiVersion on %s', (kubeVersion) => {
        const used = new Set<string>();
        for (const [k, r] of results) {
            if (k.includes(`/${kubeVersion}/`)) r.manifests.forEach((m) => used.add(m.apiVersion));
        }
        const missing = [...used]
            .filter((apiVersion) => !apiVersion.endsWith('monitoring.coreos.com/v1'))
            .filter((apiVersion) => {
                const file = apiVersion.includes('/') ? join('apis', `${apiVersion}.json`) : join('api', `${apiVersion}.json`);
                return !existsSync(join(tools.k8sOpenApiDir, kubeVersion, file));
            });
        expect(used.size).toBeGreaterThan(5);
        expect(missing).toEqual([]);
    });
});
