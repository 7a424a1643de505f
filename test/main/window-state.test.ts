import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isVisibleOn, loadWindowState, saveWindowState, windowStateFile } from '../../src/main/desktop/window-state';

describe('desktop window state', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'qs-window-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('comes back as it was saved', async () => {
    const state = { x: 100, y: 80, width: 1400, height: 900, maximized: false };
    await saveWindowState(dir, state);
    expect(await loadWindowState(dir)).toEqual(state);
  });

  it('ignores a file that is not a window state instead of failing the start', async () => {
    await writeFile(windowStateFile(dir), '{"x": "left", "width": 5}');
    expect(await loadWindowState(dir)).toBeNull();
    await writeFile(windowStateFile(dir), 'not json');
    expect(await loadWindowState(dir)).toBeNull();
  });

  it('keeps a position only while it overlaps a display', () => {
    const state = { x: 2_000, y: 100, width: 800, height: 600, maximized: false };
    expect(isVisibleOn(state, [{ x: 0, y: 0, width: 1920, height: 1080 }, { x: 1920, y: 0, width: 1920, height: 1080 }])).toBe(true);
    expect(isVisibleOn(state, [{ x: 0, y: 0, width: 1920, height: 1080 }])).toBe(false);
  });
});
