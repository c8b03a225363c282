// ESLint for the TypeScript (lib/, test/, examples/, bench/) and the plain scripts: the recommended
// rules of ESLint and typescript-eslint. An unused name is allowed when it starts with `_` or is
// left out of an object by a rest pattern; tests may use `any`, to hand the library ill-typed input.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/', 'docs/', 'build/', 'build-*/', 'prebuilds/', 'gpu-bundle/', 'demo-output/', 'node_modules/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
    },
  },
  { files: ['test/**'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
);
