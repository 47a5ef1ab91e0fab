// The long peer-frame fuzz run (issue 11, item 5): the fuzzer of
// test/transport/peer-fuzz.ts against a fresh 3-node cluster of `ringkv
// start` processes, for as many frames as asked. Exits non-zero when a node
// died, a request got no reply or an untyped error, a node broke the
// protocol, or a canary changed on a replica.
//
//   npm run fuzz:peer -- --frames 1000000 --seed 1
import { parseArgs } from 'node:util';
import { checkCanaries, fuzz, prepare, startFuzzCluster } from '../test/transport/peer-fuzz.js';

const { values } = parseArgs({ options: { frames: { type: 'string', default: '100000' }, seed: { type: 'string', default: '1' } } });
const frames = Number(values.frames);
const seed = Number(values.seed);
if (!Number.isSafeInteger(frames) || frames <= 0 || !Number.isSafeInteger(seed)) throw new Error('--frames and --seed take integers');

const cluster = await startFuzzCluster(3);
let failed = false;
try {
  const { canaries, material } = await prepare(cluster, 100);
  console.log(`fuzzing 3 nodes with ${frames} frames, seed ${seed}`);
  const report = await fuzz(cluster, material, { seed, frames, progress: (sent) => console.log(`  ${sent} frames, ${cluster.dead().length} nodes dead`) });
  const canaryProblems = await checkCanaries(cluster, canaries);
  const problems = [
    ...cluster.dead().map((d) => `node ${d}`),
    ...report.faults.map((f) => `protocol fault: ${f}`),
    ...report.untyped.map((u) => `untyped reply: ${u}`),
    ...(report.replies['NO_REPLY'] ? [`${report.replies['NO_REPLY']} requests without a reply`] : []),
    ...canaryProblems,
  ];
  const closes = Object.values(report.closes).reduce((a, b) => a + b, 0);
  console.log(JSON.stringify({ frames: report.frames, requests: report.requests, seconds: Math.round(report.ms / 1000), replies: report.replies, connectionsClosedByNode: closes }, null, 1));
  if (problems.length > 0) {
    failed = true;
    console.log(`FAILED:\n${problems.slice(0, 50).join('\n')}`);
    for (const n of cluster.nodes) console.log(`--- ${n.id}\n${n.output().slice(-4000)}`);
  } else {
    console.log(`OK: ${report.frames} frames, 3 nodes alive, ${canaries.keys.length} canaries intact on every replica`);
  }
} finally {
  await cluster.close();
}
process.exit(failed ? 1 : 0);
