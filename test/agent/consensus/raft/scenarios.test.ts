/**
 * Interaction scenarios: each file in testdata/ is a script of commands with
 * the expected trace next to each one (see datadriven.ts). Regenerate with
 * `REWRITE=1 npx vitest run test/agent/consensus/raft/scenarios.test.ts`, then
 * read the diff before keeping it.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkScenarioFile } from './datadriven';

const testdataDirectory = fileURLToPath(new URL('./testdata', import.meta.url));
const files = readdirSync(testdataDirectory).filter((name) => name.endsWith('.txt')).sort();

describe('raft interaction scenarios (testdata/*.txt)', () => {
  it('has the scenario files', () => {
    expect(files.length).toBeGreaterThanOrEqual(6);
  });

  for (const file of files) {
    it(file, () => {
      const { expected, actual } = checkScenarioFile(join(testdataDirectory, file));
      expect(actual).toBe(expected);
    });
  }
});
