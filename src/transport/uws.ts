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
