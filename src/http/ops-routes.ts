// Operator routes (docs/cluster.md "Drain", "Forget", "Replace"):
// POST /admin/drain, /admin/forget and /admin/replace. Registered from
// registerApi (src/http/api.ts), which hands over its request plumbing.
import type { DrainReport } from '../node/drain.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from '../transport/uws.js';

/** What the server lets these routes do beside the node: drain it, and what follows the drain. */
export interface OpsHooks {
  /** Drains the node; with `exit`, the server stops (and its process exits 0) once the answer is sent. */
  drain(opts: { exit: boolean; timeoutMs: number }): Promise<DrainReport>;
  /** Ends a finished drain without a restart: the node coordinates client requests again. */
  cancelDrain(): Promise<DrainReport>;
}

/** The node's operations these routes call (RingkvNode has them). */
export interface OpsNode {
  forget(id: string, force: boolean, timeoutMs: number): Promise<{ forgotten: boolean; partitions: number }>;
  replace(dead: string, replacement: string, force: boolean, timeoutMs: number): Promise<{ replaced: boolean; partitions: number }>;
}

/** registerApi's plumbing, so these routes answer, read bodies and fail exactly as the others do. */
export interface RouteKit<Reply> {
  handle(res: HttpResponse, run: () => Promise<Reply>): void;
  /** Reads a JSON object body (empty: {}); call inside `handle`'s run, with the length read before it. */
  readJson(res: HttpResponse, declared: number): Promise<Record<string, unknown>>;
  bodyLength(req: HttpRequest): number;
  json(status: number, doc: unknown): Reply;
  /** A 400 BAD_REQUEST error to throw. */
  badRequest(message: string): Error;
}

/** Longest a drain, forget or replace request waits (s). */
export const MAX_OPS_TIMEOUT_S = 3_600;
const DEFAULT_DRAIN_TIMEOUT_S = 60;
const DEFAULT_MEMBERSHIP_TIMEOUT_S = 30;

export function registerOpsRoutes<Reply>(app: TemplatedApp, node: OpsNode, hooks: OpsHooks | undefined, kit: RouteKit<Reply>): void {
  const fields = (body: Record<string, unknown>, allowed: string[]): void => {
    for (const f of Object.keys(body)) if (!allowed.includes(f)) throw kit.badRequest(`unknown field '${f}' (allowed: ${allowed.join(', ')})`);
  };
  const flag = (body: Record<string, unknown>, name: string): boolean => {
    const v = body[name] ?? false;
    if (typeof v !== 'boolean') throw kit.badRequest(`${name} must be true or false`);
    return v;
  };
  const timeoutMs = (body: Record<string, unknown>, fallbackS: number): number => {
    const v = body.timeoutS ?? fallbackS;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_OPS_TIMEOUT_S) throw kit.badRequest(`timeoutS must be an integer in 0..${MAX_OPS_TIMEOUT_S}`);
    return v * 1000;
  };
  const nodeId = (body: Record<string, unknown>, name: string): string => {
    const v = body[name];
    if (typeof v !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(v)) throw kit.badRequest(`${name} must be a node id ([A-Za-z0-9._-]{1,64})`);
    return v;
  };

  app.post('/admin/drain', (res, req) => {
    const declared = kit.bodyLength(req);
    kit.handle(res, async () => {
      const body = await kit.readJson(res, declared);
      fields(body, ['exit', 'cancel', 'timeoutS']);
      if (hooks === undefined) throw kit.badRequest('this server cannot drain (no drain hooks)');
      if (flag(body, 'cancel')) {
        if (flag(body, 'exit')) throw kit.badRequest('cancel and exit exclude each other');
        return kit.json(200, await hooks.cancelDrain());
      }
      return kit.json(200, await hooks.drain({ exit: flag(body, 'exit'), timeoutMs: timeoutMs(body, DEFAULT_DRAIN_TIMEOUT_S) }));
    });
  });

  app.post('/admin/forget', (res, req) => {
    const declared = kit.bodyLength(req);
    kit.handle(res, async () => {
      const body = await kit.readJson(res, declared);
      fields(body, ['node', 'force', 'timeoutS']);
      const id = nodeId(body, 'node');
      const done = await node.forget(id, flag(body, 'force'), timeoutMs(body, DEFAULT_MEMBERSHIP_TIMEOUT_S));
      // 202: marked 'left', still waiting for the claimant to hand its partitions on (run it again).
      return kit.json(done.forgotten ? 200 : 202, { node: id, forgotten: done.forgotten, partitionsOwned: done.partitions });
    });
  });

  app.post('/admin/replace', (res, req) => {
    const declared = kit.bodyLength(req);
    kit.handle(res, async () => {
      const body = await kit.readJson(res, declared);
      fields(body, ['dead', 'replacement', 'force', 'timeoutS']);
      const dead = nodeId(body, 'dead');
      const replacement = nodeId(body, 'replacement');
      const done = await node.replace(dead, replacement, flag(body, 'force'), timeoutMs(body, DEFAULT_MEMBERSHIP_TIMEOUT_S));
      return kit.json(done.replaced ? 200 : 202, { dead, replacement, replaced: done.replaced, partitions: done.partitions });
    });
  });
}
