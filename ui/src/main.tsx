// The ringkv dashboard (docs/dashboard.md): polls the node that served it
// (/status, /ring, /metrics) every POLL_MS with the token pasted into the
// page, and shows members, the ring, transfers, hints, anti-entropy and
// request charts; admin actions (join, leave, drain, forget, repair) go to
// /admin/* with the same token, so a token without the admin role is
// refused by the node.
import { render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, getJson, getText, postJson, tokenStore } from './api.js';
import { TimeChart } from './chart.js';
import { MetricsHistory, siblingStats } from './history.js';
import { byLabel, parseScrape, rate, total, type Scrape } from './prom.js';
import { colorsFor, drawRing, geometry, layoutFor, partitionAt } from './ring.js';
import { RepairPanel } from './repair-panel.js';
import { TransferTracker, transferRows, type TransferView } from './transfers.js';
import type { DrainView, MemberView, RingDoc, StatusDoc, TransferSummary } from './types.js';
import './style.css';

const POLL_MS = 1_500;
/** What the page asks of the admin routes that answer only once done, and how long it waits for them. */
const FORGET_TIMEOUT_S = 10;
const DRAIN_TIMEOUT_S = 30;
const WAIT_SLACK_MS = 5_000;

interface Confirmation {
  title: string;
  body: string;
  confirmLabel: string;
  run: () => Promise<void>;
}

interface ActionResult {
  ok: boolean;
  text: string;
}

