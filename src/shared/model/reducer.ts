import type { ClusterEvent, EventBody, NodeStatus, StatusSample } from '../protocol';
import { evaluateAlertRules, reconcileAlerts, type TimelineNote } from './alerts';
import { lagHistoryPointsMax, lagSeriesMax, mutesMax, nodesMax, operationsMax, recentKeysMax, resolveModelConfig, type ModelConfig } from './config';
import {
  believedStatuses,
  configuredVoters,
  deriveFaultTolerance,
  deriveFollowers,
  deriveLeader,
  deriveReachability,
  deriveSplitBrain,
  epochNoun,
  formatDurationMs,
} from './derive';
import type {
  ClusterModel,
  Failover,
  FailoverCause,
  FollowerLag,
  Health,
  LagPoint,
  LeaderChangeEvidence,
  ModelMessage,
  NodeView,
  OperatorAction,
  RepairState,
} from './types';

/**
 * The dashboard reducer: `reduce(model, message)` is a pure function of the
 * message stream, shared by the live view and playback. Time comes only from
 * the messages (`nowMs` is the latest time seen), never from a clock. The
 * input model is never mutated; unchanged parts are shared with the result.
 */

const noEvidence: LeaderChangeEvidence = Object.freeze({ failure: null, transferTo: null, drill: null });

export function createClusterModel(config: Partial<ModelConfig> = {}): ClusterModel {
  return {
    config: resolveModelConfig(config),
    nowMs: 0,
    clusterId: null,
    engine: null,
    nodes: {},
    leader: null,
    previousLeader: null,
    epoch: 0,
    epochLabel: '',
    leaderlessSinceMs: null,
    splitBrain: null,
    faultTolerance: { voters: 0, quorum: 0, healthy: 0, tolerable: null, tolerableMax: 0 },
    followers: [],
    lagHistory: {},
    failovers: [],
    health: 'unknown',
    healthReason: 'no status received yet',
    alerts: [],
    alertHistory: [],
    mutes: {},
    operations: [],
    evidence: noEvidence,
    corruption: {},
    repairs: {},
    recentKeys: [],
    timeline: [],
    nextSequence: 0,
  };
}

export function messageTimeMs(message: ModelMessage): number {
  switch (message.kind) {
    case 'sample':
      return message.sample.atMs;
    case 'event':
      return message.event.atMs;
    default:
      return message.atMs;
  }
}

export function reduce(model: ClusterModel, message: ModelMessage): ClusterModel {
  return reduceQuietly(model, message) ?? reduceFully(model, message);
}

/**
 * The whole derivation, for every message: what `reduce` computes, without the
 * shortcut for quiet messages. Exported so that tests can check the shortcut
 * against it.
 */
export function reduceFully(model: ClusterModel, message: ModelMessage): ClusterModel {
  const notes: TimelineNote[] = [];
  const timed: ClusterModel = { ...model, nowMs: Math.max(model.nowMs, messageTimeMs(message)) };
  const applied = expire(applyMessage(timed, message, notes));
  const derived = deriveCluster(model, applied, message, notes);
  const reconciled = reconcileAlerts(derived, evaluateAlertRules(derived));
  notes.push(...reconciled.notes);
  const alerted: ClusterModel = { ...derived, alerts: reconciled.alerts, alertHistory: reconciled.alertHistory };
  return commitTimeline({ ...alerted, ...deriveHealth(alerted) }, notes);
}

/** Reduces a whole stream: what playback does from a keyframe. */
export function reduceAll(model: ClusterModel, messages: Iterable<ModelMessage>): ClusterModel {
  let current = model;
  for (const message of messages) current = reduce(current, message);
  return current;
}

// ---------------------------------------------------------------------------
// The shortcut for quiet messages.

/**
 * Most messages change nothing the model derives: a follower reports the same
 * role, epoch, leader and voters as before with fresher indexes, or a tick
 * passes while no clock-driven fact (staleness, mutes, holds, the lag window)
 * runs out. For those the full derivation would return the same leader, split
 * brain, fault tolerance, followers, alerts, health and timeline, only after
 * visiting every node several times; this returns the model with the new raw
 * inputs instead, or null when the message might change a derived fact and
 * must take the full path.
 *
 * It leans on one invariant of every model `reduce` returns (and of
 * `createClusterModel`): its derived facts are those of its raw inputs at its
 * `nowMs`. A sample from the leader, or any sample while there is no leader,
 * always takes the full path.
 */
