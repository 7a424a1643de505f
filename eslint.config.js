// Lint doubles as the architecture check: the import rules below are the
// boundaries of DESIGN.md ("Imports flow one way") and fail the run when crossed.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import vue from 'eslint-plugin-vue';
import vueParser from 'vue-eslint-parser';
import globals from 'globals';
import { builtinModules } from 'node:module';

// Node's built-ins are matched exactly (a pattern "events" would also catch "./events").
const nodeBuiltins = `^(node:.*|${builtinModules.map((name) => name.replace(/[/.]/g, '\\$&')).join('|')})$`;
const nodeOnlyPackages = '^(electron|better-sqlite3|pino|fastify|@fastify/.*|prom-client|@node-rs/.*|open|socket\\.io)$';

const restrict = (...groups) => ['error', { patterns: groups }];
const group = (list, message) => ({ group: list, message });
const matching = (regex, message) => ({ regex, message });

export default tseslint.config(
  { ignores: ['out/**', 'node_modules/**', 'test-results/**', 'playwright-report/**', 'test/fixtures/lint/**', 'docs/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...vue.configs['flat/recommended'],
  {
    files: ['**/*.vue'],
    languageOptions: { parser: vueParser, parserOptions: { parser: tseslint.parser, sourceType: 'module' } },
  },
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'vue/multi-word-component-names': 'off',
      'vue/max-attributes-per-line': 'off',
      'vue/singleline-html-element-content-newline': 'off',
      'vue/html-self-closing': 'off',
      'vue/html-indent': 'off',
      'vue/html-closing-bracket-newline': 'off',
      'vue/multiline-html-element-content-newline': 'off',
    },
  },
  {
    files: ['src/shared/**'],
    languageOptions: { globals: {} },
    rules: {
      'no-restricted-imports': restrict(
        group(['**/agent/**', '**/sim/**', '**/main/**', '**/renderer/**', '**/preload/**', '**/cli/**'], 'src/shared imports nothing of ours outside src/shared.'),
        matching(nodeBuiltins, 'src/shared is plain TypeScript: no Node-only module.'),
        matching(nodeOnlyPackages, 'src/shared is plain TypeScript: no Node-only module.'),
      ),
      'no-restricted-globals': ['error', 'window', 'document', 'process', 'Buffer', 'require', '__dirname', 'localStorage', 'navigator'],
    },
  },
  {
    files: ['src/renderer/**'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': restrict(
        matching(nodeBuiltins, 'The renderer runs in a sandboxed page: no Node module, no electron.'),
        matching(nodeOnlyPackages, 'The renderer runs in a sandboxed page: no Node module, no electron.'),
        group(['**/agent/**', '**/sim/**', '**/main/**', '**/cli/**'], 'The renderer imports src/shared and the bridge types only.'),
      ),
    },
  },
  {
    files: ['src/agent/**', 'src/sim/**'],
    rules: {
      'no-restricted-imports': restrict(
        group(['**/main/**', '**/renderer/**', '**/preload/**', '**/cli/**', 'electron'], 'src/agent and src/sim never import the desktop app.'),
      ),
    },
  },
  {
    files: ['src/agent/consensus/**'],
    rules: {
      'no-restricted-imports': restrict(
        group(['**/main/**', '**/renderer/**', '**/preload/**', '**/cli/**', 'electron'], 'src/agent and src/sim never import the desktop app.'),
        group(['../storage/**', '../transport/**', '../../storage/**', '../../transport/**'], 'Consensus engines have no I/O.'),
        matching(nodeBuiltins, 'Consensus engines have no I/O.'),
      ),
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'setImmediate', 'process', 'performance'],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'Engines have no clock: time is ticks.' },
        { object: 'Math', property: 'random', message: 'Engines use the injected seeded Random.' },
      ],
    },
  },
  {
    files: ['src/main/hub/**'],
    rules: {
      'no-restricted-imports': restrict(
        group(['electron'], 'The hub runs in plain Node (tests, web mode): no electron import.'),
        group(['**/renderer/**', '**/agent/**', '**/sim/**'], 'The hub imports src/shared only.'),
      ),
    },
  },
  {
    files: ['src/main/web/**'],
    rules: {
      'no-restricted-imports': restrict(group(['electron'], 'Web mode runs in plain Node: no electron import.'), group(['**/renderer/**'], 'Web mode serves the built renderer; it does not import it.')),
    },
  },
  {
    files: ['src/preload/**'],
    rules: {
      'no-restricted-imports': restrict(group(['**/main/**', '**/renderer/**', '**/agent/**', '**/sim/**'], 'The preload imports src/shared only.')),
    },
  },
);
