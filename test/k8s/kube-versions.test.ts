import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { podSpecOf } from './checks.ts';
import { find, helmTemplate, kubeVersions } from './render.ts';
import { loadTools } from './tools.ts';
import { kubectlValidate } from './validate.ts';

const tools = loadTools();
const helms = [['helm3', tools.helm3], ['helm4', tools.helm4]] as const;

describe('supported Kubernetes releases', () => {
    it.each(helms)('%s refuses a cluster older than the 1.34 floor, naming both versions', async (_name, helm) => {
        const result = await helmTemplate(helm, {}, '1.33');
        expect(result.code).not.toBe(0);
        expect(result.stderr).toContain('>=1.34.0-0');
        expect(result.stderr).toContain('v1.33');
        expect(result.stderr).toMatch(/incompatible with Kubernetes/);
    });

    it.each(kubeVersions.flatMap((v) => helms.map(([name, helm]) => [v, name, helm] as const)))(
        'renders on %s with %s', async (kubeVersion, _name, helm) => {
            const result = await helmTemplate(helm, {}, kubeVersion);
            expect(result.code, result.stderr).toBe(0);
        });
});

/**
 * Validation really is per release: a field that exists only in newer releases is refused
 * by the older releases' schemas. PodSpec.schedulingGroup (workload-aware scheduling) is
 * in the 1.36 and 1.37 schemas and in neither 1.34 nor 1.35 (1.35 had workloadRef instead).
 */
describe('schemas of each release', () => {
    const dir = mkdtempSync(join(tmpdir(), 'item-api-newer-field-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    async function deploymentWith(field: Record<string, unknown> | null): Promise<string> {
        const rendered = await helmTemplate(tools.helm4, {});
        expect(rendered.code, rendered.stderr).toBe(0);
        const deployment = find(rendered.manifests, 'Deployment');
        if (field) Object.assign(podSpecOf(deployment), field);
        const file = join(dir, `deployment-${field ? 'newer-field' : 'plain'}.yaml`);
        writeFileSync(file, stringify(deployment));
        return file;
    }

    it.each(['1.34', '1.35'])('%s refuses PodSpec.schedulingGroup as an unknown field', async (kubeVersion) => {
        const validation = await kubectlValidate(tools, kubeVersion, await deploymentWith({ schedulingGroup: { podGroupName: 'items' } }));
        expect(validation.run.code).not.toBe(0);
        expect(validation.failures).toHaveLength(1);
        expect(validation.failures[0]).toContain('spec.template.spec.schedulingGroup: Invalid value: value provided for unknown field');
    });

    it.each(['1.36', '1.37'])('%s accepts PodSpec.schedulingGroup', async (kubeVersion) => {
        const validation = await kubectlValidate(tools, kubeVersion, await deploymentWith({ schedulingGroup: { podGroupName: 'items' } }));
        expect(validation.failures).toEqual([]);
        expect(validation.run.code, validation.run.stderr).toBe(0);
    });

    it.each([...kubeVersions])('%s accepts the same Deployment without it (control)', async (kubeVersion) => {
        const validation = await kubectlValidate(tools, kubeVersion, await deploymentWith(null));
        expect(validation.failures).toEqual([]);
        expect(validation.run.code, validation.run.stderr).toBe(0);
    });
});
