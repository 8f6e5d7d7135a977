// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import noImportCycle from './scripts/eslint-no-import-cycle.js';

export default tseslint.config(
  { ignores: ['.tmp/**', 'dist/**', 'node_modules/**', 'bench/results/**', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // In a task queue a floating promise is a lost task.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', name: ['test', 'it', 'describe', 'suite'], package: 'node:test' },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // No import cycles in the library, `import type` included: a cycle ties layers together, and
    // it becomes a load-order bug (a class read before its module has run) the day one of its edges
    // turns into a value import. See scripts/eslint-no-import-cycle.js.
    files: ['src/**/*.ts'],
    plugins: { tasuki: noImportCycle },
    rules: { 'tasuki/no-import-cycle': ['error', { root: 'src' }] },
  },
);
