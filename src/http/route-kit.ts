// What every route of the HTTP API is built from: a reply as data, the error
// a handler throws for a bad request, and the kit registerApi hands to route
// modules in their own files (src/http/*-routes.ts) so they need not import
// the API module that registers them.
import type { HttpRequest, HttpResponse, TemplatedApp } from '../transport/uws.js';

/** A handler's error with a code of STATUS_OF_ERROR (src/http/wire.ts); `details` join the JSON body. */
export class HttpError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Close the connection after this answer. */
  close?: boolean;
}

export const json = (status: number, doc: unknown, headers: Record<string, string> = {}): Reply => ({
  status,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(doc),
});

export interface RouteKit {
  /** The app with the access check in front (ROUTE_ACCESS in src/http/auth.ts names every route). */
  app: TemplatedApp;
  /** Runs a handler and writes its reply or its error as JSON (in-flight counting, stopping, ring version header). */
  handle(res: HttpResponse, run: () => Promise<Reply>): void;
  /**
   * The request's body as a JSON object (an empty body is `{}`), within the
   * API's JSON size limit. Call it in the uWS handler itself (the request
   * lives only that long); await what it returns inside `handle`.
   */
  jsonBody(res: HttpResponse, req: HttpRequest): () => Promise<Record<string, unknown>>;
}
