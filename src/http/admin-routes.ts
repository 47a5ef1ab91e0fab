// Operator routes that act on the node process rather than the cluster
// (docs/http.md "Admin"): the log level, changed while the node runs.
import { NodeError } from '../node/errors.js';
import { type RouteKit, json } from './route-kit.js';

/** The node's logger as far as its level goes (pino's `level` and `levels.values`); setLevel logs the change. */
export interface LogLevelControl {
  level(): string;
  setLevel(level: string): void;
  /** The levels it knows, e.g. fatal error warn info debug trace silent. */
  levels(): readonly string[];
}

export function registerAdminRoutes(kit: RouteKit, log: LogLevelControl): void {
  const { app } = kit;
  app.get('/admin/log-level', (res) => kit.handle(res, async () => json(200, { level: log.level(), levels: log.levels() })));
  app.post('/admin/log-level', (res, req) => {
    const body = kit.jsonBody(res, req);
    kit.handle(res, async () => {
      const doc = await body();
      for (const field of Object.keys(doc)) {
        if (field !== 'level') throw new NodeError('BAD_REQUEST', `unknown field '${field}' (allowed: level)`);
      }
      const levels = log.levels();
      if (typeof doc.level !== 'string' || !levels.includes(doc.level)) {
        throw new NodeError('BAD_REQUEST', `level must be one of ${levels.join(', ')}`, { levels: [...levels] });
      }
      const previous = log.level();
      log.setLevel(doc.level);
      return json(200, { level: doc.level, previous });
    });
  });
}
