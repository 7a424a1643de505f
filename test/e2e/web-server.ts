import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface RunningWeb {
  url: string;
  configDir: string;
  pid: number;
  stop(): Promise<void>;
}

const startTimeoutMs = 20_000;

/** Starts `quorumscope web` from the build on an ephemeral port with a fresh config dir. */
export async function startWeb(): Promise<RunningWeb> {
  const configDir = await mkdtemp(path.join(os.tmpdir(), 'qs-e2e-config-'));
  const child: ChildProcess = spawn(process.execPath, ['bin/quorumscope.mjs', 'web', '--port', '0', '--no-open', '--log-level', 'warn'], {
    env: { ...process.env, QUORUMSCOPE_CONFIG_DIR: configDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`web mode did not start: ${output}`)), startTimeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /(http:\/\/127\.0\.0\.1:\d+\/#session=\S+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`web mode exited with ${code}: ${output}`)));
  });
  return {
    url,
    configDir,
    pid: child.pid ?? 0,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(configDir, { recursive: true, force: true });
    },
  };
}