function App() {
  const [token, setToken] = useState(tokenStore.get());
  const [status, setStatus] = useState<StatusDoc | null>(null);
  const [statusError, setStatusError] = useState<ApiError | null>(null);
  const [lastOkAtMs, setLastOkAtMs] = useState<number | null>(null);
  const [ring, setRing] = useState<RingDoc | null>(null);
  const [metricsError, setMetricsError] = useState<ApiError | null>(null);
  const [transferView, setTransferView] = useState<TransferView | null>(null);
  const [, setPolls] = useState(0);
  const [confirm, setConfirm] = useState<Confirmation | null>(null);
  const [action, setAction] = useState<ActionResult | null>(null);
  const [busy, setBusy] = useState(false);
  const history = useRef(new MetricsHistory());
  const tracker = useRef(new TransferTracker());
  const ringRef = useRef<RingDoc | null>(null);

  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const poll = async (): Promise<void> => {
      const atMs = Date.now();
      const [s, m] = await Promise.allSettled([getJson<StatusDoc>('/status', token), getText('/metrics', token)]);
      if (stopped) return;
      if (s.status === 'fulfilled') {
        const doc = s.value;
        setStatus(doc);
        setStatusError(null);
        setLastOkAtMs(atMs);
        setTransferView(tracker.current.update(transferRows(doc.transfers), atMs));
        // The ring document is Q ids long: fetched again only when its version moved.
        if (ringRef.current?.version !== doc.ring.version) {
          try {
            const r = await getJson<RingDoc>('/ring', token);
            ringRef.current = r;
            if (!stopped) setRing(r);
          } catch {
            // shown from /status's error on the next poll if it persists
          }
        }
      } else {
        setStatusError(asApiError(s.reason));
      }
      if (m.status === 'fulfilled') {
        history.current.add(parseScrape(m.value, atMs));
        setMetricsError(null);
      } else {
        setMetricsError(asApiError(m.reason));
      }
      setPolls((n) => n + 1);
    };
    const loop = async (): Promise<void> => {
      await poll();
      if (!stopped) timer = window.setTimeout(() => void loop(), POLL_MS);
    };
    void loop();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [token]);

  const saveToken = (value: string): void => {
    const trimmed = value.trim();
    if (trimmed === '') tokenStore.clear();
    else tokenStore.set(trimmed);
    setToken(trimmed);
    setAction(null);
  };

  const refused = (what: string, err: ApiError): void => {
    const why = err.status === 403 ? ' — this needs a token with the admin role' : err.status === 401 ? ' — paste a valid token' : '';
    setAction({ ok: false, text: `${what} refused by ${status?.node ?? 'the node'}: ${err.describe()}${why}` });
  };

  /** Runs an admin call; `onError` may take an error over (forget's FORCE_REQUIRED), returning true. */
  const runAction = async <T,>(what: string, call: () => Promise<T>, done: string | ((r: T) => string), onError?: (e: ApiError) => boolean): Promise<void> => {
    setBusy(true);
    setAction(null);
    try {
      const r = await call();
      setAction({ ok: true, text: typeof done === 'string' ? done : done(r) });
    } catch (err) {
      const e = asApiError(err);
      if (!onError?.(e)) refused(what, e);
    } finally {
      setBusy(false);
    }
  };

  const forgetCall = (m: MemberView, force: boolean) => () =>
    postJson<{ forgotten: boolean; partitionsOwned: number }>('/admin/forget', token, { node: m.id, force, timeoutS: FORGET_TIMEOUT_S }, FORGET_TIMEOUT_S * 1000 + WAIT_SLACK_MS);
  const forgotten = (m: MemberView) => (r: { forgotten: boolean; partitionsOwned: number }) =>
    r.forgotten
      ? `${m.id} is forgotten: removed from the member list for good.`
      : `${m.id} is marked left; the claimant has yet to hand its ${r.partitionsOwned} partitions on (forget it again later to remove it).`;

  const askForget = (m: MemberView): void =>
    setConfirm({
      title: `Forget ${m.id}`,
      body: `${m.id} (${m.address}, ${m.status}, ${m.health}) is removed from the member list for good; a running node keeps its own view, so stop it first. If it still owns partitions, the other replicas stream them to their new owners: this moves data.`,
      confirmLabel: `Forget ${m.id}`,
      run: () =>
        runAction(`Forget of ${m.id}`, forgetCall(m, false), forgotten(m), (e) => {
          if (e.code !== 'FORCE_REQUIRED') return false;
          // The node wants force: a second confirmation says why, then the same call with force.
          setConfirm({
            title: `Force: ${m.id} still owns partitions`,
            body: `${status?.node ?? 'The node'} answered: ${e.message}. With force, ${m.id} (${m.partitions} partitions) is marked left at once and its partitions are claimed by the others, streamed from the other replicas; writes it alone holds are lost.`,
            confirmLabel: `Force forget ${m.id}`,
            run: () => runAction(`Forced forget of ${m.id}`, forgetCall(m, true), forgotten(m)),
          });
          return true;
        }),
    });

  const askDrain = (): void =>
    setConfirm({
      title: `Drain ${status?.node ?? 'this node'}`,
      body: `${status?.node ?? 'This node'} stops coordinating client requests (they get 503 NODE_DRAINING and go to other nodes), finishes what is in flight, hands over its pending transfers and delivers its hints; it stays up, drained, until restarted or "Serve again". The page waits up to ${DRAIN_TIMEOUT_S} s.`,
      confirmLabel: 'Drain',
      run: () =>
        runAction(
          `Drain of ${status?.node ?? 'this node'}`,
          () => postJson<DrainView & { hintsDelivered: number }>('/admin/drain', token, { timeoutS: DRAIN_TIMEOUT_S }, DRAIN_TIMEOUT_S * 1000 + WAIT_SLACK_MS),
          (r) =>
            `${status?.node ?? 'The node'} is drained: ${r.hintsDelivered} hints delivered, ${r.hintsLeft} kept, ${r.transfersPending} transfers pending${r.timedOut ? ' (the timeout cut a step short)' : ''}.`,
        ),
    });

  const serveAgain = (): Promise<void> =>
    runAction(`Ending the drain of ${status?.node ?? 'this node'}`, () => postJson('/admin/drain', token, { cancel: true }, DRAIN_TIMEOUT_S * 1000 + WAIT_SLACK_MS), `${status?.node ?? 'The node'} serves client requests again.`);

  const askLeave = (m: MemberView): void =>
    setConfirm({
      title: `${m.id} leaves the cluster`,
      body: `${m.id} (${m.address}) hands its ${m.partitions} partitions to the other members and then stops serving them. This moves data.`,
      confirmLabel: `Leave ${m.id}`,
      run: () => runAction(`Leave of ${m.id}`, () => postJson('/admin/leave', token, { node: m.id }), `${m.id} is leaving: its partitions move to the other members.`),
    });

  const askJoin = (seed: string): void =>
    setConfirm({
      title: `${status?.node ?? 'This node'} joins through ${seed}`,
      body: `This node joins the cluster ${seed} belongs to and is given partitions: data moves to it.`,
      confirmLabel: 'Join',
      run: () => runAction(`Join through ${seed}`, () => postJson('/admin/join', token, { seed }), `Joining through ${seed}.`),
    });

  const scrape = history.current.latest();
  const prevScrape = history.current.previous();
  const unauthorized = statusError !== null && (statusError.status === 401 || statusError.status === 403);
  const unreachable = statusError !== null && !unauthorized;

  return (
    <div class="page">
      <header>
        <div class="brand">
          <span class="logo">◍</span> ringkv
        </div>
        {status && (
          <div class="facts" data-testid="facts">
            <Fact label="cluster" value={status.cluster} />
            <Fact label="node" value={`${status.node} · ${status.address}`} />
            <Fact label="ring" value={`v${status.ring.version} · Q=${status.ring.partitions}`} />
            <Fact label="claimant" value={status.ring.claimant} />
            <Fact label="updated" value={lastOkAtMs ? new Date(lastOkAtMs).toLocaleTimeString() : '—'} />
          </div>
        )}
        <TokenBox token={token} onSave={saveToken} />
      </header>

      {unauthorized && (
        <div class="notice error" data-testid="auth-error">
          {status?.node ?? 'The node'} refused the token — {statusError!.describe()}. Paste a token with at least the read role (an admin makes one with{' '}
          <code>ringkv token create --role read</code>).
        </div>
      )}
      {unreachable && (
        <div class="notice error" data-testid="unreachable">
          {status?.node ?? 'This page\'s node'} is not answering ({statusError!.describe()}){lastOkAtMs ? `; showing what it said at ${new Date(lastOkAtMs).toLocaleTimeString()}` : ''}.
          {status && <OtherDashboards members={status.members.filter((m) => m.id !== status.node && m.status !== 'left')} />}
        </div>
      )}
      {status?.drain && status.drain.state !== 'serving' && <DrainNotice node={status.node} drain={status.drain} busy={busy} onCancel={() => void serveAgain()} />}
      {action && (
        <div class={`notice ${action.ok ? 'ok' : 'error'}`} data-testid="action-result">
          {action.text}
        </div>
      )}

      {status && (
        <>
          <section class="card">
            <h2>
              Members <span class="muted">as {status.node} sees them</span>
            </h2>
            <Members status={status} onLeave={askLeave} onForget={askForget} onDrain={askDrain} busy={busy} />
            {!status.joined && <JoinForm onJoin={askJoin} busy={busy} />}
          </section>

          <div class="grid">
            <section class="card">
              <h2>Ring</h2>
              {ring ? <RingView ring={ring} status={status} transfers={transferView} /> : <p class="muted">loading the ring…</p>}
            </section>
            <div class="stack">
              <section class="card" data-testid="transfers">
                <h2>
                  Transfers <span class="muted">{status.node} is giving</span>
                </h2>
                <Transfers view={transferView} summary={status.transferSummary} scrape={scrape} />
              </section>
              <section class="card" data-testid="hints">
                <h2>Hinted handoff</h2>
                <Hints scrape={scrape} prev={prevScrape} />
              </section>
              <section class="card" data-testid="aae">
                <h2>Anti-entropy</h2>
                <AntiEntropy scrape={scrape} prev={prevScrape} />
                <RepairPanel token={token} busy={busy} onRefused={refused} />
              </section>
            </div>
          </div>

          <section class="card">
            <h2>
              Requests <span class="muted">coordinated by {status.node}, last 5 minutes</span>
            </h2>
            {metricsError ? (
              <div class="notice error" data-testid="metrics-error">
                /metrics: {metricsError.describe()}
              </div>
            ) : (
              <RequestCharts history={history.current} />
            )}
            {scrape && <Siblings scrape={scrape} />}
          </section>
        </>
      )}
      {!status && !statusError && <p class="muted center">connecting…</p>}

      <ConfirmDialog confirmation={confirm} onClose={() => setConfirm(null)} />
    </div>
  );
}

function asApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError(0, 'UNREACHABLE', err instanceof Error ? err.message : String(err));
}

function Fact(props: { label: string; value: string }) {
  return (
    <div class="fact">
      <span class="label">{props.label}</span>
      <span class="value">{props.value}</span>
    </div>
  );
}

function TokenBox(props: { token: string; onSave: (t: string) => void }) {
  const [draft, setDraft] = useState('');
  return (
    <form
      class="token"
      onSubmit={(e) => {
        e.preventDefault();
        props.onSave(draft);
        setDraft('');
      }}
    >
      <input
        type="password"
        name="token"
        autocomplete="off"
        placeholder={props.token ? 'token saved for this tab' : 'paste a token (rkv_…)'}
        value={draft}
        onInput={(e) => setDraft((e.target as HTMLInputElement).value)}
        data-testid="token-input"
      />
      <button type="submit" data-testid="token-save">
        Use token
      </button>
      {props.token && (
        <button type="button" class="quiet" onClick={() => props.onSave('')}>
          Forget
        </button>
      )}
    </form>
  );
}

function OtherDashboards(props: { members: MemberView[] }) {
  if (props.members.length === 0) return null;
  return (
    <span>
      {' '}Other members' dashboards:{' '}
      {props.members.map((m, i) => (
        <>
          {i > 0 && ', '}
          <a href={`${location.protocol}//${m.address}/ui`}>{m.id}</a>
        </>
      ))}{' '}
      (paste the token there again: it is kept per node).
    </span>
  );
}

