import { defineConfig } from 'vitest/config';

// The built image (.ci/image-build.sh) run with podman as the chart runs it, against the same
// real PostgreSQL the app's tests use. One file at a time: each starts containers on two busy
// cores and measures a shutdown budget.
export default defineConfig({
    test: {
        include: ['test/image/**/*.test.ts'],
        globalSetup: ['test/support/global-setup.ts'],
        testTimeout: 60_000,
        hookTimeout: 180_000,
        pool: 'forks',
        fileParallelism: false,
        reporters: ['default', ['json', { outputFile: '.out/vitest/image.json' }]],
    },
});
