import { defineConfig } from 'vitest/config';

// Packaging checks (chart, Dockerfile, skaffold) run apart from the app's tests: they
// need the tools installed by .ci/k8s-tools.sh, not a database.
export default defineConfig({
    test: {
        include: ['test/k8s/**/*.test.ts'],
        testTimeout: 120_000,
        hookTimeout: 240_000,
        // Each file already runs its helm/kubectl-validate calls concurrently.
        maxWorkers: 2,
        reporters: ['default', ['json', { outputFile: '.out/vitest/k8s.json' }]],
    },
});
