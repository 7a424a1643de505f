import type { QuorumscopeApi } from '../shared/protocol';

declare global {
  interface Window {
    /** Present in the desktop app (from the preload); absent in web mode. */
    quorumscope?: QuorumscopeApi;
  }
}

export {};
