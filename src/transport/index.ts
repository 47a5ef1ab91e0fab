// Peer messaging: the Transport interface, the real uWS/ws implementation
// and the simulated network.
export * from './types.js';
export * from './frames.js';
export { HOT_MARKER, HOT_VERSION } from './hot-codec.js';
export * from './peer-auth.js';
export { uWS, assertNativeUws, uwsNativeStatus } from './uws.js';
export type { UwsNativeStatus, TemplatedApp, UwsWebSocket, HttpRequest, HttpResponse, us_listen_socket } from './uws.js';
export * from './ws-transport.js';
export * from './sim-transport.js';