function reduceQuietly(model: ClusterModel, message: ModelMessage): ClusterModel | null {
  if (model.leader === null) return null;
  if (message.kind === 'tick') {
    const nowMs = Math.max(model.nowMs, message.atMs);
    if (nowMs !== model.nowMs && !timePassesQuietly(model, nowMs, null)) return null;
    return nowMs === model.nowMs ? model : { ...model, nowMs };
  }
  if (message.kind !== 'sample') return null;
  const { status, atMs } = message.sample;
  const node = model.nodes[status.nodeId];
  if (status.nodeId === model.leader.nodeId || status.clusterId !== model.clusterId || model.engine === null) return null;
  if (node?.status == null || node.statusAtMs === null || atMs < node.statusAtMs || !sameDerivedFacts(node.status, status)) return null;
  const nowMs = Math.max(model.nowMs, atMs);
  const updated: NodeView = { ...node, status, statusAtMs: atMs, lastSeenAtMs: Math.max(node.lastSeenAtMs ?? atMs, atMs) };
  if (deriveReachability(updated, nowMs, model.config) !== node.reachability) return null;
  if (nowMs !== model.nowMs && !timePassesQuietly(model, nowMs, status.nodeId)) return null;
  return { ...model, nowMs, nodes: { ...model.nodes, [status.nodeId]: updated }, evidence: evidenceFromSample(model.evidence, status) };
}

/**
 * Whether two statuses of one node agree on everything the derivations read
 * of a node that is not the leader: whom it follows and in which epoch (leader,
 * split brain), the configuration it states (voters), and whether
 * it serves (fault tolerance, the not-serving alert). Indexes, storage,
 * process figures and the like are only shown.
 */
function sameDerivedFacts(before: NodeStatus, after: NodeStatus): boolean {
  return (
    before.role === after.role &&
    before.epoch === after.epoch &&
    before.leader === after.leader &&
    sameStrings(before.voters, after.voters) &&
    (before.integrity?.serving ?? null) === (after.integrity?.serving ?? null) &&
    (before.integrity?.reason ?? null) === (after.integrity?.reason ?? null)
  );
}

function sameStrings(a: string[], b: string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index += 1) if (a[index] !== b[index]) return false;
  return true;
}

/**
 * Whether moving the model's time to `nowMs` changes nothing derived, given a
 * leader that stays: no mute, operator grace period or repaired notice runs
 * out, no node but `exceptNodeId` (checked by the caller) changes reachability
 * by age, no lag point leaves the window and the leader-changed alert's hold
 * does not end. Every clock-driven fact of the model is in this list; a new
 * one (in `expire`, a derivation or an alert rule) must be added here too.
 */
