// The one place uWebSockets.js is loaded. Everything else in ringkv imports
// uWS (value and types) from here.
//
// The package we depend on under the name "uWebSockets.js" is
// @trufflesuite/uws-js-unofficial. Its loader (node_modules/uWebSockets.js/
// src/uws.js) requires `binaries/uws_<platform>_<arch>_<abi>.node`, and if
// that throws (or UWS_USE_FALLBACK is set) it prints a warning and silently
// returns `dist/index.js`: a slow emulation built on `ws` and node:http.
// `assertNativeUws()` detects that; call it at start-up and refuse to run.
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import type * as UWS from 'uWebSockets.js';

export type {
  TemplatedApp,
  WebSocket as UwsWebSocket,
  WebSocketBehavior,
  HttpRequest,
  HttpResponse,
  us_listen_socket,
  us_socket_context_t,
} from 'uWebSockets.js';

const require = createRequire(import.meta.url);

/** The uWebSockets.js module (native build if `uwsNativeStatus().native`). */
export const uWS: typeof UWS = require('uWebSockets.js') as typeof UWS;

export interface UwsNativeStatus {
  native: boolean;
  /** The loaded file (a `.node` binary when native), if it could be found. */
  file?: string;
  /** Why it is not native. */
  reason?: string;
}

let cached: UwsNativeStatus | undefined;

/**
 * Tells whether uWS loaded its native binary. Two independent checks:
 *  1. the module object is the exports of a `.node` file in require.cache
 *     (the fallback's is `dist/index.js`), not counting the loader itself;
 *  2. `App` is a native function (the fallback's `App` is plain JS, and the
 *     fallback lacks native-only exports such as `getParts`).
 */
export function uwsNativeStatus(): UwsNativeStatus {
  if (cached) return cached;
  // The loader (src/uws.js) re-exports what it loaded, so two cache entries
  // share the exports: the loader and the binary (or the fallback's index).
  const loader = require.resolve('uWebSockets.js');
  let file: string | undefined;
  for (const [path, mod] of Object.entries(require.cache)) {
    if (!mod || mod.exports !== uWS || path === loader) continue;
    if (file === undefined || path.endsWith('.node')) file = path;
  }
  const appSource = typeof uWS.App === 'function' ? Function.prototype.toString.call(uWS.App) : '';
  const nativeApp = appSource.includes('[native code]');
  const hasNativeOnly = typeof (uWS as { getParts?: unknown }).getParts === 'function';
  const fileIsNative = file !== undefined && file.endsWith('.node');
  let reason: string | undefined;
  if (!fileIsNative) {
    reason = file
      ? `uWebSockets.js loaded its JavaScript fallback (${file}) instead of a native binary`
      : 'uWebSockets.js native binary not found in the module cache';
  } else if (!nativeApp || !hasNativeOnly) {
    reason = 'uWebSockets.js App is not a native function';
  }
  if (reason) {
    const env = process.env.UWS_USE_FALLBACK;
    if (env) reason += ` (UWS_USE_FALLBACK=${env})`;
    reason +=
      `; no native build for ${process.platform}-${process.arch} ABI ${process.versions.modules}` +
      ' loaded (see the warning uWebSockets.js printed on stderr)';
  }
  cached = reason ? { native: false, file, reason } : { native: true, file };
  return cached;
}

/** Throws if uWebSockets.js fell back to its slow JavaScript emulation. */
export function assertNativeUws(): void {
  const s = uwsNativeStatus();
  if (!s.native) {
    throw new Error(`ringkv refuses to start: ${s.reason ?? 'uWebSockets.js is not native'}`);
  }
}

/** Why a listen failed, with the errno name when the kernel gave one (EADDRINUSE, EADDRNOTAVAIL, EACCES). */
export class ListenError extends Error {
  override readonly name = 'ListenError';
  constructor(
    readonly host: string,
    readonly port: number,
    /** The errno name from a probe bind, if it failed too. */
    readonly errno: string | undefined,
  ) {
    super(`cannot listen on ${formatHostPort(host, port)}: ${describeErrno(errno)}`);
  }
}

function describeErrno(errno: string | undefined): string {
  switch (errno) {
    case 'EADDRINUSE':
      return 'address already in use (another ringkv node or another program is listening there)';
    case 'EADDRNOTAVAIL':
      return 'address not available (no interface of this host has it)';
    case 'EACCES':
      return 'permission denied (ports below 1024 need privileges)';
    case undefined:
      return 'uWebSockets.js could not listen';
    default:
      return errno;
  }
}

export function formatHostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * Listens on host:port WITHOUT SO_REUSEPORT. By default uSockets sets
 * SO_REUSEPORT, so a second node started on the same address listens too and
 * the kernel splits connections between the two (issue 11). With
 * LIBUS_LISTEN_EXCLUSIVE_PORT the bind fails when anything already listens
 * there (also a wildcard listener on the same port). uWS only says "false";
 * a probe bind with node:net then names the cause.
 */
export function listenExclusive(app: UWS.TemplatedApp, host: string, port: number): Promise<{ socket: UWS.us_listen_socket; port: number }> {
  return new Promise((resolve, reject) => {
    // The typings list (port, options, cb) only; the native listen takes (host, port, options, cb) too.
    const listen = app.listen as unknown as (
      host: string,
      port: number,
      options: number,
      cb: (socket: UWS.us_listen_socket | false) => void,
    ) => UWS.TemplatedApp;
    const exclusive = (uWS as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT?: unknown }).LIBUS_LISTEN_EXCLUSIVE_PORT;
    // Without the flag the listen would silently share the port again.
    if (typeof exclusive !== 'number') throw new Error('this uWebSockets.js build has no LIBUS_LISTEN_EXCLUSIVE_PORT');
    listen.call(app, host, port, exclusive, (socket) => {
      if (socket) {
        resolve({ socket, port: uWS.us_socket_local_port(socket as never) });
        return;
      }
      probeBind(host, port).then((errno) => reject(new ListenError(host, port, errno)), reject);
    });
  });
}

/** Binds host:port with node:net and closes at once: the errno name if that fails too. */
function probeBind(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}