function healthText(m: MemberView): string {
  if (m.health === 'self') return 'self';
  if (m.health === 'suspect') return m.lastHeardMsAgo === null ? 'suspect (never heard)' : 'suspect';
  return 'up';
}

function DrainNotice(props: { node: string; drain: DrainView; busy: boolean; onCancel: () => void }) {
  const d = props.drain;
  return (
    <div class="notice warn" data-testid="drain-state" data-state={d.state}>
      {props.node} is {d.state}
      {d.state === 'draining' && d.phase ? ` (${d.phase})` : ''}: client requests go to the other nodes; {d.hintsLeft} hints kept, {d.transfersPending} transfers pending
      {d.timedOut ? ', the timeout cut a step short' : ''}.{' '}
      {d.state === 'drained' && (
        <button class="quiet" disabled={props.busy} onClick={props.onCancel} data-testid="drain-cancel">
          Serve again
        </button>
      )}
    </div>
  );
}

function Members(props: { status: StatusDoc; onLeave: (m: MemberView) => void; onForget: (m: MemberView) => void; onDrain: () => void; busy: boolean }) {
  const { status } = props;
  const colors = colorsFor(status.members.map((m) => m.id));
  // Bars relative to the largest owner: at 30 members a share of Q would be a dot.
  const most = Math.max(1, ...status.members.map((m) => m.partitions));
  const members = [...status.members].sort((a, b) => a.id.localeCompare(b.id));
  return (
    <table class="members" data-testid="members">
      <thead>
        <tr>
          <th>member</th>
          <th>address</th>
          <th>zone</th>
          <th>status</th>
          <th>health</th>
          <th class="num">phi</th>
          <th class="num">last heard</th>
          <th>partitions</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {members.map((m) => (
          <tr key={m.id} data-member={m.id} data-health={m.health} data-status={m.status} data-draining={m.draining === true ? 'true' : 'false'} class={`${m.health} ${m.status}`}>
            <td>
              <span class="swatch" style={{ background: colors.get(m.id) }} />
              <strong>{m.id}</strong>
            </td>
            <td class="mono">{m.address}</td>
            <td>{m.zone ?? <span class="muted">—</span>}</td>
            <td>
              <span class={`pill status-${m.status}`} data-testid="member-status">
                {m.status}
              </span>
              {m.draining && (
                <span class="pill draining" data-testid="member-draining">
                  draining
                </span>
              )}
            </td>
            <td>
              <span class={`pill health-${m.health}`} data-testid="member-health">
                {healthText(m)}
              </span>
            </td>
            <td class="num mono">{m.health === 'self' ? '—' : m.phi.toFixed(2)}</td>
            <td class="num mono">{m.health === 'self' ? '—' : m.lastHeardMsAgo === null ? 'never' : `${(m.lastHeardMsAgo / 1000).toFixed(1)} s`}</td>
            <td>
              <div class="share">
                <div class="track">
                  <div class="bar" style={{ width: `${(100 * m.partitions) / most}%`, background: colors.get(m.id) }} />
                </div>
                <span class="mono">{m.partitions}</span>
              </div>
            </td>
            <td class="actions">
              {m.status === 'valid' && (
                <button class="danger" disabled={props.busy} onClick={() => props.onLeave(m)} data-testid={`leave-${m.id}`}>
                  Leave…
                </button>
              )}
              {m.id === status.node
                ? !m.draining &&
                  m.status === 'valid' && (
                    <button class="danger" disabled={props.busy} onClick={props.onDrain} data-testid="drain">
                      Drain…
                    </button>
                  )
                : (
                    <button class="danger" disabled={props.busy} onClick={() => props.onForget(m)} data-testid={`forget-${m.id}`}>
                      Forget…
                    </button>
                  )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function JoinForm(props: { onJoin: (seed: string) => void; busy: boolean }) {
  const [seed, setSeed] = useState('');
  const valid = /^[^\s:]+:\d{1,5}$/.test(seed);
  return (
    <form
      class="join"
      onSubmit={(e) => {
        e.preventDefault();
        if (valid) props.onJoin(seed);
      }}
    >
      <span>This node is not in a cluster yet. Join through a member:</span>
      <input placeholder="host:port" value={seed} onInput={(e) => setSeed((e.target as HTMLInputElement).value)} data-testid="join-seed" />
      <button type="submit" disabled={!valid || props.busy} data-testid="join">
        Join…
      </button>
    </form>
  );
}

const RING_PX = 420;

function RingView(props: { ring: RingDoc; status: StatusDoc; transfers: TransferView | null }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [hover, setHover] = useState<number | null>(null);
  const ids = props.status.members.map((m) => m.id);
  const colors = useMemo(() => colorsFor(ids), [ids.join(',')]);
  const moving = useMemo(() => new Map((props.transfers?.rows ?? []).map((r) => [r.partition, r.to])), [props.transfers]);
  const suspect = new Set(props.status.members.filter((m) => m.health === 'suspect').map((m) => m.id));
  const g = geometry(RING_PX);
  const q = props.ring.owners.length;

  useEffect(() => {
    const el = canvas.current!;
    const dpr = window.devicePixelRatio || 1;
    el.width = RING_PX * dpr;
    el.height = RING_PX * dpr;
    const ctx = el.getContext('2d')!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    drawRing(ctx, { owners: props.ring.owners, colors, moving, suspect, highlight: hover }, g);
  });

  const counts = new Map<string, number>();
  for (const o of props.ring.owners) counts.set(o, (counts.get(o) ?? 0) + 1);
  const owner = hover === null ? undefined : props.ring.owners[hover];
  return (
    <div class="ring">
      <div class="ring-canvas">
        <canvas
          ref={canvas}
          style={{ width: `${RING_PX}px`, height: `${RING_PX}px` }}
          data-testid="ring-canvas"
          data-partitions={q}
          data-moving={moving.size}
          onMouseMove={(e) => {
            const r = (e.target as HTMLCanvasElement).getBoundingClientRect();
            setHover(partitionAt(e.clientX - r.left, e.clientY - r.top, q, g));
          }}
          onMouseLeave={() => setHover(null)}
        />
        <div class="ring-center">
          <div class="big">{q}</div>
          <div class="muted">partitions</div>
          <div class="muted">v{props.ring.version}</div>
          {hover !== null && owner !== undefined && (
            <div class="hover" data-testid="ring-hover">
              #{hover} · {owner}
              {moving.has(hover) ? ` → ${moving.get(hover)}` : ''}
            </div>
          )}
        </div>
      </div>
      <ul class="legend">
        {[...colors.entries()].map(([id, color]) => (
          <li key={id} class={suspect.has(id) ? 'suspect' : ''}>
            <span class="swatch" style={{ background: color }} />
            {id} <span class="muted mono">{counts.get(id) ?? 0}</span>
          </li>
        ))}
        {moving.size > 0 && (
          <li class="note" data-testid="ring-moving">
            <span class="swatch band" /> outer band: {moving.size} partition{moving.size === 1 ? '' : 's'} {props.status.node} is still handing to their new owner
          </li>
        )}
        {layoutFor(q).tracks > 1 && (
          <li class="note">
            {layoutFor(q).spokes} spokes around the ring, {layoutFor(q).tracks} consecutive partitions on each from the inside out; point at one to name it.
          </li>
        )}
      </ul>
    </div>
  );
}

function ProgressBar(props: { value: number; label: string; testId?: string }) {
  const pct = Math.round(Math.max(0, Math.min(1, props.value)) * 100);
  return (
    <div class="progress" data-testid={props.testId} data-progress={pct}>
      <div class="fill" style={{ width: `${pct}%` }} />
      <span>{props.label}</span>
    </div>
  );
}

const perSecond = (v: number | null): string => (v === null ? '—' : `${v >= 100 ? v.toFixed(0) : v.toFixed(1)}/s`);

function duration(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5_400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3_600).toFixed(1)} h`;
}

/** /status `transferSummary`: what moved since the node started, the recent rate and the time left. */
function TransferFigures(props: { summary: TransferSummary | undefined }) {
  const t = props.summary;
  if (!t) return null;
  const eta = t.etaSeconds === null ? (t.sending + t.receiving > 0 ? 'unknown (no progress lately)' : '—') : t.etaSeconds === 0 ? 'done' : duration(t.etaSeconds);
  return (
    <div class="kpis" data-testid="transfer-summary">
      <Kpi label="sending / receiving" value={`${t.sending} / ${t.receiving}`} />
      <Kpi label="objects moved" value={String(t.moved.objects)} testId="transfer-moved" />
      <Kpi label="rate" value={t.rate === null ? '—' : perSecond(t.rate.objectsPerSec)} />
      <Kpi label="objects left" value={t.remainingObjects === null ? '—' : String(t.remainingObjects)} />
      <Kpi label="ETA" value={eta} testId="transfer-eta" />
    </div>
  );
}

function Transfers(props: { view: TransferView | null; summary: TransferSummary | undefined; scrape: Scrape | undefined }) {
  const v = props.view;
  const extra = props.scrape ? unknownMetrics(props.scrape, /^ringkv_transfer/) : [];
  if (v === null || v.planned === 0) {
    return (
      <>
        <p class="muted" data-testid="transfers-idle">
          No partition is being handed over by this node{props.summary && props.summary.receiving > 0 ? `; it is receiving ${props.summary.receiving}` : ''}.
        </p>
        <TransferFigures summary={props.summary} />
        <MetricList items={extra} />
      </>
    );
  }
  return (
    <div data-testid="transfers-active">
      <ProgressBar value={v.progress} label={`${v.done} of ${v.planned} partitions done · ${perSecond(props.summary?.rate?.objectsPerSec ?? v.objectsPerS)} objects`} testId="transfer-progress" />
      <TransferFigures summary={props.summary} />
      <table class="compact">
        <thead>
          <tr>
            <th>to</th>
            <th>partitions</th>
            <th class="num">objects sent</th>
            <th class="num">rate</th>
          </tr>
        </thead>
        <tbody>
          {v.targets.map((t) => (
            <tr key={t.to} data-target={t.to}>
              <td>
                <strong>{t.to}</strong>
              </td>
              <td>
                <ProgressBar value={t.progress} label={`${t.done}/${t.planned}`} />
              </td>
              <td class="num mono">{t.sent}</td>
              <td class="num mono">{perSecond(t.objectsPerS)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {v.rows.length > 0 && (
        <p class="muted small">
          pending:{' '}
          {v.rows
            .slice(0, 8)
            .map((r) => `#${r.partition}→${r.to} (pass ${r.pass}/3, ${r.sent} sent)`)
            .join(', ')}
          {v.rows.length > 8 ? ` … and ${v.rows.length - 8} more` : ''}
        </p>
      )}
      <MetricList items={extra} />
    </div>
  );
}

