import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import type { PreflightCheck } from '../../../shared/model';
import type {
  AppInfo,
  AuditEntry,
  ClusterSummary,
  Drill,
  ErrorInfo,
  HubSnapshot,
  ProfileInput,
  ProfileSummary,
  ProfileUpdate,
  QuorumscopeApi,
} from '../../../shared/protocol';

/** What the hub has told us: profiles, connected clusters, and the last error. */
export const useHubStore = defineStore('hub', () => {
  const info = ref<AppInfo | null>(null);
  const profiles = ref<ProfileSummary[]>([]);
  const snapshot = shallowRef<HubSnapshot | null>(null);
  const lastError = ref<ErrorInfo | null>(null);
  const bridgeReady = ref(false);

  const clusters = computed<ClusterSummary[]>(() => snapshot.value?.clusters ?? []);

  let bridge: QuorumscopeApi | null = null;
  let unsubscribe: (() => void) | null = null;

  async function attach(api: QuorumscopeApi): Promise<void> {
    bridge = api;
    unsubscribe = api.onSnapshot((next) => {
      snapshot.value = next;
    });
    const [infoAnswer, profilesAnswer] = await Promise.all([api.request('app:info', null), api.request('profiles:list', null)]);
    if (infoAnswer.ok) info.value = infoAnswer.data;
    else lastError.value = infoAnswer.error;
    if (profilesAnswer.ok) profiles.value = profilesAnswer.data;
    else lastError.value = profilesAnswer.error;
    bridgeReady.value = infoAnswer.ok;
  }

  function detach(): void {
    unsubscribe?.();
    unsubscribe = null;
  }

  async function addAndConnect(input: ProfileInput): Promise<ErrorInfo | null> {
    if (bridge === null) return { code: 'no_bridge', message: 'not connected to the hub' };
    const added = await bridge.request('profiles:add', input);
    if (!added.ok) return added.error;
    profiles.value = [...profiles.value, added.data];
    const connected = await bridge.request('cluster:connect', { profileId: added.data.id });
    return connected.ok ? null : connected.error;
  }

  async function updateProfile(change: ProfileUpdate): Promise<ErrorInfo | null> {
    if (bridge === null) return { code: 'no_bridge', message: 'not connected to the hub' };
    const answer = await bridge.request('profiles:update', change);
    if (!answer.ok) return answer.error;
    profiles.value = profiles.value.map((profile) => (profile.id === answer.data.id ? answer.data : profile));
    return null;
  }

  async function connect(profileId: string): Promise<ErrorInfo | null> {
    if (bridge === null) return { code: 'no_bridge', message: 'not connected to the hub' };
    const answer = await bridge.request('cluster:connect', { profileId });
    return answer.ok ? null : answer.error;
  }

  async function acknowledge(profileId: string, alertId: string): Promise<void> {
    const answer = await bridge?.request('alerts:acknowledge', { profileId, alertId });
    if (answer && !answer.ok) lastError.value = answer.error;
  }

  async function mute(profileId: string, alertId: string, durationMs: number): Promise<void> {
    const answer = await bridge?.request('alerts:mute', { profileId, alertId, durationMs });
    if (answer && !answer.ok) lastError.value = answer.error;
  }

  async function preflight(profileId: string, target: string): Promise<{ target: string; checks: PreflightCheck[] } | null> {
    const answer = await bridge?.request('failover:preflight', { profileId, target });
    if (answer === undefined) return null;
    if (!answer.ok) {
      lastError.value = answer.error;
      return null;
    }
    return answer.data;
  }

  async function startFailover(profileId: string, target: string): Promise<AuditEntry | ErrorInfo> {
    if (bridge === null) return { code: 'no_bridge', message: 'not connected to the hub' };
    const answer = await bridge.request('failover:start', { profileId, target });
    return answer.ok ? answer.data : answer.error;
  }

  async function runDrill(profileId: string, nodeId: string, drill: Drill): Promise<ErrorInfo | null> {
    if (bridge === null) return { code: 'no_bridge', message: 'not connected to the hub' };
    const answer = await bridge.request('drill:run', { profileId, nodeId, drill });
    return answer.ok ? null : answer.error;
  }

  async function scrub(profileId: string, nodeId: string): Promise<ErrorInfo | null> {
    if (bridge === null) return { code: 'no_bridge', message: 'not connected to the hub' };
    const answer = await bridge.request('node:scrub', { profileId, nodeId });
    return answer.ok ? null : answer.error;
  }

  /** Tells the hub which cluster this window shows in full. */
  async function focus(profileId: string | null): Promise<void> {
    await bridge?.request('view:focus', { profileId });
  }

  function dismissError(): void {
    lastError.value = null;
  }

  async function remove(profileId: string): Promise<void> {
    if (bridge === null) return;
    const answer = await bridge.request('profiles:remove', { id: profileId });
    if (answer.ok) profiles.value = profiles.value.filter((profile) => profile.id !== profileId);
    else lastError.value = answer.error;
  }

  return {
    info,
    profiles,
    snapshot,
    clusters,
    lastError,
    bridgeReady,
    attach,
    detach,
    addAndConnect,
    updateProfile,
    connect,
    remove,
    acknowledge,
    mute,
    preflight,
    startFailover,
    runDrill,
    scrub,
    focus,
    dismissError,
  };
});
