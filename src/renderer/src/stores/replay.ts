import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import type { ErrorInfo, Incident, QuorumscopeApi, RecorderSettings, RecorderStatus, ReplayState } from '../../../shared/protocol';
import { useHubStore } from './hub';

/** Replay of recordings, incidents and the recorder's settings (issue 7). The state itself comes with every hub snapshot. */
export const useReplayStore = defineStore('replay', () => {
  const hub = useHubStore();
  let bridge: QuorumscopeApi | null = null;
  const status = ref<RecorderStatus | null>(null);
  const incidents = ref<Incident[]>([]);
  const lastError = ref<string | null>(null);
  const lastExport = ref<string | null>(null);

  const state = computed<ReplayState | null>(() => hub.snapshot?.replay ?? null);
  const active = computed(() => state.value !== null);

  function attach(api: QuorumscopeApi): void {
    bridge = api;
  }

  /** An operator's action: its failure is shown. A background refresh is `quiet`: the hub store already shows a lost hub. */
  async function call<T>(run: (api: QuorumscopeApi) => Promise<{ ok: true; data: T } | { ok: false; error: ErrorInfo }>, quiet = false): Promise<T | null> {
    if (bridge === null) return null;
    const answer = await run(bridge);
    if (!answer.ok) {
      if (!quiet) lastError.value = answer.error.message;
      return null;
    }
    if (!quiet) lastError.value = null;
    return answer.data;
  }

  async function refresh(): Promise<void> {
    status.value = (await call((api) => api.request('recorder:status', null), true)) ?? status.value;
    incidents.value = (await call((api) => api.request('incidents:list', {}), true)) ?? incidents.value;
  }

  return {
    state,
    active,
    status,
    incidents,
    lastError,
    lastExport,
    attach,
    refresh,
    start: (source: string, atMs?: number) => call((api) => api.request('replay:start', atMs === undefined ? { source } : { source, atMs })),
    openPath: (path: string) => call((api) => api.request('replay:open', { path })),
    openBytes: (fileName: string, base64: string) => call((api) => api.request('replay:open', { fileName, base64 })),
    seek: (atMs: number) => call((api) => api.request('replay:seek', { atMs })),
    play: (speed?: number) => call((api) => api.request('replay:play', speed === undefined ? {} : { speed })),
    pause: () => call((api) => api.request('replay:pause', null)),
    step: (direction: 1 | -1) => call((api) => api.request('replay:step', { direction })),
    jump: (direction: 1 | -1) => call((api) => api.request('replay:incident', { direction })),
    stop: () => call((api) => api.request('replay:stop', null)),
    bookmark: (profileId: string) => call((api) => api.request('incidents:bookmark', { profileId })).then(refresh),
    editIncident: (id: string, change: { title?: string; notes?: string; severity?: Incident['severity'] }) =>
      call((api) => api.request('incidents:edit', { id, ...change })).then(refresh),
    exportIncident: async (incidentId: string) => {
      const done = await call((api) => api.request('recording:export', { incidentId }));
      if (done !== null) lastExport.value = `${done.path} (${done.bytes} bytes)`;
    },
    configure: async (settings: RecorderSettings) => {
      status.value = (await call((api) => api.request('recorder:settings', settings))) ?? status.value;
    },
  };
});
