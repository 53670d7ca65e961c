import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { execForm, findDockerfileProblems, parseDockerfile } from './dockerfile.ts';
import { repoRoot } from './render.ts';

const read = (file: string): string => readFileSync(join(repoRoot, file), 'utf8');
const dockerfile = read('Dockerfile');
const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
const ctx = { startScript: pkg.scripts.start ?? '', nvmrc: read('.nvmrc') };

describe('Dockerfile', () => {
    it('meets every image rule', () => {
        expect(ctx.startScript).toBe('node --import ./src/instrument.ts src/main.ts');
        expect(findDockerfileProblems(dockerfile, ctx)).toEqual([]);
    });

    it('ends in the runtime stage, runs node as PID 1 with a numeric non-root user', () => {
        const stages = parseDockerfile(dockerfile);
        const final = stages.at(-1);
        expect(final?.name).toBe('runtime');
        const cmd = final?.instructions.filter((i) => i.keyword === 'CMD').at(-1);
        expect(execForm(cmd?.args ?? '')).toEqual(['node', '--import', './src/instrument.ts', 'src/main.ts']);
        expect(final?.instructions.filter((i) => i.keyword === 'USER').at(-1)?.args).toMatch(/^[1-9]\d*:\d+$/);
        expect(final?.instructions.some((i) => i.keyword === 'WORKDIR' && i.args === '/app')).toBe(true);
    });

    it('copies only runtime files into the final stage', () => {
        const final = parseDockerfile(dockerfile).at(-1);
        const sources = final?.instructions.filter((i) => i.keyword === 'COPY')
            .map((i) => i.args.replace(/--\S+\s+/g, '').split(/\s+/).slice(0, -1).join(' '));
        expect(sources).toEqual(['/app/node_modules', 'package.json package-lock.json', 'src', 'migrations']);
    });

    it('has a dev target for file sync: writable app dir for the runtime user', () => {
        const dev = parseDockerfile(dockerfile).find((s) => s.name === 'dev');
        expect(dev).toBeDefined();
        const text = dev?.instructions.map((i) => `${i.keyword} ${i.args}`).join('\n') ?? '';
        expect(text).toMatch(/chown 1000:1000 \/app/);
        expect(text).toMatch(/USER 1000:1000/);
        expect(execForm(dev?.instructions.filter((i) => i.keyword === 'CMD').at(-1)?.args ?? '')?.[0]).toBe('node');
    });

    it('keeps the build context to the runtime files', () => {
        const lines = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
        expect(lines[0]).toBe('*');
        expect(lines.slice(1).sort()).toEqual(['!migrations/', '!package-lock.json', '!package.json', '!src/']);
    });

    describe('negative controls: the rules catch', () => {
        const swap = (from: string | RegExp, to: string): string => {
            const changed = dockerfile.replace(from, to);
            expect(changed).not.toBe(dockerfile);
            return changed;
        };
        it.each([
            ['npm start as CMD', () => swap(/CMD \["node", "--import"[^\n]*\n?$/, 'CMD ["npm", "start"]\n'), 'runs a package manager'],
            ['a shell-form CMD', () => swap(/CMD \["node", "--import"[^\n]*\n?$/, 'CMD node --import ./src/instrument.ts src/main.ts\n'), 'shell form'],
            ['a named user', () => swap(/USER 1000:1000\nEXPOSE 3000 9464\n# node is PID 1/, 'USER node\nEXPOSE 3000 9464\n# node is PID 1'), 'not numeric'],
            ['a missing USER', () => swap(/USER 1000:1000\nEXPOSE 3000 9464\n# node is PID 1/, 'EXPOSE 3000 9464\n# node is PID 1'), 'runs as root'],
            ['dev dependencies at runtime', () => swap('npm ci --omit=dev --ignore-scripts', 'npm ci'), 'npm ci --omit=dev'],
            ['another Node major', () => dockerfile.replaceAll('node:24.21.0', 'node:22.20.0'), 'is not Node 24'],
            ['an unpinned base', () => dockerfile.replaceAll('node:24.21.0-bookworm-slim', 'node:latest'), 'not pinned'],
            ['an inherited entrypoint script', () => swap(/ENTRYPOINT \[\]\nCMD \["node", "--import"/, 'CMD ["node", "--import"'), 'inherits the base image ENTRYPOINT'],
            ['a shell entrypoint', () => swap(/ENTRYPOINT \[\]\nCMD \["node", "--import"/, 'ENTRYPOINT ["/bin/sh", "-c"]\nCMD ["node", "--import"'), 'runs before node'],
            ['a CMD that differs from the start script', () => swap(/"src\/main\.ts"\]\n?$/, '"src/server.ts"]\n'), 'differs from the start script'],
        ])('%s', (_label, mutate, expected) => {
            const problems = findDockerfileProblems(mutate(), ctx);
            expect(problems.join('\n')).toContain(expected);
        });
    });
});
