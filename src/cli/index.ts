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

function parseCount(value: string): number {
  const count = Number(value);
  if (!Number.isInteger(count) || count < 1 || count > 9) throw new InvalidArgumentError('expected 1 to 9 nodes');
  return count;
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
  connect?: import('../shared/protocol').ProfileInput[];
  onStop?: () => Promise<void>;
  /** A .qsrec to open for replay at start. */
  replay?: string;
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
    connect: flags.connect ?? [],
  });
  if ('error' in started) {
    process.stderr.write(`quorumscope web: ${started.error}\n`);
    process.exit(1);
  }
  if (flags.replay !== undefined) {
    const opened = await started.hub.request('replay:open', { path: path.resolve(flags.replay) });
    if (!opened.ok) {
      process.stderr.write(`quorumscope replay: ${opened.error.message}\n`);
      started.hub.close();
      await started.server.close();
      process.exit(1);
    }
  }
  process.stdout.write(`Quorumscope web mode: ${started.server.url}\n`);
  if (flags.open && hasDisplay()) {
    const { default: open } = await import('open');
    await open(started.server.url).catch(() => undefined);
  }
  const stop = async () => {
    started.hub.close();
    await started.server.close();
    await flags.onStop?.();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

interface DemoFlags {
  port: number;
  open: boolean;
  nodes: number;
  basePort: number;
  dir?: string;
}

interface DemoCluster {
  dir: string;
  file: import('./cluster').ClusterFile;
  stop(): Promise<void>;
}

/** The demo: N Raft agents with drills enabled and a gentle write load, in a fresh temp dir unless one is given. */
async function startDemoCluster(flags: { nodes: number; basePort: number; dir?: string }): Promise<DemoCluster> {
  const { startCluster } = await import('./cluster');
  const { mkdtemp } = await import('node:fs/promises');
  const os = await import('node:os');
  const dir = flags.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'quorumscope-demo-')));
  const cluster = await startCluster({
    nodes: flags.nodes,
    engine: 'raft',
    dir,
    basePort: flags.basePort,
    allowDrills: true,
    entry: path.join(root, 'bin', 'quorumscope.mjs'),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`Demo cluster: ${flags.nodes} Raft nodes, data in ${dir}\n`);
  const stopLoad = startDemoLoad(cluster.file.nodes.map((node) => node.http), demoWritesPerSecond);
  return {
    dir,
    file: cluster.file,
    stop: async () => {
      stopLoad();
      await cluster.stop();
    },
  };
}

/** The desktop window, with the demo cluster started first and handed over through its cluster file. */
async function desktop(binary: string, flags: { demo: boolean; nodes: number; basePort: number }): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  const cluster = flags.demo ? await startDemoCluster(flags) : null;
  if (cluster !== null) env.QUORUMSCOPE_CONNECT_FILE = path.join(cluster.dir, 'cluster.json');
  const child = spawn(binary, [root], { stdio: 'inherit', env });
  child.on('exit', (code) => {
    void (cluster?.stop() ?? Promise.resolve()).then(() => process.exit(code ?? 0));
  });
  const stop = () => child.kill('SIGTERM');
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/** A local demo cluster with drills enabled, and web mode connected to it. */
async function demo(flags: DemoFlags): Promise<void> {
  const cluster = await startDemoCluster(flags);
  await web({
    host: '127.0.0.1',
    port: flags.port,
    open: flags.open,
    logLevel: 'warn',
    connect: [{ name: 'Demo cluster', endpoints: cluster.file.nodes.map((node) => node.http), token: cluster.file.operatorToken }],
    onStop: () => cluster.stop(),
  });
}

/** The demo's gentle write load, so indices, lag and charts move. */
const demoWritesPerSecond = 20;
const demoKeys = 64;

