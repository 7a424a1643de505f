import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

/** Where the window was, so that it opens there again. Validated on read: the file is user-editable. */
const WindowStateSchema = z.object({
  x: z.number().int(),
  y: z.number().int(),
  width: z.number().int().min(400).max(20_000),
  height: z.number().int().min(300).max(20_000),
  maximized: z.boolean(),
});
export type WindowState = z.infer<typeof WindowStateSchema>;

export function windowStateFile(configDir: string): string {
  return path.join(configDir, 'window-state.json');
}

export async function loadWindowState(configDir: string): Promise<WindowState | null> {
  try {
    const parsed = WindowStateSchema.safeParse(JSON.parse(await readFile(windowStateFile(configDir), 'utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

export async function saveWindowState(configDir: string, state: WindowState): Promise<void> {
  const file = windowStateFile(configDir);
  await writeFile(`${file}.tmp`, JSON.stringify(state), { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

/** Keeps a saved position only if it still overlaps a display (monitors come and go). */
export function isVisibleOn(state: WindowState, displays: ReadonlyArray<{ x: number; y: number; width: number; height: number }>): boolean {
  return displays.some(
    (area) => state.x < area.x + area.width && state.x + state.width > area.x && state.y < area.y + area.height && state.y + state.height > area.y,
  );
}