function timePassesQuietly(model: ClusterModel, nowMs: number, exceptNodeId: string | null): boolean {
  const { config } = model;
  for (const id in model.mutes) if ((model.mutes[id] as number) <= nowMs) return false;
  for (const operation of model.operations) if (operation.graceUntilMs <= nowMs) return false;
  for (const id in model.repairs) if (nowMs - (model.repairs[id] as RepairState).atMs >= config.repairedAlertHoldMs) return false;
  for (const id in model.nodes) {
    const node = model.nodes[id] as NodeView;
    if (id !== exceptNodeId && deriveReachability(node, nowMs, config) !== node.reachability) return false;
  }
  const oldestMs = nowMs - config.lagHistoryWindowMs;
  for (const id in model.lagHistory) {
    const first = (model.lagHistory[id] as LagPoint[])[0];
    if (first !== undefined && first.atMs < oldestMs) return false;
  }
  const latest = model.failovers.at(-1);
  if (latest !== undefined) {
    const expiresAtMs = latest.atMs + config.leaderChangedAlertHoldMs;
    if (model.nowMs < expiresAtMs && expiresAtMs <= nowMs) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Applying one message to the raw inputs.

function applyMessage(model: ClusterModel, message: ModelMessage, notes: TimelineNote[]): ClusterModel {
  switch (message.kind) {
    case 'sample':
      return applySample(model, message.sample);
    case 'event':
      return applyEvent(model, message.event, notes);
    case 'link':
      return applyLink(model, message.nodeId, message.endpoint, message.state);
    case 'tick':
      return model;
    case 'operator':
      return applyOperator(model, message.action, message.atMs, notes);
    case 'acknowledge':
      return applyAcknowledge(model, message.alertId, message.atMs, notes);
    case 'mute':
      return applyMute(model, message.alertId, message.durationMs, message.atMs, notes);
  }
}

function emptyNode(nodeId: string): NodeView {
  return { nodeId, status: null, statusAtMs: null, endpoint: null, linkState: null, lastSeenAtMs: null, reachability: 'unknown' };
}

/** Returns the model with `nodeId` replaced by `update(node)`, or the model unchanged when the node table is full. */
function withNode(model: ClusterModel, nodeId: string, update: (node: NodeView) => NodeView): ClusterModel {
  const existing = model.nodes[nodeId];
  if (existing === undefined && Object.keys(model.nodes).length >= nodesMax) return model;
  return { ...model, nodes: { ...model.nodes, [nodeId]: update(existing ?? emptyNode(nodeId)) } };
}

function applySample(model: ClusterModel, sample: StatusSample): ClusterModel {
  const { status, atMs } = sample;
  // The hub groups links by profile; a node that reports another cluster is misconfigured and must not sway this one.
  if (model.clusterId !== null && status.clusterId !== model.clusterId) return model;
  const existing = model.nodes[status.nodeId];
  // Samples can arrive out of order across a reconnect; an older one must not overwrite a newer status.
  if (existing?.statusAtMs != null && atMs < existing.statusAtMs) return model;
  const next = withNode(model, status.nodeId, (node) => ({ ...node, status, statusAtMs: atMs, lastSeenAtMs: Math.max(node.lastSeenAtMs ?? atMs, atMs) }));
  return { ...next, clusterId: next.clusterId ?? status.clusterId, engine: next.engine ?? status.engine, evidence: evidenceFromSample(next.evidence, status) };
}

/** A status that names a transfer or a running drill is evidence for the cause of the next leader change. */
function evidenceFromSample(evidence: LeaderChangeEvidence, status: NodeStatus): LeaderChangeEvidence {
  let next = evidence;
  if (status.transferringTo !== null && next.transferTo !== status.transferringTo) next = { ...next, transferTo: status.transferringTo };
  if (status.activeDrills.length > 0 && next.drill === null) next = { ...next, drill: `${status.activeDrills.join(', ')} on ${status.nodeId}` };
  return next;
}

function applyLink(model: ClusterModel, nodeId: string, endpoint: string, state: NodeView['linkState']): ClusterModel {
  return withNode(model, nodeId, (node) => ({ ...node, endpoint, linkState: state }));
}

function rememberKey(model: ClusterModel, key: string): ClusterModel {
  const recentKeys = model.recentKeys.length >= recentKeysMax ? [...model.recentKeys.slice(1 - recentKeysMax), key] : [...model.recentKeys, key];
  return { ...model, recentKeys };
}

/** Some events are reported by several nodes (every follower may announce the new leader); show them once. */
function eventDedupeKey(body: EventBody): string | null {
  switch (body.type) {
    case 'leader:elected':
      return `elected:${body.epoch}:${body.leader}`;
    case 'election:started':
      return `election:${body.epoch}:${body.candidate}`;
    case 'transfer:completed':
      return `transferred:${body.epoch}:${body.to}`;
    default:
      return null;
  }
}

function applyEvent(model: ClusterModel, event: ClusterEvent, notes: TimelineNote[]): ClusterModel {
  if (model.recentKeys.includes(event.id)) return model;
  let next = rememberKey(model, event.id);
  next = withNode(next, event.nodeId, (node) => ({ ...node, lastSeenAtMs: Math.max(node.lastSeenAtMs ?? event.atMs, event.atMs) }));
  const dedupeKey = eventDedupeKey(event.body);
  if (dedupeKey !== null) {
    if (next.recentKeys.includes(dedupeKey)) return next;
    next = rememberKey(next, dedupeKey);
  }
  next = { ...next, evidence: evidenceFromEvent(next, event) };
  next = applyIntegrityEvent(next, event);
  const note = describeEvent(next, event);
  if (note !== null) notes.push(note);
  return next;
}

function evidenceFromEvent(model: ClusterModel, event: ClusterEvent): LeaderChangeEvidence {
  const { evidence } = model;
  const body = event.body;
  const leaderIds = [model.leader?.nodeId, model.previousLeader?.nodeId];
  switch (body.type) {
    case 'leader:lost':
      return { ...evidence, failure: evidence.failure ?? `${body.leader} lost leadership: ${body.reason}` };
    case 'node:lost':
      return leaderIds.includes(body.node) ? { ...evidence, failure: evidence.failure ?? `${body.node} was lost: ${body.reason}` } : evidence;
    case 'election:started':
      // A planned transfer also starts an election, by its target; any other real election means a timeout.
      if (body.preVote || body.candidate === evidence.transferTo) return evidence;
      return { ...evidence, failure: evidence.failure ?? `${body.candidate} started an election after an election timeout` };
    case 'transfer:requested':
    case 'transfer:completed':
      return { ...evidence, transferTo: body.to };
    case 'drill:started':
      return { ...evidence, drill: `${body.drill} on ${event.nodeId}` };
    default:
      return evidence;
  }
}

function applyIntegrityEvent(model: ClusterModel, event: ClusterEvent): ClusterModel {
  const body = event.body;
  const nodeId = event.nodeId;
  if (body.type === 'corruption:detected') {
    const previous = model.corruption[nodeId];
    const detail = `${body.kind} found by ${body.detectedBy}${body.file === null ? '' : ` in ${body.file}`}${body.index === null ? '' : ` at entry ${body.index}`}: ${body.detail}`;
    const state = {
      outstanding: (previous?.outstanding ?? 0) + 1,
      tornTailOnly: (previous?.tornTailOnly ?? true) && body.kind === 'torn-tail',
      detail,
      sinceMs: previous?.sinceMs ?? event.atMs,
    };
    return { ...model, corruption: { ...model.corruption, [nodeId]: state } };
  }
  if (body.type === 'corruption:repaired') {
    const corruption = { ...model.corruption };
    const previous = corruption[nodeId];
    if (previous !== undefined && previous.outstanding > 1) corruption[nodeId] = { ...previous, outstanding: previous.outstanding - 1 };
    else delete corruption[nodeId];
    const detail = `Repaired from ${body.repairedFrom}${body.index === null ? '' : ` at entry ${body.index}`} in ${formatDurationMs(body.durationMs)}: ${body.detail}`;
    return { ...model, corruption, repairs: { ...model.repairs, [nodeId]: { atMs: event.atMs, detail } } };
  }
  return model;
}

function describeEvent(model: ClusterModel, event: ClusterEvent): TimelineNote | null {
  const noun = epochNoun(model.engine);
  const body = event.body;
  const note = (kind: TimelineNote['kind'], severity: TimelineNote['severity'], text: string, nodeId: string | null = event.nodeId): TimelineNote => ({
    atMs: event.atMs,
    kind,
    severity,
    nodeId,
    text,
  });
  switch (body.type) {
    case 'election:started':
      // Pre-votes do not disturb the leader; showing every one would bury the elections that matter.
      return body.preVote ? null : note('election', 'info', `${body.candidate} started an election for ${noun} ${body.epoch}`, body.candidate);
    case 'leader:elected': {
      const gap = body.leaderlessMs === null ? '' : ` after ${formatDurationMs(body.leaderlessMs)} without a leader`;
      return note('election', 'info', `${body.leader} elected leader of ${noun} ${body.epoch}${gap}`, body.leader);
    }
    case 'leader:lost':
      return note('leader', 'warning', `${body.leader} lost leadership of ${noun} ${body.epoch}: ${body.reason}`, body.leader);
    case 'transfer:requested':
      return note('transfer', 'info', `Leadership transfer requested: ${body.from} → ${body.to}`);
    case 'transfer:completed':
      return note('transfer', 'info', `Leadership transfer completed: ${body.from} → ${body.to}`);
    case 'transfer:aborted':
      return note('transfer', 'warning', `Leadership transfer ${body.from} → ${body.to} aborted: ${body.reason}`);
    case 'transfer:refused':
      return note('transfer', 'warning', `Leadership transfer to ${body.to} refused (${body.code}): ${body.reason}`);
    case 'membership:changed': {
      const learners = body.learners.length === 0 ? '' : `; learners ${body.learners.join(', ')}`;
      return note('membership', 'info', `Membership changed (${body.change}): voters ${body.voters.join(', ')}${learners}`);
    }
    case 'node:joined':
      return note('node', 'info', `${body.node} joined`, body.node);
    case 'node:lost':
      return note('node', 'warning', `${body.node} lost: ${body.reason}`, body.node);
    case 'corruption:detected':
      return note('integrity', body.kind === 'torn-tail' ? 'warning' : 'critical', `Corruption on ${event.nodeId}: ${model.corruption[event.nodeId]?.detail ?? body.detail}`);
    case 'corruption:repaired':
      return note('integrity', 'info', `${event.nodeId}: ${model.repairs[event.nodeId]?.detail ?? body.detail}`);
    case 'scrub:completed':
      // Clean scrubs are routine and frequent; they would push the incidents off a bounded timeline.
      return body.corruptions === 0
        ? null
        : note('integrity', 'warning', `Scrub on ${event.nodeId} found ${body.corruptions} corruption${body.corruptions === 1 ? '' : 's'} in ${body.bytes} bytes`);
    case 'drill:started':
      return note('drill', 'warning', `Drill ${body.drill} started on ${event.nodeId}${body.detail === '' ? '' : `: ${body.detail}`}`);
    case 'drill:ended':
      return note('drill', 'info', `Drill ${body.drill} ended on ${event.nodeId}${body.detail === '' ? '' : `: ${body.detail}`}`);
  }
}

function applyOperator(model: ClusterModel, action: OperatorAction, atMs: number, notes: TimelineNote[]): ClusterModel {
  const operation =
    action.type === 'transfer'
      ? { type: 'transfer' as const, nodeId: action.to, drill: null, startedAtMs: atMs, graceUntilMs: atMs + model.config.operatorGraceMs }
      : { type: 'drill' as const, nodeId: action.nodeId, drill: action.drill, startedAtMs: atMs, graceUntilMs: atMs + model.config.operatorGraceMs };
  notes.push({
    atMs,
    kind: 'operator',
    severity: 'info',
    nodeId: operation.nodeId,
    text: action.type === 'transfer' ? `Operator started a leadership transfer to ${action.to}` : `Operator started drill ${action.drill} on ${action.nodeId}`,
  });
  return { ...model, operations: [...model.operations, operation].slice(-operationsMax) };
}

function applyAcknowledge(model: ClusterModel, alertId: string, atMs: number, notes: TimelineNote[]): ClusterModel {
  const alert = model.alerts.find((candidate) => candidate.id === alertId);
  if (alert === undefined || alert.acknowledged) return model;
  notes.push({ atMs, kind: 'operator', severity: 'info', nodeId: alert.nodeId, text: `Operator acknowledged: ${alert.title}` });
  return {
    ...model,
    alerts: model.alerts.map((candidate) => (candidate.id === alertId ? { ...candidate, acknowledged: true, acknowledgedAtMs: atMs } : candidate)),
  };
}

function applyMute(model: ClusterModel, alertId: string, durationMs: number, atMs: number, notes: TimelineNote[]): ClusterModel {
  const mutes = { ...model.mutes };
  const untilMs = durationMs > 0 ? atMs + durationMs : null;
  if (untilMs === null) delete mutes[alertId];
  else mutes[alertId] = untilMs;
  const entries = Object.entries(mutes);
  if (entries.length > mutesMax) {
    // Over the bound, the mute that ends soonest goes first: it matters least.
    entries.sort((a, b) => a[1] - b[1]);
    for (const [id] of entries.slice(0, entries.length - mutesMax)) delete mutes[id];
  }
  const alert = model.alerts.find((candidate) => candidate.id === alertId);
  const title = alert?.title ?? alertId;
  notes.push({
    atMs,
    kind: 'operator',
    severity: 'info',
    nodeId: alert?.nodeId ?? null,
    text: untilMs === null ? `Operator unmuted: ${title}` : `Operator muted for ${formatDurationMs(durationMs)}: ${title}`,
  });
  return {
    ...model,
    mutes,
    alerts: model.alerts.map((candidate) => (candidate.id === alertId ? { ...candidate, mutedUntilMs: untilMs } : candidate)),
  };
}

/** Drops what has run out: mutes, operator grace periods, repaired notices. */
function expire(model: ClusterModel): ClusterModel {
  const nowMs = model.nowMs;
  let next = model;
  if (Object.values(model.mutes).some((untilMs) => untilMs <= nowMs)) {
    next = { ...next, mutes: Object.fromEntries(Object.entries(model.mutes).filter(([, untilMs]) => untilMs > nowMs)) };
  }
  if (model.operations.some((operation) => operation.graceUntilMs <= nowMs)) {
    next = { ...next, operations: model.operations.filter((operation) => operation.graceUntilMs > nowMs) };
  }
  const holdMs = model.config.repairedAlertHoldMs;
  if (Object.values(model.repairs).some((repair) => nowMs - repair.atMs >= holdMs)) {
    next = { ...next, repairs: Object.fromEntries(Object.entries(model.repairs).filter(([, repair]) => nowMs - repair.atMs < holdMs)) };
  }
  return next;
}

// ---------------------------------------------------------------------------
// Deriving the cluster picture from the raw inputs.

function refreshReachability(model: ClusterModel): Record<string, NodeView> {
  let nodes = model.nodes;
  for (const node of Object.values(model.nodes)) {
    const reachability = deriveReachability(node, model.nowMs, model.config);
    if (reachability === node.reachability) continue;
    if (nodes === model.nodes) nodes = { ...model.nodes };
    nodes[node.nodeId] = { ...node, reachability };
  }
  return nodes;
}

/** Voters named in the configuration but never heard from still get a card: their absence is the news. */
function addKnownVoters(nodes: Record<string, NodeView>, voters: string[]): Record<string, NodeView> {
  let next = nodes;
  for (const voter of voters) {
    if (next[voter] !== undefined || Object.keys(next).length >= nodesMax) continue;
    if (next === nodes) next = { ...nodes };
    next[voter] = emptyNode(voter);
  }
  return next;
}

function deriveCluster(previous: ClusterModel, model: ClusterModel, message: ModelMessage, notes: TimelineNote[]): ClusterModel {
  let nodes = refreshReachability(model);
  const statuses = believedStatuses(nodes);
  const leader = deriveLeader(statuses, previous.leader, model.nowMs);
  const leaderNode = leader === null ? undefined : nodes[leader.nodeId];
  const leaderStatus =
    leaderNode?.status != null && leaderNode.reachability !== 'unreachable' && leaderNode.status.role === 'leader' && leaderNode.status.epoch === leader?.epoch
      ? leaderNode.status
      : null;
  const voters = configuredVoters(statuses, leaderStatus);
  nodes = addKnownVoters(nodes, voters);
  const followers = unchangedFollowers(previous, model, leaderStatus, leaderNode)
    ? model.followers
    : deriveFollowers(leaderStatus, leaderStatus === null ? null : (leaderNode?.statusAtMs ?? null));
  const highest = statuses.reduce<(typeof statuses)[number] | null>((best, status) => (best === null || status.epoch > best.epoch ? status : best), null);

  let next: ClusterModel = {
    ...model,
    nodes,
    leader,
    splitBrain: deriveSplitBrain(statuses),
    faultTolerance: deriveFaultTolerance(voters, nodes, leader, leaderStatus, model.config),
    followers: sameFollowers(model.followers, followers) ? model.followers : followers,
    epoch: leader?.epoch ?? highest?.epoch ?? model.epoch,
    epochLabel: leader?.epochLabel ?? highest?.epochLabel ?? model.epochLabel,
  };
  next = trackLeadership(previous, next, notes);
  const leaderSampled = message.kind === 'sample' && leaderStatus !== null && message.sample.status.nodeId === leader?.nodeId && message.sample.status === leaderStatus;
  return { ...next, lagHistory: updateLagHistory(next.lagHistory, leaderSampled ? followers : [], model.nowMs, model.config) };
}

/**
 * The followers are a pure function of the leader's status and its time: when
 * neither changed since the previous message, the previous list stands. Most
 * messages come from other nodes, so this skips most of the work in a large
 * cluster. (Followers only ever come from a leader status, so a list of the
 * same length as that status's followers was derived from it.)
 */
function unchangedFollowers(previous: ClusterModel, model: ClusterModel, leaderStatus: ClusterModel['nodes'][string]['status'], leaderNode: NodeView | undefined): boolean {
  if (leaderStatus === null || leaderNode === undefined || previous.leader?.nodeId !== leaderNode.nodeId) return false;
  const before = previous.nodes[leaderNode.nodeId];
  return before !== undefined && before.status === leaderStatus && before.statusAtMs === leaderNode.statusAtMs && model.followers.length === leaderStatus.followers.length && model.followers.length > 0;
}

function sameFollowers(a: FollowerLag[], b: FollowerLag[]): boolean {
  // Field by field rather than through JSON.stringify: this runs on every message, and with 50 nodes the strings dominated replay time.
  return a.length === b.length && a.every((follower, index) => sameFollower(follower, b[index]));
}

function sameFollower(a: FollowerLag, b: FollowerLag | undefined): boolean {
  return (
    b !== undefined &&
    a.nodeId === b.nodeId &&
    a.voter === b.voter &&
    a.state === b.state &&
    a.matchIndex === b.matchIndex &&
    a.lagEntries === b.lagEntries &&
    a.lagMs === b.lagMs &&
    a.lastContactMs === b.lastContactMs &&
    a.atMs === b.atMs
  );
}

/**
 * Notices leader changes: the start of a leaderless gap, the first leader, and
 * failovers, each with its cause.
 */
function trackLeadership(previous: ClusterModel, model: ClusterModel, notes: TimelineNote[]): ClusterModel {
  const before = previous.leader;
  const after = model.leader;
  const noun = epochNoun(model.engine);
  const nowMs = model.nowMs;
  if (after === null) {
    if (before !== null) {
      notes.push({ atMs: nowMs, kind: 'leader', severity: 'warning', nodeId: before.nodeId, text: `No leader: ${before.nodeId} no longer leads ${noun} ${before.epoch}` });
      return { ...model, previousLeader: { nodeId: before.nodeId, epoch: before.epoch }, leaderlessSinceMs: nowMs };
    }
    const anyStatus = Object.values(model.nodes).some((node) => node.status !== null);
    return model.leaderlessSinceMs === null && anyStatus ? { ...model, leaderlessSinceMs: nowMs } : model;
  }
  if (before !== null && before.nodeId === after.nodeId && before.epoch === after.epoch) return model;
  const from = before ?? model.previousLeader;
  const settled = { ...model, leaderlessSinceMs: null, previousLeader: null, evidence: noEvidence };
  if (from === null) {
    notes.push({ atMs: nowMs, kind: 'leader', severity: 'info', nodeId: after.nodeId, text: `${after.nodeId} leads ${noun} ${after.epoch}` });
    return settled;
  }
  if (before === null && from.nodeId === after.nodeId && from.epoch === after.epoch) {
    // The same leader in the same epoch: the hub lost sight of it, the cluster did not lose it.
    notes.push({ atMs: nowMs, kind: 'leader', severity: 'info', nodeId: after.nodeId, text: `${after.nodeId} seen leading ${noun} ${after.epoch} again` });
    return settled;
  }
  const explanation = explainLeaderChange(model, from.nodeId, after.nodeId);
  const failover: Failover = {
    from: from.nodeId,
    to: after.nodeId,
    fromEpoch: from.epoch,
    epoch: after.epoch,
    epochLabel: after.epochLabel,
    atMs: nowMs,
    durationMs: before === null && model.leaderlessSinceMs !== null ? nowMs - model.leaderlessSinceMs : 0,
    ...explanation,
  };
  const change = failover.from === failover.to ? `${failover.to} re-elected` : `${failover.from} → ${failover.to}`;
  notes.push({
    atMs: nowMs,
    kind: 'failover',
    severity: failover.cause === 'failure' || failover.cause === 'unknown' ? 'warning' : 'info',
    nodeId: after.nodeId,
    text: `Leader changed ${change} in ${noun} ${after.epoch} (${failover.note})`,
  });
  // A transfer is spent once its target leads; a drill may cause several changes, so it stays until its grace ends.
  const operations = model.operations.filter((operation) => !(operation.type === 'transfer' && operation.nodeId === after.nodeId));
  return { ...settled, operations, failovers: [...model.failovers, failover].slice(-model.config.failoversMax) };
}

function explainLeaderChange(model: ClusterModel, from: string, to: string): { cause: FailoverCause; operatorInitiated: boolean; note: string } {
  const transfer = model.operations.find((operation) => operation.type === 'transfer' && operation.nodeId === to);
  if (transfer !== undefined) return { cause: 'planned transfer', operatorInitiated: true, note: `planned transfer to ${to}` };
  const drill = model.operations.find((operation) => operation.type === 'drill');
  if (drill !== undefined) return { cause: 'drill', operatorInitiated: true, note: `drill ${drill.drill ?? ''} on ${drill.nodeId}` };
  const { evidence } = model;
  if (evidence.transferTo === to) return { cause: 'planned transfer', operatorInitiated: false, note: `transfer to ${to}, not started from this app` };
  if (evidence.drill !== null) return { cause: 'drill', operatorInitiated: false, note: `during drill ${evidence.drill}` };
  if (evidence.failure !== null) return { cause: 'failure', operatorInitiated: false, note: evidence.failure };
  const previous = model.nodes[from];
  if (previous !== undefined && (previous.reachability === 'unreachable' || previous.reachability === 'stale' || previous.status?.role === 'offline')) {
    return { cause: 'failure', operatorInitiated: false, note: `${from} became unreachable` };
  }
  return { cause: 'unknown', operatorInitiated: false, note: 'no cause reported' };
}

/**
 * Appends one point per follower per `lagHistoryIntervalMs` and drops points
 * older than the window. Samples inside one interval keep their peak, so a
 * short spike survives the thinning.
 */
function updateLagHistory(history: Record<string, LagPoint[]>, followers: FollowerLag[], nowMs: number, config: ModelConfig): Record<string, LagPoint[]> {
  const oldestMs = nowMs - config.lagHistoryWindowMs;
  const pointsMax = lagHistoryPointsMax(config);
  let next = history;
  const replace = (nodeId: string, points: LagPoint[] | null) => {
    if (next === history) next = { ...history };
    if (points === null || points.length === 0) delete next[nodeId];
    else next[nodeId] = points;
  };
  for (const follower of followers) {
    const points = next[follower.nodeId] ?? [];
    if (points.length === 0 && Object.keys(next).length >= lagSeriesMax) continue;
    const last = points.at(-1);
    const bucket = Math.floor(follower.atMs / config.lagHistoryIntervalMs);
    // One copy of the series per change (this runs for every follower on every leader sample, on series of hundreds of points).
    if (last !== undefined && Math.floor(last.atMs / config.lagHistoryIntervalMs) === bucket) {
      const copy = points.slice();
      copy[copy.length - 1] = { atMs: follower.atMs, lagEntries: Math.max(last.lagEntries, follower.lagEntries), lagMs: Math.max(last.lagMs, follower.lagMs) };
      replace(follower.nodeId, copy);
    } else if (last === undefined || follower.atMs > last.atMs) {
      const copy = points.slice(Math.max(0, points.length + 1 - pointsMax));
      copy.push({ atMs: follower.atMs, lagEntries: follower.lagEntries, lagMs: follower.lagMs });
      replace(follower.nodeId, copy);
    }
  }
  for (const [nodeId, points] of Object.entries(next)) {
    const first = points[0];
    if (first !== undefined && first.atMs >= oldestMs) continue;
    replace(nodeId, points.filter((point) => point.atMs >= oldestMs));
  }
  return next;
}

// ---------------------------------------------------------------------------
// Health and the timeline.

function deriveHealth(model: ClusterModel): { health: Health; healthReason: string } {
  const noun = epochNoun(model.engine);
  const nodes = Object.values(model.nodes);
  if (!nodes.some((node) => node.status !== null)) return { health: 'unknown', healthReason: 'no status received yet' };
  if (!nodes.some((node) => node.status !== null && node.reachability !== 'unreachable')) {
    return { health: 'unknown', healthReason: 'no node is reachable from the hub' };
  }
  if (model.splitBrain !== null) {
    return { health: 'split-brain', healthReason: `${model.splitBrain.leaders.join(' and ')} each lead ${noun} ${model.splitBrain.epoch}` };
  }
  if (model.leader === null) {
    const sinceMs = model.leaderlessSinceMs ?? model.nowMs;
    return { health: 'no-leader', healthReason: `no leader for ${formatDurationMs(model.nowMs - sinceMs)}` };
  }
  // Health is the truth about the cluster: a muted alert still degrades it, muting only silences the alert.
  const worst = model.alerts.find((alert) => alert.severity === 'critical') ?? model.alerts.find((alert) => alert.severity === 'warning');
  if (worst !== undefined) return { health: 'degraded', healthReason: worst.title };
  const { tolerable, tolerableMax } = model.faultTolerance;
  if (tolerable !== null && tolerable < tolerableMax) return { health: 'degraded', healthReason: `can lose only ${Math.max(0, tolerable)} more` };
  return { health: 'healthy', healthReason: `${model.leader.nodeId} leads ${noun} ${model.leader.epoch}; can lose ${tolerable ?? 0} more` };
}

function commitTimeline(model: ClusterModel, notes: TimelineNote[]): ClusterModel {
  if (notes.length === 0) return model;
  const entries = notes.map((note, offset) => ({ ...note, sequence: model.nextSequence + offset }));
  return {
    ...model,
    timeline: [...model.timeline, ...entries].slice(-model.config.timelineEntriesMax),
    nextSequence: model.nextSequence + notes.length,
  };
}
