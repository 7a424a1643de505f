export { PeerTransport, transportLimitsDefault, type PeerAddress, type PeerStats, type PeerTransportOptions, type TransportLimits, type TransportStats } from './peer-transport';
export { checkMsgpack, decodeFrameBody, encodeFrame, FrameReader, FrameType, peerProtocolVersion, type Hello } from './frame';
