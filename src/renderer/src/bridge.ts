import { io, type Socket } from 'socket.io-client';
import {
  bridgeChannels,
  err,
  type BridgeRequestArg,
  type BridgeRequestName,
  type BridgeResponses,
  type HubSnapshot,
  type QuorumscopeApi,
  type Result,
} from '../../shared/protocol';

const sessionKey = 'quorumscope.session';
const requestTimeoutMs = 15_000;

/**
 * Web mode's bridge: the same API as the preload's, carried over socket.io.
 * The session token arrives in the URL fragment; it is moved to session
 * storage and removed from the address bar so it is not bookmarked or shared.
 */
function createWebApi(): QuorumscopeApi {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const fromUrl = fragment.get('session');
  if (fromUrl !== null) {
    sessionStorage.setItem(sessionKey, fromUrl);
    history.replaceState(null, '', window.location.pathname + window.location.search);
  }
  const socket: Socket = io({ auth: { session: sessionStorage.getItem(sessionKey) ?? '' }, transports: ['websocket'] });
  // A refused handshake is final (socket.io does not retry it): answer every request with it at once.
  let refuse: (reason: string) => void = () => {};
  const refused = new Promise<string>((resolve) => {
    refuse = resolve;
  });
  socket.on('connect_error', (error) => {
    if (!socket.active) refuse(error.message);
  });
  return {
    request<N extends BridgeRequestName>(name: N, arg: BridgeRequestArg<N>): Promise<Result<BridgeResponses[N]>> {
      const answered = socket
        .timeout(requestTimeoutMs)
        .emitWithAck(bridgeChannels.request, name, arg)
        .then(
          (answer: Result<BridgeResponses[N]>) => answer,
          () => err('timeout', `${name}: the hub did not answer within ${requestTimeoutMs / 1000} s`),
        );
      return Promise.race([answered, refused.then((reason) => err('unauthorized', reason))]);
    },
    onSnapshot(listener: (snapshot: HubSnapshot) => void) {
      socket.on(bridgeChannels.snapshot, listener);
      return () => {
        socket.off(bridgeChannels.snapshot, listener);
      };
    },
    // Web mode has no application menu: nothing ever arrives here.
    onCommand: () => () => {},
  };
}

/** The renderer's one way to the hub; it does not know which transport it has. */
export function connectBridge(): QuorumscopeApi {
  return window.quorumscope ?? createWebApi();
}
