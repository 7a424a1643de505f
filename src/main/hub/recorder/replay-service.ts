import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ClusterModel, ModelMessage } from '../../../shared/model';
import { err, ok, type BridgeRequestArg, type Incident, type ReplayResponses, type ReplayState, type Result } from '../../../shared/protocol';
import type { Clock, Logger } from '../../../shared/logger';
import { exportRecording, openRecordingFile, recordingExtension } from './files';
import { Player } from './player';
import { Recorder } from './recorder';
import type { RecordingStore } from './store';

type ReplayName = keyof ReplayResponses;
export type ReplayHandlers = { [N in ReplayName]: (arg: BridgeRequestArg<N>) => Promise<Result<ReplayResponses[N]>> };

export interface ReplayServiceOptions {
  /** The hub's recording database; null records nothing (replay of files still works). */
  recordingPath: string | null;
  exportDir: string;
  appVersion: string;
  clock: Clock;
  logger: Logger;
  /** Called whenever the replay state changed, to push a snapshot. */
  changed: () => void;
  /** The name of a connected profile, for bookmarks. */
  profileName: (profileId: string) => string | null;
}

interface Playing {
  player: Player;
  /** A store this service opened for the replay (a file), closed when it ends. */
  ownedStore: RecordingStore | null;
  tempDir: string | null;
}

/** The recorder, incidents, exports and the player behind the bridge requests. */
export class ReplayService {
  readonly recorder: Recorder | null;
  private playing: Playing | null = null;

  constructor(private readonly options: ReplayServiceOptions) {
    let recorder: Recorder | null = null;
    if (options.recordingPath !== null) {
      mkdirSync(path.dirname(options.recordingPath), { recursive: true });
      const opened = Recorder.open(options.recordingPath, options.clock, options.logger);
      if (opened.ok) recorder = opened.data;
      else options.logger.error({ error: opened.error.message }, 'recording is off');
    }
    this.recorder = recorder;
  }

  /** What a cluster connection calls for every message it reduced. */
  recordFor(profileId: string, name: string): ((message: ModelMessage, model: ClusterModel) => void) | undefined {
    const recorder = this.recorder;
    if (recorder === null) return undefined;
    return (message, model) => recorder.record(profileId, name, message, model);
  }

  state(): ReplayState | null {
    return this.playing?.player.state() ?? null;
  }

  close(): void {
    this.stop();
    this.recorder?.close();
  }

  handlers(): ReplayHandlers {
    return {
      'recorder:status': async () => this.withRecorder((recorder) => ok(recorder.status())),
      'recorder:settings': async (settings) => this.withRecorder((recorder) => ok(recorder.configure(settings))),
      'incidents:list': async ({ source }) => this.withRecorder((recorder) => ok(recorder.incidents(source))),
      'incidents:edit': async ({ id, ...change }) =>
        this.withRecorder((recorder) => {
          const edited = recorder.editIncident(id, change);
          if (edited.ok) this.refreshIncidents();
          return edited;
        }),
      'incidents:bookmark': async ({ profileId, title, notes }) =>
        this.withRecorder((recorder) => {
          const name = this.options.profileName(profileId);
          if (name === null) return err('not_connected', `no connected cluster for profile "${profileId}"`);
          return ok(recorder.bookmark(profileId, name, title, notes));
        }),
      'recording:export': async (request) => this.withRecorder((recorder) => this.export(recorder, request)),
      'replay:start': async ({ source, atMs }) =>
        this.withRecorder((recorder) => {
          recorder.sealAll();
          const name = recorder.store.sources().find((row) => row.source === source)?.name;
          if (name === undefined) return err('unknown_source', `nothing is recorded for "${source}"`);
          return this.begin(recorder.store, { origin: 'store', label: name, source, sourceName: name }, recorder.incidents(source), null, null, atMs);
        }),
      'replay:open': async (request) => this.open(request),
      'replay:seek': async ({ atMs }) => this.withPlayer((player) => player.seek(atMs)),
      'replay:play': async ({ speed }) => this.withPlayer((player) => player.play(speed)),
      'replay:pause': async () => this.withPlayer((player) => player.pause()),
      'replay:step': async ({ direction }) => this.withPlayer((player) => player.step(direction)),
      'replay:incident': async ({ direction }) => this.withPlayer((player) => void player.jumpToIncident(direction)),
      'replay:stop': async () => ok({ stopped: this.stop() }),
    };
  }

