// The dashboard in a real browser (Debian's Chromium, headless, through
// playwright-core) against a real cluster of `ringkv start` processes with
// tokens on: the page loads and shows three members; a member killed with
// SIGKILL turns suspect within 10 s and up again after its restart; a 4th
// node joining shows transfers with progress; with a member down, the hints
// this node keeps for it show per target and go once it is back; leave and
// forget from the page are refused for a read-only token (the page says so)
// and work for an admin token (forget of a member that still owns partitions
// after a second confirmation, with force); a repair started from the page
// runs to its end and shows its summary.
// Everything the page loads comes from the node that served it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { chromiumMissing, launchChromium } from './browser.js';
import { DashboardCluster } from './processes.js';

const missing = chromiumMissing();
if (missing !== null && process.env.CI === 'true') throw new Error(`the dashboard tests need Chromium under CI: ${missing}`);
if (missing !== null) console.warn(`skipping the dashboard browser tests: ${missing}`);

describe.skipIf(missing !== null)('dashboard in Chromium against 3 ringkv processes', () => {
  let cluster: DashboardCluster;
  let browser: Browser;
  let page: Page;
  let admin = '';
  let reader = '';
  /** Every URL the page requested, and what the browser's console said (CSP violations land there). */
  const requested: string[] = [];
  const consoleErrors: string[] = [];

  const row = (id: string) => page.locator(`tr[data-member="${id}"]`);
  const useToken = async (token: string): Promise<void> => {
    await page.getByTestId('token-input').fill(token);
    await page.getByTestId('token-save').click();
  };

  beforeAll(async () => {
    cluster = new DashboardCluster();
    const n1 = await cluster.start('n1');
    await Promise.all([cluster.start('n2', [n1.address]), cluster.start('n3', [n1.address])]);
    admin = cluster.adminToken();
    await cluster.converged(['n1', 'n2', 'n3'], admin);
    reader = await cluster.makeToken('read', admin);
    // Objects for the join to move (bounded: 1,500 small writes).
    await cluster.load('n1', admin, 1_500);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1360, height: 1000 } });
    page.on('request', (r) => requested.push(r.url()));
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await cluster?.close();
  });

  it('asks for a token, then shows the three members up, the ring and the charts; nothing comes from elsewhere', async () => {
    const origin = cluster.nodes.get('n1')!.url;
    await page.goto(`${origin}/ui`);
    // No token yet: the node's 401, said on the page.
    await expect.poll(() => page.getByTestId('auth-error').textContent(), { timeout: 10_000 }).toMatch(/UNAUTHORIZED \(401\)/);
    await useToken(reader);
    await expect.poll(() => page.locator('tr[data-member]').count(), { timeout: 10_000 }).toBe(3);
    expect(await page.getByTestId('auth-error').count()).toBe(0);
    for (const id of ['n2', 'n3']) await expect.poll(() => row(id).getAttribute('data-health'), { timeout: 10_000 }).toBe('up');
    expect(await row('n1').getAttribute('data-health')).toBe('self');
    for (const id of ['n1', 'n2', 'n3']) expect(await row(id).getAttribute('data-status')).toBe('valid');
    // Partitions owned add up to Q, and the ring picture has all of them.
    const q = Number(await page.getByTestId('ring-canvas').getAttribute('data-partitions'));
    expect(q).toBeGreaterThanOrEqual(64);
    const owned = await page.locator('tr[data-member] .share .mono').allTextContents();
    expect(owned.map(Number).reduce((a, b) => a + b, 0)).toBe(q);
    // Pointing at the ring names the partition and its owner.
    const box = (await page.getByTestId('ring-canvas').boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height * 0.12);
    await expect.poll(() => page.getByTestId('ring-hover').textContent()).toMatch(/^#\d+ · n[123]/);
    // A read token may read /metrics: the charts are there, with the put rate the load made.
    await page.getByTestId('chart-rate').waitFor();
    expect(await page.getByTestId('metrics-error').count()).toBe(0);
    // The token stays in this tab: sessionStorage, not a cookie, not the URL.
    expect(await page.evaluate(() => sessionStorage.getItem('ringkv.dashboard.token'))).toBe(reader);
    expect(await page.evaluate(() => document.cookie)).toBe('');
    expect(requested.length).toBeGreaterThan(3);
    expect(requested.filter((u) => !u.startsWith(`${origin}/`))).toEqual([]);
    expect(requested.filter((u) => u.includes(reader))).toEqual([]);
    expect(consoleErrors.filter((e) => !/status of 401/.test(e))).toEqual([]);
  });

  it('a member killed with SIGKILL turns suspect within 10 s, the others stay up; after its restart it is up again', async () => {
    await cluster.kill('n3');
    const killedAt = Date.now();
    await expect.poll(() => row('n3').getAttribute('data-health'), { timeout: 10_000, interval: 200 }).toBe('suspect');
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    expect(await row('n2').getAttribute('data-health')).toBe('up');
    // Still a member (down is not gone), still listed with its partitions.
    expect(await row('n3').getAttribute('data-status')).toBe('valid');
    expect(await row('n3').getByTestId('member-health').textContent()).toMatch(/suspect/);

    await cluster.restart('n3');
    await expect.poll(() => row('n3').getAttribute('data-health'), { timeout: 20_000, interval: 200 }).toBe('up');
  }, 40_000);

  it('a 4th node joining shows partitions moving to it, with progress', async () => {
    await cluster.start('n4', [cluster.nodes.get('n1')!.address]);
    await expect.poll(() => page.locator('tr[data-member]').count(), { timeout: 15_000 }).toBe(4);
    const transfers = page.getByTestId('transfers-active');
    await transfers.waitFor({ timeout: 15_000 });
    // The claim may move a few partitions between the old members too; n4 receives from n1 in any case.
    await expect.poll(() => transfers.locator('tr[data-target]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-target'))), { timeout: 10_000 }).toContain('n4');
    expect(Number(await page.getByTestId('ring-canvas').getAttribute('data-moving'))).toBeGreaterThan(0);
    expect(await page.getByTestId('ring-moving').textContent()).toMatch(/\d+ partitions? n1 is still handing/);
    const first = Number(await page.getByTestId('transfer-progress').getAttribute('data-progress'));
    expect(await page.getByTestId('transfer-progress').textContent()).toMatch(/\d+ of \d+ partitions done/);
    // Progress moves on until every partition is handed over (the catch-up pass runs 5 s after the first).
    await expect
      .poll(async () => ((await page.getByTestId('transfers-idle').count()) > 0 ? 100 : Number(await page.getByTestId('transfer-progress').getAttribute('data-progress'))), {
        timeout: 30_000,
      })
      .toBeGreaterThan(first);
  }, 50_000);

  it('with a member down, the hints this node keeps for it show per target, and go once it is back', async () => {
    await cluster.kill('n3');
    await expect.poll(() => row('n3').getAttribute('data-health'), { timeout: 10_000, interval: 200 }).toBe('suspect');
    // With 4 members n1 is the fallback of the keys whose primaries are n2, n3 and n4 (about a quarter): it keeps their copies for n3 as hints.
    await cluster.load('n1', admin, 300);
    const forN3 = page.locator('tr[data-testid="hints-target"][data-target="n3"]');
    await expect.poll(async () => ((await forN3.count()) > 0 ? Number(await forN3.getAttribute('data-pending')) : 0), { timeout: 10_000 }).toBeGreaterThan(0);
    const onNode = (await cluster.call('n1', 'GET', '/metrics', admin)).json as string;
    expect(onNode).toMatch(/^ringkv_hints_pending_by_target\{[^}]*target="n3"[^}]*\} [1-9]/m);
    expect(await forN3.textContent()).toMatch(/for n3\s*\d+/);
    await cluster.restart('n3');
    await expect.poll(() => row('n3').getAttribute('data-health'), { timeout: 20_000, interval: 200 }).toBe('up');
    // Handoff delivers them (a round a second): the row goes.
    await expect.poll(() => forN3.count(), { timeout: 20_000 }).toBe(0);
  }, 60_000);

  it('leave from the page: refused for a read-only token (the page shows the 403), done with an admin token', async () => {
    await row('n4').getByTestId('leave-n4').click();
    const dialog = page.getByTestId('confirm');
    await expect.poll(() => dialog.textContent()).toMatch(/moves data/);
    await page.getByTestId('confirm-ok').click();
    await expect.poll(() => page.getByTestId('action-result').textContent(), { timeout: 10_000 }).toMatch(/refused by n1: FORBIDDEN \(403\).*role 'admin'.*admin role/);
    const still = (await cluster.call('n1', 'GET', '/status', admin)).json as { members: Array<{ id: string; status: string }> };
    expect(still.members.find((m) => m.id === 'n4')?.status).toBe('valid');

    await useToken(admin);
    await row('n4').getByTestId('leave-n4').click();
    await page.getByTestId('confirm-ok').click();
    await expect.poll(() => page.getByTestId('action-result').textContent(), { timeout: 10_000 }).toMatch(/n4 is leaving/);
    await expect.poll(() => row('n4').getAttribute('data-status'), { timeout: 10_000 }).toMatch(/^(leaving|left)$/);
    const after = (await cluster.call('n1', 'GET', '/status', admin)).json as { members: Array<{ id: string; status: string }> };
    expect(['leaving', 'left']).toContain(after.members.find((m) => m.id === 'n4')?.status);
    // The refusals were the node's answers (the browser logs a 401 or 403 resource); no script error, no CSP violation.
    expect(consoleErrors.filter((e) => !/status of 40[13]/.test(e))).toEqual([]);
  }, 30_000);

  it('a repair of one partition started from the page runs to its end and shows its summary', async () => {
    const ringDoc = (await cluster.call('n1', 'GET', '/ring', admin)).json as { owners: string[] };
    const partition = ringDoc.owners.indexOf('n1');
    expect(partition).toBeGreaterThanOrEqual(0);
    await page.getByTestId('repair-partition').fill(String(partition));
    await page.getByTestId('repair').click();
    const summary = page.getByTestId('repair-summary');
    await expect.poll(() => summary.getAttribute('data-state'), { timeout: 20_000 }).toBe('done');
    const id = (await summary.getAttribute('data-job'))!;
    const job = (await cluster.call('n1', 'GET', `/admin/repair/${id}`, admin)).json as { state: string; partitions: { total: number; compared: number }; inSync: number; diverged: number };
    expect(job.state).toBe('done');
    expect(job.partitions).toEqual({ total: 1, compared: 1 });
    expect(await summary.textContent()).toContain(`repair ${id} done (partition ${partition}): 1 of 1 partitions compared, ${job.inSync} pairs in sync, ${job.diverged} differed`);
  }, 30_000);

  it('forget from the page: refused for a read-only token; with an admin token a second confirmation for force, then done', async () => {
    // A member gone for good: killed, still valid and owning partitions, so the node wants force.
    await cluster.kill('n2');
    await expect.poll(() => row('n2').getAttribute('data-health'), { timeout: 10_000, interval: 200 }).toBe('suspect');
    const dialog = page.getByTestId('confirm');
    await useToken(reader);
    await row('n2').getByTestId('forget-n2').click();
    await expect.poll(() => dialog.textContent()).toMatch(/Forget n2.*moves data/);
    await page.getByTestId('confirm-ok').click();
    await expect.poll(() => page.getByTestId('action-result').textContent(), { timeout: 10_000 }).toMatch(/Forget of n2 refused by n1: FORBIDDEN \(403\).*admin role/);
    const before = (await cluster.call('n1', 'GET', '/status', admin)).json as { members: Array<{ id: string; status: string }> };
    expect(before.members.find((m) => m.id === 'n2')?.status).toBe('valid');

    await useToken(admin);
    await row('n2').getByTestId('forget-n2').click();
    await page.getByTestId('confirm-ok').click();
    // The node's 409 FORCE_REQUIRED becomes a second question, not a failure.
    await expect.poll(() => dialog.textContent(), { timeout: 15_000 }).toMatch(/Force: n2 still owns partitions.*n1 answered: .*n2 \(\d+ partitions\) is marked left at once/);
    expect(await page.getByTestId('action-result').count()).toBe(0);
    await page.getByTestId('confirm-ok').click();
    await expect.poll(() => page.getByTestId('action-result').textContent(), { timeout: 20_000 }).toMatch(/n2 is (forgotten|marked left)/);
    const after = (await cluster.call('n1', 'GET', '/status', admin)).json as { members: Array<{ id: string; status: string }> };
    expect(after.members.find((m) => m.id === 'n2')?.status ?? 'forgotten').toMatch(/^(left|forgotten)$/);
    await expect.poll(async () => ((await row('n2').count()) === 0 ? 'forgotten' : await row('n2').getAttribute('data-status')), { timeout: 10_000 }).toMatch(/^(left|forgotten)$/);
  }, 45_000);

  it('drain of the page\'s node from the page: after a confirmation the node drains, the page shows it draining, and it serves again', async () => {
    await row('n1').getByTestId('drain').click();
    await expect.poll(() => page.getByTestId('confirm').textContent()).toMatch(/Drain n1.*stops coordinating client requests/);
    await page.getByTestId('confirm-ok').click();
    await expect.poll(() => page.getByTestId('action-result').textContent(), { timeout: 40_000 }).toMatch(/n1 is drained: \d+ hints delivered/);
    await expect.poll(() => page.getByTestId('drain-state').getAttribute('data-state'), { timeout: 10_000 }).toBe('drained');
    await expect.poll(() => row('n1').getAttribute('data-draining'), { timeout: 10_000 }).toBe('true');
    expect(await row('n1').getByTestId('member-draining').textContent()).toBe('draining');
    // The node's own word: drained, and a client write through it is turned away.
    const s = (await cluster.call('n1', 'GET', '/status', admin)).json as { drain: { state: string }; members: Array<{ id: string; draining?: boolean }> };
    expect(s.drain.state).toBe('drained');
    expect(s.members.find((m) => m.id === 'n1')?.draining).toBe(true);
    expect((await cluster.call('n1', 'PUT', '/kv/dash/while-drained', admin, 'x')).status).toBe(503);

    await page.getByTestId('drain-cancel').click();
    await expect.poll(() => page.getByTestId('action-result').textContent(), { timeout: 10_000 }).toMatch(/n1 serves client requests again/);
    await expect.poll(() => page.getByTestId('drain-state').count(), { timeout: 10_000 }).toBe(0);
    await expect.poll(() => row('n1').getAttribute('data-draining'), { timeout: 10_000 }).toBe('false');
  }, 60_000);

  it('when its own node dies the page says so, keeps its last view and links the other members\' dashboards', async () => {
    await cluster.kill('n1');
    await expect.poll(() => page.getByTestId('unreachable').textContent(), { timeout: 10_000 }).toMatch(/n1 is not answering.*showing what it said at/);
    expect(await page.locator('tr[data-member]').count()).toBeGreaterThanOrEqual(3);
    const links = await page.getByTestId('unreachable').locator('a').evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).href));
    // Every member listed but n1 and those that have left by now (n4 after its leave, n2 after its forget).
    const listed = await page.locator('tr[data-member]').evaluateAll((rows) => rows.map((r) => ({ id: r.getAttribute('data-member')!, status: r.getAttribute('data-status') })));
    const others = listed.filter((m) => m.id !== 'n1' && m.status !== 'left').map((m) => m.id);
    expect(others).toContain('n3');
    expect(links.sort()).toEqual(others.map((id) => `${cluster.nodes.get(id)!.url}/ui`).sort());
  }, 20_000);
});
