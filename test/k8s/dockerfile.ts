/** Just enough of a Dockerfile parser for the packaging rules: stages and their instructions. */
export interface Instruction {
    keyword: string;
    args: string;
    line: number;
}

export interface Stage {
    name: string | undefined;
    base: string;
    instructions: Instruction[];
}

export function parseDockerfile(text: string): Stage[] {
    const logical: Instruction[] = [];
    let buffer = '';
    let start = 0;
    text.split('\n').forEach((raw, index) => {
        const trimmed = raw.trim();
        if (!buffer && (trimmed === '' || trimmed.startsWith('#'))) return;
        if (buffer && trimmed.startsWith('#')) return; // comments inside a continuation
        if (!buffer) start = index + 1;
        if (trimmed.endsWith('\\')) {
            buffer += trimmed.slice(0, -1) + ' ';
            return;
        }
        buffer += trimmed;
        const match = /^(\S+)\s*(.*)$/s.exec(buffer);
        if (match) logical.push({ keyword: (match[1] ?? '').toUpperCase(), args: (match[2] ?? '').trim(), line: start });
        buffer = '';
    });

    const stages: Stage[] = [];
    for (const instruction of logical) {
        if (instruction.keyword === 'FROM') {
            const parts = instruction.args.split(/\s+/).filter((p) => !p.startsWith('--'));
            const as = parts.findIndex((p) => p.toUpperCase() === 'AS');
            stages.push({ base: parts[0] ?? '', name: as >= 0 ? parts[as + 1] : undefined, instructions: [] });
        } else if (instruction.keyword !== 'ARG' || stages.length > 0) {
            const stage = stages.at(-1);
            if (!stage) throw new Error(`line ${instruction.line}: ${instruction.keyword} before FROM`);
            stage.instructions.push(instruction);
        }
    }
    return stages;
}

/** Exec form (a JSON array) or undefined for the shell form. */
export function execForm(args: string): string[] | undefined {
    if (!args.startsWith('[')) return undefined;
    try {
        const parsed: unknown = JSON.parse(args);
        return Array.isArray(parsed) && parsed.every((p) => typeof p === 'string') ? parsed : undefined;
    } catch {
        return undefined;
    }
}

/** The stages whose content ends up in `target`: its FROM chain and every COPY --from. */
export function stagesFeeding(stages: readonly Stage[], target: Stage): Stage[] {
    const seen = new Set<Stage>();
    const visit = (stage: Stage): void => {
        if (seen.has(stage)) return;
        seen.add(stage);
        const parent = stages.find((s) => s.name === stage.base);
        if (parent) visit(parent);
        for (const i of stage.instructions) {
            const from = i.keyword === 'COPY' ? /--from=(\S+)/.exec(i.args)?.[1] : undefined;
            const source = from === undefined ? undefined : stages.find((s, n) => s.name === from || String(n) === from);
            if (source) visit(source);
        }
    };
    visit(target);
    return [...seen];
}

export interface DockerfileContext {
    startScript: string;
    nvmrc: string;
}

/** The image rules from the packaging issue; returns every violated rule. */
export function findDockerfileProblems(text: string, ctx: DockerfileContext): string[] {
    const problems: string[] = [];
    const stages = parseDockerfile(text);
    const final = stages.at(-1);
    if (!final) return ['no FROM'];
    if (stages.length < 2) problems.push('not multi-stage');

    const nodeMajor = ctx.nvmrc.trim().replace(/^v/, '').split('.')[0];
    for (const stage of stages) {
        if (stages.some((s) => s.name === stage.base)) continue;
        const tag = /^(?:[\w.-]+\/)*node(?:js)?[\w-]*:(.+)$/.exec(stage.base)?.[1];
        if (!tag) {
            problems.push(`stage ${stage.name ?? '?'}: base ${stage.base} is not a Node image`);
            continue;
        }
        if (!/^\d+\.\d+\.\d+/.test(tag) && !/^\d+$/.test(tag.replace(/^nodejs/, ''))) {
            problems.push(`stage ${stage.name ?? '?'}: base tag ${tag} is not pinned`);
        }
        const major = /^(\d+)/.exec(tag)?.[1];
        if (major !== nodeMajor) problems.push(`stage ${stage.name ?? '?'}: base ${stage.base} is not Node ${nodeMajor} (.nvmrc)`);
    }

    const users = final.instructions.filter((i) => i.keyword === 'USER');
    const user = users.at(-1)?.args;
    if (!user) problems.push('final stage runs as root (no USER)');
    else if (!/^\d+(:\d+)?$/.test(user)) problems.push(`final USER ${user} is not numeric (runAsNonRoot cannot verify a name)`);
    else if (user.split(':')[0] === '0') problems.push('final USER is root');

    const cmd = final.instructions.filter((i) => i.keyword === 'CMD').at(-1);
    const entrypoint = final.instructions.filter((i) => i.keyword === 'ENTRYPOINT').at(-1);
    for (const i of [cmd, entrypoint]) {
        if (i && /\bnpm\b|\bnpx\b|\byarn\b|\bpnpm\b/.test(i.args)) problems.push(`${i.keyword} runs a package manager: ${i.args}`);
        if (i && !execForm(i.args)) problems.push(`${i.keyword} is in shell form (a shell would be PID 1)`);
    }
    // Official node images ship ENTRYPOINT ["docker-entrypoint.sh"]: only an explicit
    // reset guarantees that the CMD's node is what the runtime starts.
    if (!entrypoint) problems.push('final stage inherits the base image ENTRYPOINT (a shell script); reset it with ENTRYPOINT []');
    else if (JSON.stringify(execForm(entrypoint.args)) !== '[]') problems.push(`final stage ENTRYPOINT ${entrypoint.args} runs before node; the CMD alone must start node`);
    const argv = cmd ? execForm(cmd.args) : undefined;
    if (!cmd) problems.push('final stage has no CMD');
    else if (argv && JSON.stringify(argv) !== JSON.stringify(ctx.startScript.split(' '))) {
        problems.push(`CMD ${JSON.stringify(argv)} differs from the start script "${ctx.startScript}"`);
    }

    const runtimePath = stagesFeeding(stages, final);
    const runs = runtimePath.flatMap((s) => s.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args));
    if (!runs.some((r) => /\bnpm ci\b[^&;]*--omit=dev/.test(r))) problems.push('no `npm ci --omit=dev` in the runtime path');
    for (const r of runs) {
        if (/\bnpm (ci|install|i)\b/.test(r) && !/--omit=dev/.test(r)) problems.push(`dev dependencies installed in the runtime path: ${r}`);
    }
    return problems;
}
