import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import type { AppInfo, ClusterSummary, ErrorInfo, HubSnapshot, ProfileInput, ProfileSummary, QuorumscopeApi } from '../../../shared/protocol';

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

  async function connect(profileId: string): Promise<ErrorInfo | null> {
    if (bridge === null) return { code: 'no_bridge', message: 'not connected to the hub' };
    const answer = await bridge.request('cluster:connect', { profileId });
    return answer.ok ? null : answer.error;
  }

  async function remove(profileId: string): Promise<void> {
    if (bridge === null) return;
    const answer = await bridge.request('profiles:remove', { id: profileId });
    if (answer.ok) profiles.value = profiles.value.filter((profile) => profile.id !== profileId);
    else lastError.value = answer.error;
  }

  return { info, profiles, snapshot, clusters, lastError, bridgeReady, attach, detach, addAndConnect, connect, remove };
});
