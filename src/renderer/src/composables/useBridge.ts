import { inject, type InjectionKey } from 'vue';
import type { QuorumscopeApi } from '../../../shared/protocol';

export const bridgeKey: InjectionKey<QuorumscopeApi> = Symbol('quorumscope-bridge');

export function useBridge(): QuorumscopeApi {
  const bridge = inject(bridgeKey);
  if (bridge === undefined) throw new Error('useBridge() needs the bridge provided at app start');
  return bridge;
}
