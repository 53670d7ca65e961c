import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { findGracePeriodProblems, findHookOrderingProblems, findProbeProblems, findSecurityProblems } from './checks.ts';
import { find, helmLint, helmTemplate, kubeVersions, repoRoot } from './render.ts';
import type { Manifest } from './render.ts';
import { loadTools, mapLimit } from './tools.ts';
import type { RunResult } from './tools.ts';
import { kubectlValidate, repoCrdDir } from './validate.ts';
import type { Validation } from './validate.ts';
import { valueSets } from './value-sets.ts';

const tools = loadTools();
const helms = { helm3: tools.helm3, helm4: tools.helm4 } as const;
type HelmName = keyof typeof helms;
const setNames = Object.keys(valueSets);

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
const validations = new Map<string, Validation>();
const outDir = mkdtempSync(join(tmpdir(), 'item-api-rendered-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

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
        for (const file of ['dev-postgres.yaml', 'dev-postgres-secret.yaml']) copyFileSync(join(repoRoot, 'k8s', file), join(dir, file));
        copyFileSync(join(repoRoot, 'k8s', 'local', 'postgres.yaml'), join(dir, 'local-postgres.yaml'));
        validations.set(`${helm}/${v}`, await kubectlValidate(tools, v, dir));
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

        it('passes kubectl-validate for every rendered manifest, the dev Postgres and its Secret, and the local cluster\'s Postgres Service', () => {
            const validation = validations.get(`${helm}/${kubeVersion}`);
            expect(validation, 'validation did not run').toBeDefined();
            expect(validation?.failures).toEqual([]);
            expect(Object.keys(validation?.report ?? {})).toHaveLength(setNames.length + 3);
            expect(validation?.run.code, validation?.run.stderr).toBe(0);
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

/** group/version pairs the local CRDs serve, read from the CRD files themselves. */
function crdApiVersions(): Set<string> {
    const served = new Set<string>();
    for (const dir of [repoCrdDir, tools.gatewayApiCrds]) {
        for (const file of readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))) {
            for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
                const crd = doc.toJS() as { kind?: string; spec?: { group: string; versions: { name: string; served: boolean }[] } };
                if (crd.kind !== 'CustomResourceDefinition' || !crd.spec) continue;
                for (const v of crd.spec.versions.filter((x) => x.served)) served.add(`${crd.spec.group}/${v.name}`);
            }
        }
    }
    return served;
}

describe('schemas used for validation', () => {
    // A group-version missing from the target release's schemas and from the CRDs would
    // otherwise be validated against the 1.30 schema kubectl-validate embeds.
    it.each([...kubeVersions])('cover every rendered apiVersion on %s', (kubeVersion) => {
        const fromCrds = crdApiVersions();
        expect([...fromCrds]).toContain('gateway.networking.k8s.io/v1');
        const used = new Set<string>();
        for (const [k, r] of results) {
            if (k.includes(`/${kubeVersion}/`)) r.manifests.forEach((m) => used.add(m.apiVersion));
        }
        const missing = [...used]
            .filter((apiVersion) => !fromCrds.has(apiVersion))
            .filter((apiVersion) => {
                const file = apiVersion.includes('/') ? join('apis', `${apiVersion}.json`) : join('api', `${apiVersion}.json`);
                return !existsSync(join(tools.k8sOpenApiDir, kubeVersion, file));
            });
        expect(used).toContain('gateway.networking.k8s.io/v1');
        expect(used.size).toBeGreaterThan(5);
        expect(missing).toEqual([]);
    });
});
