import { readFileSync } from 'node:fs';


// A package.json script as an argv: the container's command is the `start` script (the Dockerfile
// check holds CMD to it), so the lifecycle tests, the rollout simulator and the benchmark all run
// exactly what is deployed. `node` becomes the node running the caller: the one on PATH may be another.

export const argv = function (script = 'start'): [string, ...string[]] {

    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
    const line = pkg.scripts[script];
    if (!line || /[|&;$`<>]/.test(line)) {
        throw new Error(`package.json scripts.${script} must be a plain command line (got ${JSON.stringify(line)})`);
    }

    const [executable, ...args] = line.trim().split(/\s+/);
    if (executable !== 'node') {
        throw new Error(`package.json scripts.${script} must start with node (got ${executable})`);
    }

    return [process.execPath, ...args];
};
