import { describe, expect, it } from 'vitest';
import { findSecurityProblems, podSpecOf } from './checks.ts';
import { helmTemplate } from './render.ts';
import type { Manifest } from './render.ts';
import { loadTools } from './tools.ts';

// Pod Security "restricted" is refused by the chart at render time: a real API server
// refuses only the helm test pod and merely warns for the Deployment and the Job, whose
// pods then fail to be created by their controllers. One case per rule the values reach.

const { helm3, helm4 } = loadTools();
const helms = [['helm3', helm3], ['helm4', helm4]] as const;
const podKinds = ['Deployment', 'Job', 'Pod'];

interface Case {
    rule: string;
    values: Record<string, unknown>;
    /** The value named in the message. */
    names: string;
}

// null removes a default in Helm, which is how a user "unsets" a field.
const refused: Case[] = [
    { rule: 'Running as Non-root', values: { podSecurityContext: { runAsNonRoot: false } }, names: 'podSecurityContext.runAsNonRoot=false' },
    { rule: 'Running as Non-root', values: { securityContext: { runAsNonRoot: false } }, names: 'securityContext.runAsNonRoot=false' },
    {
        rule: 'Running as Non-root',
        values: { podSecurityContext: { runAsNonRoot: null }, securityContext: { runAsNonRoot: null } },
        names: 'neither podSecurityContext.runAsNonRoot nor securityContext.runAsNonRoot is true',
    },
    { rule: 'Running as Non-root user', values: { securityContext: { runAsUser: 0 } }, names: 'securityContext.runAsUser=0' },
    { rule: 'Running as Non-root user', values: { podSecurityContext: { runAsUser: 0 } }, names: 'podSecurityContext.runAsUser=0' },
    { rule: 'Privilege Escalation', values: { securityContext: { allowPrivilegeEscalation: true } }, names: 'securityContext.allowPrivilegeEscalation=true' },
    { rule: 'Privilege Escalation', values: { securityContext: { allowPrivilegeEscalation: null } }, names: 'securityContext.allowPrivilegeEscalation is unset' },
    { rule: 'Privileged Containers', values: { securityContext: { privileged: true } }, names: 'securityContext.privileged=true' },
    { rule: 'Capabilities', values: { securityContext: { capabilities: { drop: ['ALL'], add: ['SYS_ADMIN'] } } }, names: 'securityContext.capabilities.add=SYS_ADMIN' },
    { rule: 'Capabilities', values: { securityContext: { capabilities: { drop: ['NET_RAW'] } } }, names: 'securityContext.capabilities.drop=[NET_RAW]' },
    { rule: 'Seccomp', values: { podSecurityContext: { seccompProfile: { type: 'Unconfined' } } }, names: 'podSecurityContext.seccompProfile.type=Unconfined' },
    { rule: 'Seccomp', values: { securityContext: { seccompProfile: { type: 'Unconfined' } } }, names: 'securityContext.seccompProfile.type=Unconfined' },
    {
        rule: 'Seccomp',
        values: { podSecurityContext: { seccompProfile: null }, securityContext: { seccompProfile: null } },
        names: 'neither podSecurityContext.seccompProfile nor securityContext.seccompProfile is set',
    },
    { rule: 'HostProcess', values: { securityContext: { windowsOptions: { hostProcess: true } } }, names: 'securityContext.windowsOptions.hostProcess=true' },
    { rule: 'HostProcess', values: { podSecurityContext: { windowsOptions: { hostProcess: true } } }, names: 'podSecurityContext.windowsOptions.hostProcess=true' },
    { rule: 'SELinux', values: { securityContext: { seLinuxOptions: { type: 'spc_t' } } }, names: 'securityContext.seLinuxOptions.type=spc_t' },
    { rule: 'SELinux', values: { podSecurityContext: { seLinuxOptions: { user: 'system_u' } } }, names: 'podSecurityContext.seLinuxOptions.user=system_u' },
    { rule: 'SELinux', values: { securityContext: { seLinuxOptions: { role: 'sysadm_r' } } }, names: 'securityContext.seLinuxOptions.role=sysadm_r' },
    { rule: '/proc Mount Type', values: { securityContext: { procMount: 'Unmasked' } }, names: 'securityContext.procMount=Unmasked' },
    { rule: 'AppArmor', values: { securityContext: { appArmorProfile: { type: 'Unconfined' } } }, names: 'securityContext.appArmorProfile.type=Unconfined' },
    { rule: 'AppArmor', values: { podSecurityContext: { appArmorProfile: { type: 'Unconfined' } } }, names: 'podSecurityContext.appArmorProfile.type=Unconfined' },
    {
        rule: 'AppArmor',
        values: { podAnnotations: { 'container.apparmor.security.beta.kubernetes.io/item-api': 'unconfined' } },
        names: 'podAnnotations.container.apparmor.security.beta.kubernetes.io/item-api=unconfined',
    },
    { rule: 'Sysctls', values: { podSecurityContext: { sysctls: [{ name: 'kernel.msgmax', value: '65536' }] } }, names: 'podSecurityContext.sysctls kernel.msgmax' },
];

