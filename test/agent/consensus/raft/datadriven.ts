/**
 * Data-driven interaction scenarios in the style of etcd-io/raft's testdata:
 *
 *   # a comment, kept on rewrite
 *   command arg key=value
 *   ----
 *   expected output (never blank lines)
 *
 * Blocks are separated by blank lines. With REWRITE=1 in the environment the
 * expected output is regenerated from the actual one; read the diff before
 * committing it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { MembershipChange } from '../../../../src/agent/consensus/engine';
import { Cluster, bytes, defaultClusterOptions, formatStatus, formatEntry, type ClusterOptions } from './harness';

export interface ScenarioBlock {
  readonly comments: string[];
  readonly command: string;
  readonly expected: string;
}

export function parseScenario(text: string): ScenarioBlock[] {
  const lines = text.split('\n');
  const blocks: ScenarioBlock[] = [];
  let comments: string[] = [];
  let position = 0;
  while (position < lines.length) {
    const line = lines[position] as string;
    position += 1;
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      comments.push(line);
      continue;
    }
    if (lines[position] !== '----') throw new Error(`line ${position}: expected ---- after "${line}"`);
    position += 1;
    const output: string[] = [];
    while (position < lines.length && (lines[position] as string).trim() !== '') {
      output.push(lines[position] as string);
      position += 1;
    }
    blocks.push({ comments, command: line, expected: output.join('\n') });
    comments = [];
  }
  return blocks;
}

export function renderScenario(blocks: readonly { comments: string[]; command: string; expected: string }[]): string {
  return `${blocks.map((block) => [...block.comments, block.command, '----', block.expected].join('\n')).join('\n\n')}\n`;
}

interface Command {
  readonly name: string;
  readonly positional: string[];
  readonly keyed: Map<string, string>;
}

function parseCommand(line: string): Command {
  const [name = '', ...words] = line.trim().split(/\s+/);
  const positional: string[] = [];
  const keyed = new Map<string, string>();
  for (const word of words) {
    const equals = word.indexOf('=');
    if (equals > 0) keyed.set(word.slice(0, equals), word.slice(equals + 1));
    else positional.push(word);
  }
  return { name, positional, keyed };
}

function list(value: string | undefined): string[] {
  if (value === undefined || value === '') return [];
  return value.split(',');
}

function required(command: Command, position: number, what: string): string {
  const value = command.positional[position];
  if (value === undefined) throw new Error(`${command.name}: missing ${what}`);
  return value;
}

function flag(command: Command, key: string, fallback: boolean): boolean {
  const value = command.keyed.get(key);
  return value === undefined ? fallback : value === 'true';
}

/** Runs one scenario's commands against a fresh cluster; returns the actual output of each. */
export function runScenario(blocks: readonly ScenarioBlock[], options: ClusterOptions = defaultClusterOptions): string[] {
  const cluster = new Cluster(options);
  return blocks.map((block) => {
    const lines = runCommand(cluster, parseCommand(block.command));
    return lines.length === 0 ? 'ok' : lines.join('\n');
  });
}

