import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { find, helmTemplate, kinds, kubeVersions } from './render.ts';
import type { Manifest } from './render.ts';
import { loadTools } from './tools.ts';
import { kubectlValidate } from './validate.ts';

const tools = loadTools();
const gateway = { name: 'eg', namespace: 'envoy-gateway-system', sectionName: 'http' };
const route = (httpRoute: Record<string, unknown>) => ({ httpRoute: { enabled: true, parentRefs: [gateway], ...httpRoute } });

interface HTTPRouteSpec {
    parentRefs: Record<string, unknown>[];
    hostnames?: string[];
    rules: { matches: { path: { type: string; value: string } }[]; backendRefs: { name: string; port: number }[]; timeouts?: Record<string, string> }[];
}
const specOf = (m: Manifest): HTTPRouteSpec => m.spec as unknown as HTTPRouteSpec;

async function renderRoute(values: object): Promise<Manifest[]> {
    const result = await helmTemplate(tools.helm4, values);
    expect(result.code, result.stderr).toBe(0);
    return result.manifests;
}

describe('HTTPRoute', () => {
    it('is off by default', async () => {
        expect(kinds(await renderRoute({}))).not.toContain('HTTPRoute');
    });

    it('routes the configured paths and hosts to the Service port, through the Gateway named', async () => {
        const manifests = await renderRoute(route({
            hostnames: ['items.example.com'],
            matches: [{ path: { type: 'PathPrefix', value: '/items' } }, { path: { type: 'Exact', value: '/openapi.json' } }],
            timeouts: { request: '30s', backendRequest: '10s' },
        }));
        const httpRoute = find(manifests, 'HTTPRoute');
        const service = find(manifests, 'Service');
        expect(httpRoute.apiVersion).toBe('gateway.networking.k8s.io/v1');
        const spec = specOf(httpRoute);
        expect(spec.parentRefs).toEqual([gateway]);
        expect(spec.hostnames).toEqual(['items.example.com']);
        expect(spec.rules).toHaveLength(1);
        expect(spec.rules[0]?.matches).toEqual([
            { path: { type: 'PathPrefix', value: '/items' } },
            { path: { type: 'Exact', value: '/openapi.json' } },
        ]);
        const servicePort = (service.spec as { ports: { name: string; port: number }[] }).ports.find((p) => p.name === 'http')?.port;
        expect(spec.rules[0]?.backendRefs).toEqual([{ name: service.metadata.name, port: servicePort }]);
        expect(spec.rules[0]?.timeouts).toEqual({ request: '30s', backendRequest: '10s' });
    });

    it('defaults to every path, no host restriction and the implementation\'s timeouts', async () => {
        const spec = specOf(find(await renderRoute(route({})), 'HTTPRoute'));
        expect(spec.rules[0]?.matches).toEqual([{ path: { type: 'PathPrefix', value: '/' } }]);
        expect(spec.hostnames).toBeUndefined();
        expect(spec.rules[0]?.timeouts).toBeUndefined();
    });

    it('follows service.port', async () => {
        const spec = specOf(find(await renderRoute({ ...route({}), service: { port: 8080 } }), 'HTTPRoute'));
        expect(spec.rules[0]?.backendRefs[0]?.port).toBe(8080);
    });

    it('refuses to render without a Gateway to attach to', async () => {
        const result = await helmTemplate(tools.helm4, { httpRoute: { enabled: true } });
        expect(result.code).not.toBe(0);
        expect(result.stderr).toContain('httpRoute.enabled needs httpRoute.parentRefs');
    });

    it.each([
        ['a duration Gateway API does not accept', route({ timeouts: { request: '30 seconds' } }), 'request'],
        ['an unknown path match type', route({ matches: [{ path: { type: 'Prefix', value: '/' } }] }), 'type'],
        ['a parentRef without a name', { httpRoute: { enabled: true, parentRefs: [{ namespace: 'gw' }] } }, 'name'],
        ['an unknown httpRoute key', route({ rules: [] }), 'rules'],
    ])('values schema rejects %s', async (_label, values, field) => {
        const result = await helmTemplate(tools.helm4, values);
        expect(result.code).not.toBe(0);
        expect(result.stderr).toContain('schema');
        expect(result.stderr).toContain(field);
    });
});

interface SchemaNode {
    properties?: Record<string, SchemaNode>;
    items?: SchemaNode;
    pattern?: string;
    'x-kubernetes-validations'?: { rule: string; message: string }[];
}

/**
 * The HTTPRoute CRD carries CEL rules (x-kubernetes-validations) that its OpenAPI schema
 * cannot express. kubectl-validate builds the API server's CRD validation from the CRD,
 * CEL included, so a route the chart renders but the API server would refuse fails here.
 */
describe(`HTTPRoute against the Gateway API ${tools.gatewayApiVersion} CRD, CEL rules included`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'item-api-httproute-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const crd = parse(readFileSync(join(tools.gatewayApiCrds, 'gateway.networking.k8s.io_httproutes.yaml'), 'utf8')) as {
        spec: { versions: { name: string; schema: { openAPIV3Schema: SchemaNode } }[] };
    };
    const v1 = crd.spec.versions.find((v) => v.name === 'v1')?.schema.openAPIV3Schema;
    const rule = v1?.properties?.spec?.properties?.rules?.items;
    let files = 0;

    async function validateRendered(values: object, kubeVersion = '1.37') {
        const httpRoute = find(await renderRoute(values), 'HTTPRoute');
        const file = join(dir, `httproute-${files++}.yaml`);
        writeFileSync(file, JSON.stringify(httpRoute));
        return kubectlValidate(tools, kubeVersion, file);
    }

    it.each([...kubeVersions])('accepts the rendered route on %s', async (kubeVersion) => {
        const validation = await validateRendered(route({ timeouts: { request: '30s', backendRequest: '10s' } }), kubeVersion);
        expect(validation.failures).toEqual([]);
        expect(validation.run.code, validation.run.stderr).toBe(0);
    });

    it('refuses backendRequest longer than request: a CEL rule of the CRD, no schema keyword', async () => {
        const message = 'backendRequest timeout cannot be longer than request timeout';
        // Both durations match the schema's pattern; only the rule compares them.
        expect(rule?.properties?.timeouts?.['x-kubernetes-validations']?.find((r) => r.message === message)?.rule)
            .toContain('duration(self.backendRequest) > duration(self.request)');
        const validation = await validateRendered(route({ timeouts: { request: '10s', backendRequest: '20s' } }));
        expect(validation.run.code).not.toBe(0);
        expect(validation.failures).toHaveLength(1);
        expect(validation.failures[0]).toContain(message);
    });

    it('refuses a path with "//": the schema has no pattern for the value, only a CEL rule forbids it', async () => {
        const message = "must not contain '//' when type one of ['Exact', 'PathPrefix']";
        const path = rule?.properties?.matches?.items?.properties?.path;
        expect(path?.properties?.value?.pattern).toBeUndefined();
        expect(path?.['x-kubernetes-validations']?.find((r) => r.message === message)?.rule).toContain("!self.value.contains('//')");
        const validation = await validateRendered(route({ matches: [{ path: { type: 'PathPrefix', value: '/items//x' } }] }));
        expect(validation.run.code).not.toBe(0);
        expect(validation.failures).toHaveLength(1);
        expect(validation.failures[0]).toContain(message);
    });
});
