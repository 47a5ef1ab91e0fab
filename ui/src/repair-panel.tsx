// Repair on demand from the page (docs/cluster.md "Repair on demand"):
// POST /admin/repair starts a job on this node (every partition it is a
// primary of, or one), then GET /admin/repair/:id is polled until the job
// is no longer running, and its summary is shown. A refusal (a token
// without the admin role, a partition this node is no primary of, a job
// already running) goes to the page's action line.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, getJson, postJson } from './api.js';
import type { RepairJobView } from './types.js';

const JOB_POLL_MS = 500;

export function RepairPanel(props: { token: string; busy: boolean; onRefused: (what: string, err: ApiError) => void }) {
  const [partition, setPartition] = useState('');
  const [job, setJob] = useState<RepairJobView | null>(null);
  const [starting, setStarting] = useState(false);
  const running = job?.state === 'running';
  const partitionValid = partition.trim() === '' || /^\d{1,5}$/.test(partition.trim());

  // Polls the running job until it is done or failed (or the page changes token).
  useEffect(() => {
    if (!running || job === null) return;
    let stopped = false;
    const timer = window.setTimeout(async () => {
      try {
        const next = await getJson<RepairJobView>(`/admin/repair/${encodeURIComponent(job.id)}`, props.token);
        if (!stopped) setJob(next);
      } catch (err) {
        if (!stopped) {
          props.onRefused(`Progress of repair ${job.id}`, err instanceof ApiError ? err : new ApiError(0, 'UNREACHABLE', String(err)));
          setJob({ ...job, state: 'unknown' });
        }
      }
    }, JOB_POLL_MS);
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [job, props.token]);

  const start = async (): Promise<void> => {
    setStarting(true);
    try {
      const body = partition.trim() === '' ? {} : { partition: Number(partition.trim()) };
      setJob(await postJson<RepairJobView>('/admin/repair', props.token, body));
    } catch (err) {
      props.onRefused('Repair', err instanceof ApiError ? err : new ApiError(0, 'UNREACHABLE', String(err)));
    } finally {
      setStarting(false);
    }
  };

  return (
    <div class="repair">
      <form
        class="join"
        onSubmit={(e) => {
          e.preventDefault();
          if (partitionValid && !running) void start();
        }}
      >
        <span>Repair now:</span>
        <input placeholder="partition (empty: all)" value={partition} onInput={(e) => setPartition((e.target as HTMLInputElement).value)} data-testid="repair-partition" />
        <button type="submit" disabled={!partitionValid || running || starting || props.busy} data-testid="repair">
          Repair
        </button>
      </form>
      {job && <RepairJobLine job={job} />}
    </div>
  );
}

function RepairJobLine(props: { job: RepairJobView }) {
  const j = props.job;
  const scope = j.request.partition === undefined ? 'every partition this node is a primary of' : `partition ${j.request.partition}`;
  const pct = j.partitions.total > 0 ? Math.round((100 * j.partitions.compared) / j.partitions.total) : 100;
  if (j.state === 'running') {
    return (
      <div class="progress" data-testid="repair-progress" data-progress={pct} data-job={j.id}>
        <div class="fill" style={{ width: `${pct}%` }} />
        <span>
          repair {j.id} ({scope}): {j.partitions.compared} of {j.partitions.total} partitions compared{j.current !== null ? `, now #${j.current}` : ''}
        </span>
      </div>
    );
  }
  const failed = j.failedExchanges + j.failedKeys > 0 || j.state !== 'done';
  return (
    <p class={`small ${failed ? 'error-text' : ''}`} data-testid="repair-summary" data-job={j.id} data-state={j.state}>
      repair {j.id} {j.state} ({scope}): {j.partitions.compared} of {j.partitions.total} partitions compared, {j.inSync} pairs in sync, {j.diverged} differed,{' '}
      {j.keysDiffered} keys differed, repaired {j.keysRepaired.local} here and {j.keysRepaired.remote} on peers
      {j.failedExchanges > 0 ? `, ${j.failedExchanges} exchanges failed (run it again when the peers answer)` : ''}
      {j.failedKeys > 0 ? `, ${j.failedKeys} keys failed to repair` : ''}
      {j.error ? ` — ${j.error}` : ''}
    </p>
  );
}
