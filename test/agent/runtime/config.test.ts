import { describe, expect, it } from 'vitest';
import { parsePeer, resolveAgentConfig, type AgentFlags } from '../../../src/agent/runtime/config';

const env = { QUORUMSCOPE_VIEWER_TOKEN: 'viewer-token-0123456789', QUORUMSCOPE_OPERATOR_TOKEN: 'operator-token-0123456789' };
const flags: AgentFlags = {
  nodeId: 'n1',
  clusterId: 'c1',
  engine: 'raft',
  peer: ['n1=127.0.0.1:7501', 'n2=127.0.0.1:7502'],
  dataDir: '/tmp/x',
  httpPort: '7401',
  peerPort: '7501',
};

describe('agent configuration', () => {
  it('binds to loopback unless told otherwise, with drills off', () => {
    const config = resolveAgentConfig(flags, env);
    expect(config.ok).toBe(true);
    if (config.ok) {
      expect(config.data.bind).toBe('127.0.0.1');
      expect(config.data.allowDrills).toBe(false);
      expect(config.data.peers).toEqual([
        { id: 'n1', host: '127.0.0.1', port: 7501 },
        { id: 'n2', host: '127.0.0.1', port: 7502 },
      ]);
    }
  });

  it('names the bad field: a port out of range', () => {
    const config = resolveAgentConfig({ ...flags, httpPort: '70000' }, env);
    expect(config.ok).toBe(false);
    if (!config.ok) expect(config.error.message).toContain('httpPort');
  });

  it('refuses peers that do not include this node', () => {
    const config = resolveAgentConfig({ ...flags, nodeId: 'n3' }, env);
    expect(config.ok).toBe(false);
    if (!config.ok) expect(config.error.message).toContain('peers must include this node (n3)');
  });

  it('refuses missing or short tokens, and equal viewer and operator tokens', () => {
    expect(resolveAgentConfig(flags, {}).ok).toBe(false);
    const short = resolveAgentConfig({ ...flags, viewerToken: 'short' }, env);
    expect(!short.ok && short.error.message).toContain('at least 16 characters');
    const same = resolveAgentConfig(flags, { QUORUMSCOPE_VIEWER_TOKEN: 'same-token-0123456789', QUORUMSCOPE_OPERATOR_TOKEN: 'same-token-0123456789' });
    expect(!same.ok && same.error.message).toContain('operatorToken');
  });

  it('parses id=host:port and rejects anything else', () => {
    expect(parsePeer('n1=10.0.0.1:7001')).toEqual({ ok: true, data: { id: 'n1', host: '10.0.0.1', port: 7001 } });
    expect(parsePeer('n1@10.0.0.1').ok).toBe(false);
    expect(parsePeer('n1=host:0').ok).toBe(false);
  });

  it('refuses a heartbeat interval that is not shorter than the election timeout', () => {
    const config = resolveAgentConfig({ ...flags, heartbeatIntervalTicks: '20', electionTimeoutTicks: '10' }, env);
    expect(!config.ok && config.error.message).toContain('heartbeatIntervalTicks');
  });
});

describe('the agent command', () => {
  it('exits with code 2 and a message naming the field on a bad configuration, without starting', async () => {
    const { spawnSync } = await import('node:child_process');
    const result = spawnSync(process.execPath, ['bin/quorumscope.mjs', 'agent', '--node-id', 'n1', '--cluster-id', 'c', '--engine', 'raft', '--peer', 'n1=127.0.0.1:7501', '--data-dir', '/tmp/qs-never', '--http-port', '99999', '--peer-port', '7501'], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('httpPort');
    expect(result.stderr).not.toContain(env.QUORUMSCOPE_OPERATOR_TOKEN);
  });
});