/** Labels a per-target metric may carry (the other side of hinted handoff). */
const TARGET_LABELS = ['target', 'to', 'peer', 'for'];

function Hints(props: { scrape: Scrape | undefined; prev: Scrape | undefined }) {
  const s = props.scrape;
  if (!s) return <p class="muted">waiting for /metrics…</p>;
  const pending = total(s, 'ringkv_hints_pending');
  const byTarget =
    [byLabel(s, 'ringkv_hints_pending_by_target', 'target'), ...TARGET_LABELS.map((l) => byLabel(s, 'ringkv_hints_pending', l))].find((m) => m.size > 0) ??
    new Map<string, number>();
  const stored = props.prev ? rate(props.prev, s, 'ringkv_hints_stored_total') : null;
  const delivered = props.prev ? rate(props.prev, s, 'ringkv_hints_delivered_total') : null;
  return (
    <>
      <div class="kpis">
        <Kpi label="hints waiting" value={pending === null ? 'n/a' : String(pending)} testId="hints-pending" />
        <Kpi label="stored" value={perSecond(stored)} />
        <Kpi label="delivered" value={perSecond(delivered)} />
      </div>
      {byTarget.size > 0 ? (
        <table class="compact">
          <tbody>
            {[...byTarget.entries()].sort().map(([target, n]) => (
              <tr key={target} data-testid="hints-target" data-target={target} data-pending={n}>
                <td>for {target}</td>
                <td class="num mono">{n}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p class="muted small">{pending ? 'this node does not export hints per target' : 'no hint waiting'}</p>
      )}
      <MetricList items={unknownMetrics(s, /^ringkv_hint/)} />
    </>
  );
}

function AntiEntropy(props: { scrape: Scrape | undefined; prev: Scrape | undefined }) {
  const s = props.scrape;
  if (!s) return <p class="muted">waiting for /metrics…</p>;
  const outcome = (o: string) => total(s, 'ringkv_aae_exchanges_total', (l) => l.outcome === o);
  const exchangeRate = props.prev ? rate(props.prev, s, 'ringkv_aae_exchanges_total') : null;
  const repaired = total(s, 'ringkv_aae_keys_repaired_total');
  if (total(s, 'ringkv_aae_exchanges_total') === null) return <p class="muted">this node exports no anti-entropy metrics</p>;
  const passTotal = total(s, 'ringkv_aae_pass_partitions', (l) => l.state === 'total');
  const passCompared = total(s, 'ringkv_aae_pass_partitions', (l) => l.state === 'compared');
  const lastPass = total(s, 'ringkv_aae_last_full_pass_timestamp_seconds');
  const passes = total(s, 'ringkv_aae_full_passes_total');
  const compared = total(s, 'ringkv_aae_partitions_compared_total');
  return (
    <>
      {passTotal !== null && passCompared !== null && (
        <ProgressBar
          value={passTotal > 0 ? passCompared / passTotal : 1}
          label={`this pass: ${passCompared} of ${passTotal} partitions compared`}
          testId="aae-pass"
        />
      )}
      <div class="kpis">
        {lastPass !== null && (
          <Kpi label="last full pass" value={lastPass > 0 ? `${duration(Math.max(0, s.atMs / 1000 - lastPass))} ago` : 'never'} testId="aae-last-pass" />
        )}
        {passes !== null && <Kpi label="full passes" value={String(passes)} />}
        {compared !== null && <Kpi label="compared since start" value={String(compared)} />}
        <Kpi label="exchanges" value={perSecond(exchangeRate)} />
        <Kpi label="in sync" value={String(outcome('in_sync') ?? 0)} />
        <Kpi label="diverged" value={String(outcome('diverged') ?? 0)} />
        <Kpi label="failed" value={String(outcome('failed') ?? 0)} />
        <Kpi label="keys repaired" value={String(repaired ?? 0)} testId="aae-repaired" />
      </div>
      <MetricList items={unknownMetrics(s, /^ringkv_aae_/)} />
    </>
  );
}

function Siblings(props: { scrape: Scrape }) {
  const stats = siblingStats(props.scrape);
  if (stats === null) return null;
  return (
    <div class="kpis siblings" data-testid="siblings">
      <Kpi label="reads (since start)" value={String(stats.reads)} />
      <Kpi label="siblings per read" value={stats.meanSiblings === null ? '—' : stats.meanSiblings.toFixed(2)} />
      <Kpi label="reads with siblings" value={stats.conflictedShare === null ? '—' : `${(stats.conflictedShare * 100).toFixed(1)}%`} />
    </div>
  );
}

function Kpi(props: { label: string; value: string; testId?: string }) {
  return (
    <div class="kpi" data-testid={props.testId}>
      <div class="value mono">{props.value}</div>
      <div class="label">{props.label}</div>
    </div>
  );
}

/** Metrics the panels above already show by name. */
const KNOWN = new Set([
  'ringkv_hints_pending',
  'ringkv_hints_stored_total',
  'ringkv_hints_delivered_total',
  'ringkv_aae_exchanges_total',
  'ringkv_aae_keys_repaired_total',
  'ringkv_aae_bytes_total',
  'ringkv_aae_repair_failures_total',
  'ringkv_transfer_reads_total',
  'ringkv_hints_pending_by_target',
  'ringkv_aae_pass_partitions',
  'ringkv_aae_last_full_pass_timestamp_seconds',
  'ringkv_aae_full_passes_total',
  'ringkv_aae_partitions_compared_total',
  'ringkv_transfer_partitions_pending',
  'ringkv_transfer_objects_total',
  'ringkv_transfer_bytes_total',
  'ringkv_transfer_partitions_total',
]);

interface MetricItem {
  name: string;
  help: string;
  text: string;
}

/** Metrics matching `pattern` this page has no panel for (newer nodes export more): shown by name, summed, timestamps as ages. */
function unknownMetrics(s: Scrape, pattern: RegExp): MetricItem[] {
  const out: MetricItem[] = [];
  for (const [name, samples] of s.samples) {
    if (!pattern.test(name) || KNOWN.has(name) || samples.length === 0) continue;
    const sum = samples.reduce((a, x) => a + x.value, 0);
    const text = /timestamp_seconds$/.test(name)
      ? sum > 0
        ? `${Math.max(0, Math.round(s.atMs / 1000 - Math.max(...samples.map((x) => x.value))))} s ago`
        : 'never'
      : String(Math.round(sum * 100) / 100);
    out.push({ name, help: s.help.get(name) ?? '', text });
  }
  return out;
}

function MetricList(props: { items: MetricItem[] }) {
  if (props.items.length === 0) return null;
  return (
    <table class="compact metrics">
      <tbody>
        {props.items.map((i) => (
          <tr key={i.name} title={i.help}>
            <td class="mono small">{i.name.replace(/^ringkv_/, '')}</td>
            <td class="num mono">{i.text}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const OP_COLORS = ['#5cc8ff', '#7ee081', '#ffb454', '#c792ea', '#f78c6c', '#89ddff'];

function RequestCharts(props: { history: MetricsHistory }) {
  const points = props.history.series();
  const xs = points.map((p) => p.t);
  const ops = props.history.ops();
  return (
    <div class="charts">
      <TimeChart
        title="requests per second"
        unit=""
        testId="chart-rate"
        xs={xs}
        series={[
          ...ops.map((op, i) => ({ label: op, color: OP_COLORS[i % OP_COLORS.length]!, values: points.map((p) => p.rateByOp[op] ?? null) })),
          { label: 'errors', color: '#ff5370', values: points.map((p) => p.errorsPerS) },
        ]}
      />
      <TimeChart
        title="latency (all operations)"
        unit=" ms"
        testId="chart-latency"
        xs={xs}
        series={[
          { label: 'p50', color: '#7ee081', values: points.map((p) => p.p50Ms) },
          { label: 'p95', color: '#ffb454', values: points.map((p) => p.p95Ms) },
          { label: 'p99', color: '#ff5370', values: points.map((p) => p.p99Ms) },
        ]}
      />
    </div>
  );
}

function ConfirmDialog(props: { confirmation: Confirmation | null; onClose: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const el = dialog.current!;
    if (props.confirmation && !el.open) el.showModal();
    if (!props.confirmation && el.open) el.close();
  }, [props.confirmation]);
  const c = props.confirmation;
  return (
    <dialog ref={dialog} onClose={props.onClose} data-testid="confirm">
      {c && (
        <form method="dialog">
          <h3>{c.title}</h3>
          <p>{c.body}</p>
          <div class="buttons">
            <button value="cancel" class="quiet" data-testid="confirm-cancel">
              Cancel
            </button>
            <button
              value="ok"
              class="danger"
              data-testid="confirm-ok"
              onClick={() => {
                void c.run();
              }}
            >
              {c.confirmLabel}
            </button>
          </div>
        </form>
      )}
    </dialog>
  );
}

render(<App />, document.getElementById('app')!);