  /** Opens a `.qsrec` (a path on this machine, or bytes the renderer sent) and starts replaying it. */
  open(request: BridgeRequestArg<'replay:open'>): Result<ReplayState> {
    let filePath: string;
    let tempDir: string | null = null;
    let label: string;
    if ('path' in request) {
      filePath = request.path;
      label = path.basename(request.path);
    } else {
      tempDir = mkdtempSync(path.join(os.tmpdir(), 'quorumscope-open-'));
      filePath = path.join(tempDir, 'recording.qsrec');
      writeFileSync(filePath, Buffer.from(request.base64, 'base64'));
      label = request.fileName;
    }
    const opened = openRecordingFile(filePath);
    if (!opened.ok) {
      if (tempDir !== null) rmSync(tempDir, { recursive: true, force: true });
      return err(opened.error.code, `${label}: ${opened.error.message}`);
    }
    const store = opened.data;
    const source = store.sources()[0];
    if (source === undefined) return err('empty_recording', `${label}: the recording holds no cluster`);
    const incidents = store.incidentRows(source.source).map((row) => JSON.parse(row.body) as Incident);
    return this.begin(store, { origin: 'file', label, source: source.source, sourceName: source.name }, incidents, store, tempDir, undefined);
  }

  private begin(
    store: RecordingStore,
    origin: ConstructorParameters<typeof Player>[1],
    incidents: Incident[],
    ownedStore: RecordingStore | null,
    tempDir: string | null,
    atMs: number | undefined,
  ): Result<ReplayState> {
    this.stop();
    let player: Player;
    try {
      player = new Player(store, origin, this.options.clock, this.options.changed, incidents);
      player.seek(atMs ?? incidents[0]?.startMs ?? player.startMs);
    } catch (error) {
      ownedStore?.close();
      if (tempDir !== null) rmSync(tempDir, { recursive: true, force: true });
      return err('cannot_replay', `${origin.label}: ${(error as Error).message}`);
    }
    this.playing = { player, ownedStore, tempDir };
    this.options.changed();
    return ok(player.state());
  }

  /** Back to live. */
  stop(): boolean {
    const playing = this.playing;
    if (playing === null) return false;
    playing.player.close();
    playing.ownedStore?.close();
    if (playing.tempDir !== null) rmSync(playing.tempDir, { recursive: true, force: true });
    this.playing = null;
    this.options.changed();
    return true;
  }

  private export(recorder: Recorder, request: BridgeRequestArg<'recording:export'>): Result<{ path: string; bytes: number }> {
    recorder.sealAll();
    let range: { source: string; fromMs: number; toMs: number; title: string; incidents: Incident[] };
    if ('incidentId' in request) {
      const incident = recorder.incidents().find((candidate) => candidate.id === request.incidentId);
      if (incident === undefined) return err('unknown_incident', `no incident with id "${request.incidentId}"`);
      range = { source: incident.source, fromMs: incident.startMs, toMs: incident.endMs, title: incident.title, incidents: [incident] };
    } else {
      if (request.toMs <= request.fromMs) return err('bad_range', 'the end of the range must be after its start');
      const incidents = recorder.incidents(request.source).filter((incident) => incident.endMs >= request.fromMs && incident.startMs <= request.toMs);
      range = { ...request, title: `${request.source} ${new Date(request.fromMs).toISOString()}`, incidents };
    }
    mkdirSync(this.options.exportDir, { recursive: true });
    const stamp = new Date(range.fromMs).toISOString().replace(/[:.]/g, '-');
    const file = path.join(this.options.exportDir, `${range.source}-${stamp}-${Math.round(this.options.clock.nowMs())}${recordingExtension}`);
    try {
      return exportRecording(recorder.store, range, file, this.options.appVersion);
    } catch (error) {
      rmSync(file, { force: true });
      return err('export_failed', `cannot export: ${(error as Error).message}`);
    }
  }

  private refreshIncidents(): void {
    const playing = this.playing;
    if (playing === null || this.recorder === null || playing.ownedStore !== null) return;
    playing.player.setIncidents(this.recorder.incidents(playing.player.state().source));
    this.options.changed();
  }

  private withRecorder<T>(act: (recorder: Recorder) => Result<T>): Result<T> {
    if (this.recorder === null) return err('recorder_off', 'recording is off in this app');
    return act(this.recorder);
  }

  private withPlayer(act: (player: Player) => void): Result<ReplayState> {
    const playing = this.playing;
    if (playing === null) return err('not_replaying', 'no recording is open');
    act(playing.player);
    this.options.changed();
    return ok(playing.player.state());
  }
}