function runCommand(cluster: Cluster, command: Command): string[] {
  const ids = command.positional;
  switch (command.name) {
    case 'add-nodes': {
      const count = Number(required(command, 0, 'count'));
      const first = cluster.nodes.size + 1;
      const created = Array.from({ length: count }, (_, offset) => String(first + offset));
      const voters = command.keyed.has('voters') ? list(command.keyed.get('voters')) : created;
      const learners = list(command.keyed.get('learners'));
      for (const id of created) {
        cluster.addNode(id, { voters, learners }, {
          preVote: flag(command, 'prevote', cluster.options.preVote),
          checkQuorum: flag(command, 'checkquorum', cluster.options.checkQuorum),
          inflightAppendsMax: Number(command.keyed.get('inflight') ?? cluster.options.inflightAppendsMax),
          appendBytesMax: Number(command.keyed.get('append-bytes') ?? cluster.options.appendBytesMax),
        });
      }
      return [];
    }
    case 'campaign':
      cluster.node(required(command, 0, 'node')).engine.campaign();
      return [];
    case 'tick': {
      const count = Number(required(command, 0, 'count'));
      cluster.tick(count, ids.length > 1 ? ids.slice(1) : cluster.ids());
      return [];
    }
    case 'stabilize':
      return cluster.stabilize(ids.length > 0 ? ids : cluster.ids());
    case 'process-ready':
      return (ids.length > 0 ? ids : cluster.ids()).flatMap((id) => cluster.processReady(id));
    case 'deliver-msgs':
      return cluster.deliver(ids.length > 0 ? ids : cluster.ids());
    case 'partition':
      cluster.partition(required(command, 0, 'groups').split('|').map((group) => list(group)));
      return [];
    case 'heal':
      cluster.heal();
      return [];
    case 'propose': {
      const node = cluster.node(required(command, 0, 'node'));
      const result = node.engine.propose(bytes(required(command, 1, 'data')), cluster.nowMs);
      return [result.ok ? `ok index=${result.data.index} term=${result.data.epoch}` : `error ${result.error.code}: ${result.error.message}`];
    }
    case 'propose-conf-change': {
      const node = cluster.node(required(command, 0, 'node'));
      const change = { type: required(command, 1, 'type'), node: required(command, 2, 'target') } as MembershipChange;
      const result = node.engine.changeMembership(change);
      return [result.ok ? `ok index=${result.data.index} term=${result.data.epoch}` : `error ${result.error.code}: ${result.error.message}`];
    }
    case 'transfer-leadership': {
      const node = cluster.node(required(command, 0, 'from'));
      const result = node.engine.transferLeadership(required(command, 1, 'to'));
      return result.ok ? [] : [`error ${result.error.code}: ${result.error.message}`];
    }
    case 'read-index': {
      const node = cluster.node(required(command, 0, 'node'));
      const result = node.engine.readIndex(required(command, 1, 'request id'));
      return result.ok ? [] : [`error ${result.error.code}: ${result.error.message}`];
    }
    case 'status':
      return formatStatus(cluster, required(command, 0, 'node'));
    case 'raft-state':
      return cluster.ids().map((id) => {
        const status = cluster.node(id).engine.status(cluster.nowMs);
        return `${id}: ${status.role} ${status.epochLabel} leader=${status.leader ?? 'none'} commit=${status.commitIndex}`;
      });
    case 'log': {
      const node = cluster.node(required(command, 0, 'node'));
      const snapshot = node.storage.snapshot;
      const head = snapshot === null ? [] : [`snapshot ${snapshot.meta.index}@${snapshot.meta.epoch}`];
      return [...head, ...node.storage.entries.map(formatEntry)];
    }
    case 'applied': {
      const node = cluster.node(required(command, 0, 'node'));
      return [`index=${node.appliedIndex} data=${node.applied.join(',')}`];
    }
    case 'compact':
      return [cluster.compact(required(command, 0, 'node'), Number(required(command, 1, 'index')))];
    case 'restart':
      cluster.restart(required(command, 0, 'node'));
      return [];
    default:
      throw new Error(`unknown command ${command.name}`);
  }
}

/** Runs a scenario file; with REWRITE=1 rewrites its expected output. Returns [expected, actual] texts. */
export function checkScenarioFile(path: string): { expected: string; actual: string } {
  const original = readFileSync(path, 'utf8');
  const blocks = parseScenario(original);
  const outputs = runScenario(blocks);
  const actual = renderScenario(blocks.map((block, position) => ({ ...block, expected: outputs[position] as string })));
  if (process.env.REWRITE === '1' && actual !== original) writeFileSync(path, actual);
  return { expected: process.env.REWRITE === '1' ? actual : original, actual };
}
