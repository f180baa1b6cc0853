// Type-aware lint; the layering of ../shared/design.md is enforced with import restrictions.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const layer = (files, forbidden, why) => ({
  files,
  rules: {
    'no-restricted-imports': ['error', {
      patterns: forbidden.map((dir) => ({ group: [`**/${dir}/*`, `../${dir}/*`], message: why })),
    }],
  },
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'scripts/*.mjs', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's test/describe return promises that the runner itself tracks.
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }],
      }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
    },
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
    },
  },
  layer(['src/lib/**'], ['state', 'inventory', 'agent', 'api', 'cli', 'lab', 'dhcp', 'dns', 'boot', 'provision', 'services', 'storage'], 'lib is the bottom layer'),
  layer(['src/state/**'], ['inventory', 'agent', 'api', 'cli', 'lab', 'dhcp', 'dns', 'boot', 'provision', 'services', 'storage'], 'state depends only on lib'),
  layer(['src/dhcp/**', 'src/dns/**', 'src/boot/**'], ['state', 'inventory', 'agent', 'api', 'cli', 'lab', 'provision', 'services', 'storage'], 'protocol code knows nothing of etcd: it imports lib and its own interfaces'),
  layer(['src/cli/**'], ['agent', 'lab/netns'], 'the CLI talks to the API or to state, never to agent internals'),
);
