#!/usr/bin/env node
/**
 * The `quorumscope` command: the composition root for every plain-Node
 * process (web mode, agents, clusters, the simulator). Subcommands load their
 * runtime lazily so that `quorumscope --help` starts instantly.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import pino from 'pino';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const rendererDir = path.join(root, 'out', 'renderer');

function version(): string {
  try {
    return (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new InvalidArgumentError('expected a TCP port between 0 and 65535 (0 picks a free one)');
  }
  return port;
}

function createLogger(level: string) {
  return pino({ level, base: undefined }, pino.destination(2));
}

/** The Electron binary, where its install succeeded. */
function electronBinary(): string | null {
  try {
    const candidate = createRequire(import.meta.url)('electron') as unknown;
    return typeof candidate === 'string' && existsSync(candidate) ? candidate : null;
  } catch {
    return null;
  }
}

interface WebFlags {
  host: string;
  port: number;
  open: boolean;
  logLevel: string;
}

async function web(flags: WebFlags): Promise<void> {
  const { runWebMode, defaultConfigDir, hasDisplay } = await import('../main/web/run');
  const logger = createLogger(flags.logLevel);
  const started = await runWebMode({
    host: flags.host,
    port: flags.port,
    rendererDir,
    configDir: defaultConfigDir(),
    version: version(),
    logger,
  });
  if ('error' in started) {
    process.stderr.write(`quorumscope web: ${started.error}\n`);
    process.exit(1);
  }
  process.stdout.write(`Quorumscope web mode: ${started.server.url}\n`);
  if (flags.open && hasDisplay()) {
    const { default: open } = await import('open');
    await open(started.server.url).catch(() => undefined);
  }
  const stop = async () => {
    started.hub.close();
    await started.server.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

const program = new Command()
  .name('quorumscope')
  .description('Operate consensus clusters: live leaders, lag, failovers and corruption alerts, with safe manual failover.')
  .version(version());

program
  .command('web')
  .description('serve the dashboard to a browser on this machine (no Electron needed)')
  .option('--host <address>', 'address to bind', '127.0.0.1')
  .option('--port <n>', 'port to listen on (0 picks a free one)', parsePort, 0)
  .option('--no-open', 'do not open a browser')
  .option('--log-level <level>', 'pino log level', 'info')
  .action(web);

program
  .command('start')
  .description('start the app: the desktop window where Electron is installed, web mode otherwise')
  .option('--port <n>', 'web mode port (0 picks a free one)', parsePort, 0)
  .option('--no-open', 'do not open a browser in web mode')
  .action(async (flags: { port: number; open: boolean }) => {
    const binary = electronBinary();
    const mainEntry = path.join(root, 'out', 'main', 'index.js');
    const { hasDisplay } = await import('../main/web/run');
    if (binary !== null && hasDisplay() && existsSync(mainEntry)) {
      const child = spawn(binary, [root], { stdio: 'inherit' });
      child.on('exit', (code) => process.exit(code ?? 0));
      return;
    }
    process.stdout.write(
      binary === null
        ? 'No Electron binary installed: starting web mode.\n'
        : 'No display: starting web mode.\n',
    );
    await web({ host: '127.0.0.1', port: flags.port, open: flags.open, logLevel: 'info' });
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`quorumscope: ${(error as Error).message}\n`);
  process.exit(1);
});