function startDemoLoad(endpoints: string[], writesPerSecond: number): () => void {
  let sequence = 0;
  const timer = setInterval(() => {
    sequence += 1;
    const endpoint = endpoints[sequence % endpoints.length];
    const key = `demo-${sequence % demoKeys}`;
    void fetch(`http://${endpoint}/v1/kv/${key}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ value: `value ${sequence} written at ${new Date().toISOString()}` }),
      signal: AbortSignal.timeout(2_000),
    }).catch(() => undefined);
  }, 1000 / writesPerSecond);
  return () => clearInterval(timer);
}

const program = new Command()
  .name('quorumscope')
  .description('Operate consensus clusters: live leaders, lag, failovers and corruption alerts, with safe manual failover.')
  .version(version());

/** The options of every command that serves web mode. */
function webOptions(command: Command): Command {
  return command
    .option('--host <address>', 'address to bind', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0 picks a free one)', parsePort, 0)
    .option('--no-open', 'do not open a browser')
    .option('--log-level <level>', 'pino log level', 'info');
}

webOptions(program.command('web').description('serve the dashboard to a browser on this machine (no Electron needed)')).action(web);

webOptions(program.command('replay <file>').description('open a .qsrec recording in web mode and replay it')).action((file: string, flags: WebFlags) =>
  web({ ...flags, replay: file }),
);

program
  .command('start')
  .description('start the app: the desktop window where Electron is installed, web mode otherwise')
  .option('--port <n>', 'web mode port (0 picks a free one)', parsePort, 0)
  .option('--no-open', 'do not open a browser in web mode')
  .option('--no-demo', 'do not start the local demo cluster')
  .option('--nodes <n>', 'demo cluster size', parseCount, 5)
  .option('--base-port <n>', 'demo cluster base port', parsePort, 7400)
  .action(async (flags: { port: number; open: boolean; demo: boolean; nodes: number; basePort: number }) => {
    // Decided before anything starts: the desktop window where Electron and a display exist, web mode elsewhere.
    const binary = electronBinary();
    const mainEntry = path.join(root, 'out', 'main', 'index.js');
    const { hasDisplay } = await import('../main/web/run');
    if (binary !== null && hasDisplay() && existsSync(mainEntry)) {
      await desktop(binary, flags);
      return;
    }
    process.stdout.write(
      binary === null
        ? 'No Electron binary installed: starting web mode.\n'
        : 'No display: starting web mode.\n',
    );
    if (flags.demo) await demo({ port: flags.port, open: flags.open, nodes: flags.nodes, basePort: flags.basePort });
    else await web({ host: '127.0.0.1', port: flags.port, open: flags.open, logLevel: 'info' });
  });

const collect = (value: string, previous: string[] = []) => [...previous, value];

program
  .command('agent')
  .description('run one cluster node: consensus engine, storage, KV API, telemetry')
  .option('--config <file>', 'JSON config file (flags override it)')
  .option('--node-id <id>', 'this node\'s id')
  .option('--cluster-id <id>', 'the cluster\'s id')
  .option('--engine <name>', 'consensus engine: raft')
  .option('--peer <id=host:port>', 'a voter of the initial cluster (repeat; include this node)', collect)
  .option('--data-dir <dir>', 'where the WAL, snapshots and hard state live')
  .option('--bind <address>', 'address for the HTTP and peer ports (default 127.0.0.1)')
  .option('--http-port <n>', 'KV API, /metrics and telemetry port')
  .option('--peer-port <n>', 'port for peer traffic (TCP)')
  .option('--viewer-token <t>', 'viewer token (or QUORUMSCOPE_VIEWER_TOKEN)')
  .option('--operator-token <t>', 'operator token (or QUORUMSCOPE_OPERATOR_TOKEN)')
  .option('--peer-token <t>', 'shared secret of the peer port (or QUORUMSCOPE_PEER_TOKEN); recommended')
  .option('--allow-drills', 'accept fault drills (demo and test clusters only)')
  .option('--tick-interval-ms <n>', 'engine tick interval')
  .option('--election-timeout-ticks <n>', 'election timeout in ticks')
  .option('--heartbeat-interval-ticks <n>', 'heartbeat interval in ticks')
  .option('--log-level <level>', 'trace|debug|info|warn|error|silent')
  .option('--scrub-rate-bytes <n>', 'background scrub read rate in bytes/s (default 8 MiB/s)')
  .option('--segment-bytes-max <n>', 'WAL segment size before it seals (default 8 MiB)')
  .option('--snapshot-entries <n>', 'take a snapshot after this many applied entries')
  .option('--state-check-interval-ms <n>', 'replicas compare state hashes through the log this often (default 10000; 0: off)')
  .option('--state-check-entries <n>', 'also after this many applied entries (default 50000; 0: off)')
  .action(async (flags: import('../agent/runtime/config').AgentFlags) => {
    const { resolveAgentConfig } = await import('../agent/runtime/config');
    const config = resolveAgentConfig(flags, process.env);
    if (!config.ok) {
      process.stderr.write(`quorumscope agent: ${config.error.message}\n`);
      process.exit(2);
    }
    const { startAgent, createAgentLogger } = await import('../agent/runtime/main');
    const logger = createAgentLogger(config.data);
    const started = await startAgent(config.data, logger);
    if (!started.ok) {
      process.stderr.write(`quorumscope agent: ${started.reason}\n`);
      process.exit(1);
    }
    const stop = async () => {
      await started.agent.stop();
      process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

program
  .command('cluster')
  .description('start N agents on 127.0.0.1 and write DIR/cluster.json; Ctrl-C stops them all')
  .option('--nodes <n>', 'how many nodes (1-9)', parseCount, 3)
  .option('--engine <name>', 'consensus engine', 'raft')
  .requiredOption('--dir <dir>', 'data directory for the cluster')
  .option('--base-port <n>', 'node i gets HTTP port P+i and peer port P+100+i', parsePort, 7400)
  .option('--allow-drills', 'start agents with drills enabled')
  .action(async (flags: { nodes: number; engine: string; dir: string; basePort: number; allowDrills?: boolean }) => {
    const { startCluster } = await import('./cluster');
    const cluster = await startCluster({
      nodes: flags.nodes,
      engine: flags.engine,
      dir: path.resolve(flags.dir),
      basePort: flags.basePort,
      allowDrills: flags.allowDrills === true,
      entry: process.argv[1] ?? '',
      log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(`cluster of ${flags.nodes} started; ${path.join(path.resolve(flags.dir), 'cluster.json')}\n`);
    for (const node of cluster.file.nodes) process.stdout.write(`  ${node.id}  http=${node.http}  peer=${node.peer}  pid=${node.pid}\n`);
    const stop = async () => {
      await cluster.stop();
      process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

const { registerSimCommand } = await import('../sim/cli');
registerSimCommand(program);

const ctl = program.command('ctl').description('script a running cluster (reads cluster.json)');
const clusterOption = ['--cluster <file>', 'the cluster.json that `quorumscope cluster` wrote', 'cluster.json'] as const;
const printAnswer = (answer: { status: number; body: unknown }) => {
  process.stdout.write(`${JSON.stringify(answer.body)}\n`);
  if (answer.status >= 400) process.exitCode = 1;
};
ctl.command('status').option(...clusterOption).action(async (flags: { cluster: string }) => {
  const { loadClusterFile, ctlStatus } = await import('./ctl');
  process.stdout.write(`${await ctlStatus(loadClusterFile(flags.cluster))}\n`);
});
ctl.command('put <key> <value>').option(...clusterOption).option('--node <id>', 'node to send it to').action(async (key: string, value: string, flags: { cluster: string; node?: string }) => {
  const { loadClusterFile, ctlPut } = await import('./ctl');
  printAnswer(await ctlPut(loadClusterFile(flags.cluster), flags.node, key, value));
});
ctl.command('get <key>').option(...clusterOption).option('--node <id>', 'node to ask').action(async (key: string, flags: { cluster: string; node?: string }) => {
  const { loadClusterFile, ctlGet } = await import('./ctl');
  printAnswer(await ctlGet(loadClusterFile(flags.cluster), flags.node, key));
});
ctl
  .command('drill')
  .description('fault drills on a node started with --allow-drills')
  .command('corrupt')
  .description('damage a sealed WAL segment or the snapshot of --node on disk')
  .option(...clusterOption)
  .requiredOption('--node <id>', 'node to damage')
  .option('--fault <kind>', 'bit-flip|zero-sector|truncate|misdirect|stale', 'bit-flip')
  .option('--target <target>', 'segment|snapshot|state', 'segment')
  .option('--seed <n>', 'seed choosing where the fault lands')
  .action(async (flags: { cluster: string; node: string; fault: string; target: string; seed?: string }) => {
    const { loadClusterFile, ctlDrillCorrupt } = await import('./ctl');
    printAnswer(await ctlDrillCorrupt(loadClusterFile(flags.cluster), flags.node, { fault: flags.fault, target: flags.target, ...(flags.seed === undefined ? {} : { seed: Number(flags.seed) }) }));
  });
ctl.command('transfer <to>').description('move leadership to node <to>').option(...clusterOption).option('--node <id>', 'node to ask').action(async (to: string, flags: { cluster: string; node?: string }) => {
  const { loadClusterFile, ctlTransfer } = await import('./ctl');
  printAnswer(await ctlTransfer(loadClusterFile(flags.cluster), flags.node, to));
});

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`quorumscope: ${(error as Error).message}\n`);
  process.exit(1);
});
