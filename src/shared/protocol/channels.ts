/**
 * IPC and socket.io channel names; the only ones the bridge uses. Kept free of
 * imports so the sandboxed preload bundles nothing else.
 */
export const bridgeChannels = {
  request: 'bridge:request',
  snapshot: 'bridge:snapshot',
  command: 'bridge:command',
} as const;
