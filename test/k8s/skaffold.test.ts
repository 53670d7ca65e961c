import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseDockerfile } from './dockerfile.ts';
import { find, helmTemplate, parseManifests, repoRoot } from './render.ts';
import { loadTools } from './tools.ts';

interface HelmRelease {
    name: string;
    chartPath: string;
    setValueTemplates?: Record<string, string>;
    setValues?: Record<string, unknown>;
}
interface SkaffoldConfig {
    apiVersion: string;
    kind: string;
    metadata: { name: string };
    requires?: { configs?: string[] }[];
    build?: { artifacts: { image: string; context?: string; docker?: { dockerfile?: string; target?: string } }[]; local?: { push?: boolean } };
    manifests?: { rawYaml?: string[] };
    deploy?: { kubectl?: object; helm?: { releases: HelmRelease[] } };
    portForward?: { resourceType: string; resourceName: string; port: number; localPort?: number }[];
    profiles?: { name: string; activation?: { kubeContext?: string }[]; patches?: { op: string; path: string; value?: unknown }[] }[];
}

const tools = loadTools();
const configs = parseAllDocuments(readFileSync(join(repoRoot, 'skaffold.yaml'), 'utf8')).map((d) => d.toJS() as SkaffoldConfig);
const schema = JSON.parse(readFileSync(tools.skaffoldSchema, 'utf8')) as object;
// The published schema is draft-07 with IDE-only keywords (x-intellij-*, preferredOrder).
const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);
const app = configs.find((c) => c.deploy?.helm);
const release = app?.deploy?.helm?.releases[0];
const artifact = app?.build?.artifacts[0];
/** Skaffold's template key for an image (util.SanitizeHelmTemplateValue): `.`, `-`, `/`, `:` become `_`. */
const templateKey = (image: string): string => image.replace(/[.\-/:]/g, '_');

