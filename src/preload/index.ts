/**
 * The preload exposes one narrow, typed API and nothing else: never
 * ipcRenderer, never a raw IPC event. Snapshot listeners receive the payload
 * only, so the renderer cannot reach the sender object behind it.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { bridgeChannels } from '../shared/protocol/channels';
import type { AppCommand, HubSnapshot, QuorumscopeApi } from '../shared/protocol/bridge';

const api: QuorumscopeApi = {
  request: (name, arg) => ipcRenderer.invoke(bridgeChannels.request, name, arg),
  onSnapshot: (listener) => {
    const forward = (_event: IpcRendererEvent, snapshot: HubSnapshot) => listener(snapshot);
    ipcRenderer.on(bridgeChannels.snapshot, forward);
    return () => {
      ipcRenderer.removeListener(bridgeChannels.snapshot, forward);
    };
  },
  onCommand: (listener) => {
    const forward = (_event: IpcRendererEvent, command: AppCommand) => listener(command);
    ipcRenderer.on(bridgeChannels.command, forward);
    return () => {
      ipcRenderer.removeListener(bridgeChannels.command, forward);
    };
  },
};

contextBridge.exposeInMainWorld('quorumscope', Object.freeze(api));
