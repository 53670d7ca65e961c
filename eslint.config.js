import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
    { ignores: ['node_modules/', '.data/', '.out/', 'coverage/', 'charts/', 'k8s/'] },
    js.configs.recommended,
    ...tseslint.configs.recommended,
    {
        rules: {
            '@typescript-eslint/consistent-type-imports': 'error',
            '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
            'no-console': 'error',
            'eqeqeq': ['error', 'always'],
            'prefer-const': 'error'
        }
    },
    {
        files: ['test/**', '.ci/**', 'bench/**'],
        rules: {
            'no-console': 'off',
            '@typescript-eslint/no-explicit-any': 'off'            // Response bodies are untyped JSON
        }
    }
);
