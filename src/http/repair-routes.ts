// Repair on demand and anti-entropy status (docs/http.md "Repair"):
//   POST /admin/repair      {partition?, bucket?} → 202 the job (it runs on)
//   GET  /admin/repair/:id  → the job: progress, then its summary
//   GET  /admin/aae         → per partition this node is a primary of: when
//                             it was last compared, with whom, what was repaired
import { z } from 'zod';
import type { AntiEntropyService } from '../node/anti-entropy.js';
import { RepairError, type RepairService } from '../node/repair.js';
import { HttpError, type RouteKit, json } from './route-kit.js';

/** What these routes use of the node. */
export interface RepairRoutesContext {
  readonly id: string;
  readonly repairs: RepairService;
  readonly antiEntropy: Pick<AntiEntropyService, 'primaryPartitions' | 'peersOf' | 'lastComparison'>;
  readonly clusterState: { ring: { owners: readonly string[] } };
}

const repairBody = z
  .object({
    partition: z.number().int().nonnegative().optional(),
    bucket: z.string().min(1).max(255).optional(),
  })
  .strict();

export function registerRepairRoutes({ app, handle, jsonBody }: RouteKit, node: RepairRoutesContext): void {
  app.post('/admin/repair', (res, req) => {
    const body = jsonBody(res, req);
    handle(res, async () => {
      const parsed = repairBody.safeParse(await body());
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new HttpError('BAD_REQUEST', `${issue.path.join('.') || 'body'}: ${issue.message} (body: {"partition"?: integer, "bucket"?: string})`);
      }
      const q = node.clusterState.ring.owners.length;
      if (parsed.data.partition !== undefined && parsed.data.partition >= q) throw new HttpError('BAD_REQUEST', `partition must be below ${q}`);
      try {
        return json(202, node.repairs.start(parsed.data));
      } catch (err) {
        if (err instanceof RepairError) {
          throw new HttpError({ REPAIR_RUNNING: 'REPAIR_RUNNING', NOT_A_PRIMARY: 'BAD_REQUEST', STOPPING: 'NODE_STOPPING' }[err.code], err.message);
        }
        throw err;
      }
    });
  });
  app.get('/admin/repair/:id', (res, req) => {
    const id = req.getParameter(0) ?? '';
    handle(res, async () => {
      const job = node.repairs.get(id);
      if (!job) throw new HttpError('NOT_FOUND', `no repair job '${id}' on this node (a node keeps its last 16)`);
      return json(200, job);
    });
  });
  app.get('/admin/aae', (res) =>
    handle(res, async () => {
      const partitions = node.antiEntropy.primaryPartitions().map((p) => ({
        partition: p,
        peers: node.antiEntropy.peersOf(p),
        last: node.antiEntropy.lastComparison(p) ?? null,
      }));
      // A full pass is complete once every partition was compared; it dates from the oldest comparison.
      const times = partitions.map((p) => p.last?.at ?? null);
      const fullPassAtMs = times.length > 0 && times.every((t) => t !== null) ? Math.min(...(times as number[])) : null;
      return json(200, { node: node.id, partitions, compared: times.filter((t) => t !== null).length, fullPassAtMs });
    }),
  );
}