describe('skaffold.yaml', () => {
    it(`validates against the published schema of its apiVersion`, () => {
        expect(configs.length).toBeGreaterThan(0);
        for (const config of configs) {
            expect(config.apiVersion).toBe(`skaffold/${tools.skaffoldSchemaVersion}`);
            const ok = validate(config);
            expect(validate.errors ?? [], config.metadata.name).toEqual([]);
            expect(ok).toBe(true);
        }
    });

    it('negative control: the schema rejects a misspelt field', () => {
        const broken = structuredClone(app) as unknown as { deploy: { helm: { releases: Record<string, unknown>[] } } };
        const first = broken.deploy.helm.releases[0] ?? {};
        first.chartPth = first.chartPath;
        delete first.chartPath;
        expect(validate(broken)).toBe(false);
    });

    it('deploys the dev database before the chart whose migration hook needs it', () => {
        const names = configs.map((c) => c.metadata.name);
        const db = configs.find((c) => c.manifests?.rawYaml?.length);
        expect(db?.deploy?.kubectl).toBeDefined();
        expect(db?.deploy?.helm).toBeUndefined();
        expect(names.indexOf(db?.metadata.name ?? '')).toBeLessThan(names.indexOf(app?.metadata.name ?? ''));
        expect(app?.requires?.flatMap((r) => r.configs ?? [])).toContain(db?.metadata.name);
        for (const file of db?.manifests?.rawYaml ?? []) expect(existsSync(join(repoRoot, file)), file).toBe(true);
    });

    it('injects the built image into the chart', () => {
        expect(artifact?.image).toBeDefined();
        const key = templateKey(artifact?.image ?? '');
        expect(release?.setValueTemplates).toEqual({
            'image.repository': `{{.IMAGE_REPO_${key}}}`,
            'image.tag': `{{.IMAGE_TAG_${key}}}`,
        });
        expect(existsSync(join(repoRoot, release?.chartPath ?? '-', 'Chart.yaml'))).toBe(true);
        expect(existsSync(join(repoRoot, artifact?.docker?.dockerfile ?? 'Dockerfile'))).toBe(true);
    });

    it('builds Dockerfile targets that exist', () => {
        const stageNames = parseDockerfile(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8')).map((s) => s.name);
        const targets = [artifact?.docker?.target, ...(app?.profiles ?? []).flatMap((p) =>
            (p.patches ?? []).filter((x) => x.path.endsWith('/docker/target')).map((x) => x.value))];
        expect(targets).toEqual(['runtime', 'dev']);
        for (const t of targets) expect(stageNames).toContain(t);
    });

    it('points the chart at the dev database Secret and renders with its values', async () => {
        const secret = parseManifests(readFileSync(join(repoRoot, 'k8s', 'dev-postgres-secret.yaml'), 'utf8')).find((m) => m.kind === 'Secret');
        expect(release?.setValues?.existingSecret).toBe(secret?.metadata.name);
        expect((secret as { stringData?: Record<string, string> } | undefined)?.stringData?.DATABASE_URL).toMatch(/^postgres:\/\/[^:]+:[^@]+@postgres:5432\//);
        const values: Record<string, unknown> = { image: { repository: 'item-api', tag: 'dev' } };
        for (const [k, v] of Object.entries(release?.setValues ?? {})) {
            const path = k.split('.');
            let node = values;
            for (const p of path.slice(0, -1)) node = (node[p] ??= {}) as Record<string, unknown>;
            node[path.at(-1) ?? k] = v;
        }
        const rendered = await helmTemplate(tools.helm3, values);
        expect(rendered.code, rendered.stderr).toBe(0);
        const service = find(rendered.manifests, 'Service');
        const forward = app?.portForward?.[0];
        expect(forward).toMatchObject({ resourceType: 'service', resourceName: service.metadata.name });
        expect((service.spec as { ports: { port: number }[] }).ports.map((p) => p.port)).toContain(forward?.port);
        expect(release?.name).toBe('item-api');
    });

    it('has kind and minikube profiles that load images instead of pushing', () => {
        for (const [name, context] of [['kind', 'kind-.*'], ['minikube', 'minikube']] as const) {
            const profile = app?.profiles?.find((p) => p.name === name);
            expect(profile?.activation).toEqual([{ kubeContext: context }]);
            expect(profile?.patches).toContainEqual({ op: 'add', path: '/build/local/push', value: false });
        }
    });

    it('has a local-cluster profile in both configs, activated by the local cluster\'s kube context', () => {
        const context = /^current-context: (\S+)$/m.exec(readFileSync(join(repoRoot, 'k8s', 'local', 'cluster.sh'), 'utf8'))?.[1];
        expect(context).toBeDefined();
        for (const config of configs) {
            const profile = config.profiles?.find((p) => p.name === 'local-cluster');
            expect(profile?.activation, config.metadata.name).toEqual([{ kubeContext: context }]);
        }

        const db = configs.find((c) => c.manifests?.rawYaml?.length)?.profiles?.find((p) => p.name === 'local-cluster');
        expect(db?.patches).toEqual([{ op: 'replace', path: '/manifests/rawYaml/1', value: 'k8s/local/postgres.yaml' }]);
        const patches = app?.profiles?.find((p) => p.name === 'local-cluster')?.patches;
        expect(patches).toContainEqual({ op: 'add', path: '/build/local/push', value: true });
        expect(patches).toContainEqual({ op: 'add', path: '/deploy/helm/releases/0/setValueTemplates/image.digest', value: `{{.IMAGE_DIGEST_${templateKey(artifact?.image ?? '')}}}` });
    });

    it('syncs src/** into a dev image whose root filesystem is writable', () => {
        const sync = app?.profiles?.find((p) => p.name === 'sync');
        expect(sync?.patches).toContainEqual({ op: 'add', path: '/build/artifacts/0/sync', value: { manual: [{ src: 'src/**', dest: '.' }] } });
        expect(sync?.patches).toContainEqual({
            op: 'add', path: '/deploy/helm/releases/0/setValues/securityContext.readOnlyRootFilesystem', value: false,
        });
    });
});

describe('k8s/kind-config.yaml', () => {
    it('defines a kind cluster named for the skaffold kind context, with workers for two replicas', () => {
        const config = parseAllDocuments(readFileSync(join(repoRoot, 'k8s', 'kind-config.yaml'), 'utf8'))[0]?.toJS() as {
            kind: string; apiVersion: string; name: string; nodes: { role: string }[];
        };
        expect(config).toMatchObject({ kind: 'Cluster', apiVersion: 'kind.x-k8s.io/v1alpha4', name: 'item-api' });
        expect(config.nodes.filter((n) => n.role === 'worker').length).toBeGreaterThanOrEqual(2);
    });
});

describe('k8s/dev-postgres.yaml', () => {
    it('runs a pinned official postgres image as a StatefulSet behind the postgres Service', () => {
        const manifests = parseManifests(readFileSync(join(repoRoot, 'k8s', 'dev-postgres.yaml'), 'utf8'));
        expect(manifests.map((m) => m.kind).sort()).toEqual(['Service', 'StatefulSet']);
        const image = JSON.stringify(find(manifests, 'StatefulSet')).match(/"image":"([^"]+)"/)?.[1];
        expect(image).toMatch(/^postgres:\d+\.\d+/);
        expect(find(manifests, 'Service').metadata.name).toBe('postgres');
    });
});
