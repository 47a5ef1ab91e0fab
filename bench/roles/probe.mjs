// Loaded into each ringkv node process by bench/roles.ts (`node --import
// <this file> bin/ringkv.js start ...`, spawned with an IPC channel): the
// figures of the node's own runtime that /proc cannot give, for one measured
// phase at a time. Plain JavaScript so the node needs no loader for it.
//
//   parent -> {probe: 'reset'}   start a phase: clear the event-loop delay
//                                histogram, restart the GC profile
//   parent -> {probe: 'read'}    end it; answers {probe: 'figures', ...}
//
// Heap bytes allocated in a phase = used heap at its end − used heap at its
// start + what every GC in between freed (v8.GCProfiler's before/after used
// sizes): JavaScript objects only (Buffers' bytes outside the heap are not
// counted). Event-loop delay: perf_hooks.monitorEventLoopDelay sampling
// every 10 ms (a finer timer would cost the CPU this bench measures).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import v8 from 'node:v8';

const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();
let profiler = null;
let usedAtStart = 0;

function reset() {
  if (profiler) profiler.stop();
  profiler = new v8.GCProfiler();
  usedAtStart = v8.getHeapStatistics().used_heap_size;
  profiler.start();
  delay.reset();
}

function read() {
  const usedNow = v8.getHeapStatistics().used_heap_size;
  const stats = profiler ? profiler.stop().statistics : [];
  profiler = null;
  let freed = 0;
  let gcPauseUs = 0;
  let majorGcs = 0;
  for (const s of stats) {
    freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
    gcPauseUs += s.cost;
    if (s.gcType !== 'Scavenge') majorGcs += 1;
  }
  const ms = (ns) => ns / 1e6;
  return {
    probe: 'figures',
    heapAllocatedBytes: usedNow - usedAtStart + freed,
    gcs: stats.length,
    majorGcs,
    gcPauseUs,
    loopDelayMs: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), p999: ms(delay.percentile(99.9)), max: ms(delay.max), samples: delay.count },
  };
}

process.on('message', (msg) => {
  if (msg === null || typeof msg !== 'object') return;
  if (msg.probe === 'reset') {
    reset();
    process.send?.({ probe: 'reset-done' });
  } else if (msg.probe === 'read') {
    process.send?.(read());
  }
});
// The IPC channel must not keep a stopping node alive.
process.channel?.unref();
