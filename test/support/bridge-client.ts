import { io, type Socket } from 'socket.io-client';
import { bridgeChannels } from '../../src/shared/protocol';

/** Talks to web mode's bridge as the renderer does, to set up profiles without typing. */
export async function connectProfiles(url: string, profiles: Array<{ name: string; endpoints: string[]; token: string }>): Promise<void> {
  const session = new URL(url).hash.replace('#session=', '');
  const socket: Socket = io(url.split('#')[0] ?? url, { auth: { session }, transports: ['websocket'], reconnection: false });
  try {
    for (const profile of profiles) {
      const added = (await socket.timeout(10_000).emitWithAck(bridgeChannels.request, 'profiles:add', profile)) as { ok: boolean; data?: { id: string }; error?: { message: string } };
      if (!added.ok || added.data === undefined) throw new Error(`profiles:add failed: ${added.error?.message}`);
      const connected = (await socket.timeout(10_000).emitWithAck(bridgeChannels.request, 'cluster:connect', { profileId: added.data.id })) as { ok: boolean };
      if (!connected.ok) throw new Error('cluster:connect failed');
    }
  } finally {
    socket.close();
  }
}
