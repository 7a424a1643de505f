import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

/**
 * The import boundaries of DESIGN.md are lint rules; these tests prove they
 * bite by linting deliberate violations as if they lived at the given paths.
 */
const eslint = new ESLint({ cwd: process.cwd() });

async function violations(code: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((message) => `${message.ruleId}: ${message.message}`);
}

describe('lint boundaries', () => {
  it('src/shared may not import Node modules', async () => {
    expect(await violations("import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n", 'src/shared/bad.ts')).toEqual([
      expect.stringContaining('no-restricted-imports'),
    ]);
  });

  it('src/shared may not import our other layers', async () => {
    expect(await violations("import { Hub } from '../main/hub/hub';\nexport const x = Hub;\n", 'src/shared/bad.ts')).toEqual([
      expect.stringContaining('src/shared imports nothing of ours'),
    ]);
  });

  it('src/shared may not use DOM globals', async () => {
    expect(await violations('export const x = () => window.location;\n', 'src/shared/bad.ts')).toEqual([expect.stringContaining('no-restricted-globals')]);
  });

  it('the renderer may not import electron or Node modules', async () => {
    const found = await violations("import { ipcRenderer } from 'electron';\nimport fs from 'node:fs';\nexport const x = [ipcRenderer, fs];\n", 'src/renderer/src/bad.ts');
    expect(found).toHaveLength(2);
    expect(found.every((message) => message.includes('sandboxed page'))).toBe(true);
  });

  it('agents and the simulator may not import the desktop app', async () => {
    expect(await violations("import { Hub } from '../main/hub/hub';\nexport const x = Hub;\n", 'src/agent/bad.ts')).toEqual([
      expect.stringContaining('never import the desktop app'),
    ]);
    expect(await violations("import { Hub } from '../main/hub/hub';\nexport const x = Hub;\n", 'src/sim/bad.ts')).toEqual([
      expect.stringContaining('never import the desktop app'),
    ]);
  });

  it('the hub may not import electron', async () => {
    expect(await violations("import { app } from 'electron';\nexport const x = app;\n", 'src/main/hub/bad.ts')).toEqual([
      expect.stringContaining('plain Node'),
    ]);
  });

  it('consensus engines may not read the clock or Math.random', async () => {
    const found = await violations('export const x = () => Date.now() + Math.random();\n', 'src/agent/consensus/raft/bad.ts');
    expect(found).toHaveLength(2);
  });

  it('allowed imports pass', async () => {
    expect(await violations("import { z } from 'zod';\nexport const x = z;\n", 'src/shared/good.ts')).toEqual([]);
  });
});
