// npm run ui:screenshots: the dashboard's pictures in docs/img/, taken from
// a real 3-node cluster of `ringkv start` processes in Debian's Chromium:
// dashboard-idle.png (3 nodes, some load) and dashboard-join.png (a 4th node
// joining, partitions moving to it).
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../test/ui/browser.js';
import { DashboardCluster } from '../test/ui/processes.js';

const OUT = fileURLToPath(new URL('../docs/img/', import.meta.url));
const KEYS = 20_000;

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const cluster = new DashboardCluster();
  const browser = await launchChromium();
  try {
    const n1 = await cluster.start('n1');
    await Promise.all([cluster.start('n2', [n1.address]), cluster.start('n3', [n1.address])]);
    const admin = cluster.adminToken();
    await cluster.converged(['n1', 'n2', 'n3'], admin);
    const page = await browser.newPage({ viewport: { width: 1360, height: 900 }, deviceScaleFactor: 1 });
    await page.goto(`${n1.url}/ui`);
    await page.getByTestId('token-input').fill(admin);
    await page.getByTestId('token-save').click();
    await page.locator('tr[data-member]').nth(2).waitFor();
    // Load through n1 while the charts fill (bounded: KEYS writes).
    const started = Date.now();
    await cluster.load('n1', admin, KEYS, 8);
    // Blind writes over existing keys make siblings; the reads then count them.
    await cluster.load('n1', admin, 2_000, 2);
    const idle = await cluster.readBack('n1', admin, 6_000, 4);
    await page.waitForTimeout(Math.max(0, 12_000 - (Date.now() - started)));
    // Idle means the handover of the cluster's forming is over too (at most 60 s more).
    await page.getByTestId('transfers-idle').waitFor({ timeout: 60_000 }).catch(() => console.log('transfers still pending after 60 s; taking the picture anyway'));
    await page.screenshot({ path: `${OUT}dashboard-idle.png`, fullPage: true });
    console.log(`wrote ${OUT}dashboard-idle.png`);

    const traffic = Promise.all([cluster.load('n1', admin, 3_000, 2), cluster.readBack('n1', admin, 4_000, 2)]);
    await cluster.start('n4', [n1.address]);
    await page.getByTestId('transfers-active').waitFor({ timeout: 20_000 });
    // Some way into the handover (at most 8 s): a third of it, or whatever it reached.
    await page
      .waitForFunction(() => Number(document.querySelector('[data-testid="transfer-progress"]')?.getAttribute('data-progress') ?? 100) >= 30, undefined, { timeout: 8_000 })
      .catch(() => undefined);
    await page.screenshot({ path: `${OUT}dashboard-join.png`, fullPage: true });
    console.log(`wrote ${OUT}dashboard-join.png`);
    const [, joining] = await traffic;
    // Said, not hidden: reads that found no quorum in time (the pictures do not depend on them).
    console.log(`reads answered 503: ${idle.unavailable} of 6000 idle, ${joining.unavailable} of 4000 during the join`);
  } finally {
    await browser.close();
    await cluster.close();
  }
}

await main();
