import { defineConfig } from 'vitest/config';


export default defineConfig({
    test: {
        include: ['test/**/*.test.ts'],
        exclude: ['test/k8s/**', 'test/image/**', 'node_modules/**'],
        globalSetup: ['test/support/global-setup.ts'],
        testTimeout: 30_000,
        hookTimeout: 60_000,
        pool: 'forks',
        reporters: ['default', ['json', { outputFile: '.out/vitest/app.json' }]],
        maxWorkers: 2
    }
});