// What the restricted profile allows must keep rendering: each is next to a refused case.
const allowed: { label: string; values: Record<string, unknown> }[] = [
    { label: 'adding NET_BIND_SERVICE', values: { securityContext: { capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] } } } },
    { label: 'a Localhost seccomp profile', values: { securityContext: { seccompProfile: { type: 'Localhost', localhostProfile: 'profiles/node.json' } } } },
    { label: 'seccomp set on the container only', values: { podSecurityContext: { seccompProfile: null } } },
    { label: 'runAsNonRoot set on the pod only', values: { securityContext: { runAsNonRoot: null } } },
    { label: 'a safe sysctl', values: { podSecurityContext: { sysctls: [{ name: 'net.ipv4.ip_local_port_range', value: '1024 65000' }] } } },
    { label: 'the container_t SELinux type', values: { securityContext: { seLinuxOptions: { type: 'container_t', level: 's0:c1,c2' } } } },
    { label: 'a runtime/default AppArmor annotation', values: { podAnnotations: { 'container.apparmor.security.beta.kubernetes.io/item-api': 'runtime/default' } } },
    { label: 'a RuntimeDefault AppArmor profile', values: { securityContext: { appArmorProfile: { type: 'RuntimeDefault' } } } },
];

const pods = (manifests: readonly Manifest[]): Manifest[] => manifests.filter((m) => podKinds.includes(m.kind));

describe('Pod Security "restricted"', () => {
    it.each(refused)('refuses $names ($rule)', async ({ rule, values, names }) => {
        for (const [name, helm] of helms) {
            const result = await helmTemplate(helm, values);
            expect(result.code, `${name} rendered it`).not.toBe(0);
            expect(result.stderr, name).toContain('Pod Security "restricted"');
            expect(result.stderr, name).toContain(`${names}`);
            expect(result.stderr, name).toContain(`"${rule}"`);
            expect(result.stderr, name).toContain('podSecurity.allowNonRestricted=true');
        }
    });

    it.each(refused)('renders $names into every pod with podSecurity.allowNonRestricted', async ({ values }) => {
        const result = await helmTemplate(helm4, { ...values, podSecurity: { allowNonRestricted: true } });
        expect(result.code, result.stderr).toBe(0);
        expect(pods(result.manifests).map((m) => m.kind).sort()).toEqual(podKinds);
    });

    it.each(allowed)('accepts $label', async ({ values }) => {
        const result = await helmTemplate(helm4, values);
        expect(result.code, result.stderr).toBe(0);
        expect(pods(result.manifests)).toHaveLength(3);
    });

    it('lists every broken rule at once', async () => {
        const result = await helmTemplate(helm4, { securityContext: { runAsUser: 0, privileged: true, allowPrivilegeEscalation: true } });
        expect(result.code).not.toBe(0);
        for (const expected of ['securityContext.runAsUser=0', 'securityContext.privileged=true', 'securityContext.allowPrivilegeEscalation=true']) {
            expect(result.stderr).toContain(expected);
        }
    });

    it('is what the default values already satisfy, in all three pods', async () => {
        const result = await helmTemplate(helm4, {});
        expect(result.code, result.stderr).toBe(0);
        const rendered = pods(result.manifests);
        expect(rendered).toHaveLength(3);
        expect(rendered.flatMap(findSecurityProblems)).toEqual([]);
    });

    it('opt-out: the value really reaches the pods, so the refusal came from the check', async () => {
        const result = await helmTemplate(helm4, { securityContext: { runAsUser: 0 }, podSecurity: { allowNonRestricted: true } });
        expect(result.code, result.stderr).toBe(0);
        for (const m of pods(result.manifests)) {
            expect(podSpecOf(m).containers[0]?.securityContext?.runAsUser, m.kind).toBe(0);
            expect(findSecurityProblems(m)).toContain(`${m.kind} ${m.metadata.name} container ${podSpecOf(m).containers[0]?.name}: runAsUser is not a non-zero uid`);
        }
    });

    it('the opt-out is a boolean in the values schema', async () => {
        const result = await helmTemplate(helm4, { podSecurity: { allowNonRestricted: 'yes' } });
        expect(result.code).not.toBe(0);
        expect(result.stderr).toContain('allowNonRestricted');
    });
});
