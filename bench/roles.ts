// Cost per request, per node and role (issue 15, item 1; bench/roles/measure.ts
// says what is measured and how). One build, or an A/B of this checkout
// against an earlier commit, alternated round by round:
//
//   npm run bench:roles                          # this checkout, ROLES_ROUNDS rounds
//   npm run bench:roles -- --against <commit>    # <commit> (A) vs this checkout (B)
//   npm run bench:roles -- ... --write           # also record the section in bench/RESULTS.md
//
// --against builds the commit in a directory of its own under the temp
// directory (git archive, this checkout's node_modules linked and native/
// addon copied, tsc), kept for later runs. Every duration and size comes from
// the environment (defaults in brackets):
//   ROLES_RECORDS [10000]  records inserted in the put phase, read in the get phase
//   ROLES_RUN_S [10]       the get phase
//   ROLES_IDLE_S [3]       the idle phase (background CPU)
//   ROLES_THREADS [16]     closed-loop client threads
//   ROLES_ROUNDS [3]       rounds; each runs every build once, on a fresh cluster
//   ROLES_SEED [1]
//   ROLES_TARGET [closed loop] open loop at this many ops/s in the put and get phases: builds compared at one rate
//   ROLES_FANOUT           e.g. all,quorum: each build runs once per read_fanout of the benchmark's buckets (issue 15 item 3)
//   ROLES_CPU_PROF_DIR     if set: each node writes a V8 CPU profile there (node --cpu-prof)
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineLine, recordSection, today } from './results-file.js';
import { rolesReport, runRoles, type Build, type RolesConfig } from './roles/measure.js';

const env = (name: string, def: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name}=${raw} is not a positive number`);
  return v;
};

const cfg: RolesConfig = {
  records: Math.round(env('ROLES_RECORDS', 10_000)),
  runS: env('ROLES_RUN_S', 10),
  idleS: env('ROLES_IDLE_S', 3),
  threads: Math.round(env('ROLES_THREADS', 16)),
  rounds: Math.round(env('ROLES_ROUNDS', 3)),
  seed: Math.round(env('ROLES_SEED', 1)),
  targetOpsPerS: process.env.ROLES_TARGET ? env('ROLES_TARGET', 0) : 0,
};

const root = fileURLToPath(new URL('..', import.meta.url));
const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim();

/** A runnable checkout of `rev`: its sources, this checkout's node_modules and addon, its own dist/. */
function buildOf(rev: string): Build {
  const sha = git('rev-parse', '--verify', `${rev}^{commit}`);
  const dir = path.join(tmpdir(), `ringkv-roles-${sha.slice(0, 12)}`);
  if (!existsSync(path.join(dir, 'dist/cli/index.js'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    execFileSync('sh', ['-c', `git archive ${sha} | tar -x -C '${dir}'`], { cwd: root, stdio: 'inherit' });
    symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
    // The addon is not in git; a change to the Rust crates between the two would need its own build.
    cpSync(path.join(root, 'native'), path.join(dir, 'native'), { recursive: true });
    execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: dir, stdio: 'inherit' });
  }
  return { label: `${rev} (${sha.slice(0, 7)})`, root: dir };
}

const args = process.argv.slice(2);
const against = args.indexOf('--against');
const head = git('rev-parse', '--short', 'HEAD');
const dirty = git('status', '--porcelain', '--', 'src', 'bin').length > 0;
const self: Build = { label: `this (${head}${dirty ? '+changes' : ''})`, root };
const checkouts: Build[] = against >= 0 ? [buildOf(args[against + 1] ?? 'HEAD'), self] : [self];
const fanouts = (process.env.ROLES_FANOUT ?? '').split(',').filter((f) => f !== '');
for (const f of fanouts) if (f !== 'all' && f !== 'quorum') throw new Error(`ROLES_FANOUT: ${f} is not all or quorum`);
const builds: Build[] = fanouts.length === 0 ? checkouts : checkouts.flatMap((b) => fanouts.map((f) => ({ ...b, label: `${b.label} fanout=${f}`, readFanout: f as 'all' | 'quorum' })));

const startLoad = loadavg()[0]!;
const started = Date.now();
const results = await runRoles(builds, cfg);
const seconds = (Date.now() - started) / 1000;
const endLoad = loadavg()[0]!;
const report = rolesReport(results, builds);
console.log(`\n${report}\n\n(${Math.round(seconds)} s; 1-minute load ${startLoad.toFixed(2)} at the start, ${endLoad.toFixed(2)} at the end)`);

mkdirSync(path.join(root, 'bench/results'), { recursive: true });
// A fan-out run has a file of its own (its sections name it), so it does not replace the last A/B run's.
const jsonName = fanouts.length > 0 ? `roles-fanout${cfg.targetOpsPerS ? '-open' : ''}.json` : 'roles.json';
writeFileSync(path.join(root, 'bench/results', jsonName), `${JSON.stringify({ config: cfg, builds, results }, null, 2)}\n`);
if (args.includes('--write')) {
  const vars = Object.entries(process.env).filter(([k]) => k.startsWith('ROLES_')).map(([k, v]) => `${k}=${v} `).join('');
  const command = `${vars}npm run bench:roles -- ${against >= 0 ? `--against ${args[against + 1]} ` : ''}--write`;
  recordSection(
    against >= 0 ? 'roles-ab' : fanouts.length > 0 ? `roles-fanout${cfg.targetOpsPerS ? '-open' : ''}` : 'roles',
    `## ${fanouts.length > 0 ? `Read fan-out (${fanouts.join(' vs ')}): cost` : 'Cost'} per request, per node and role (3 nodes, (3,2,2))${against >= 0 ? `: ${builds[0]!.label} against this checkout` : ''}\n\nCommand: \`${command}\` (bench/roles.ts, bench/roles/measure.ts) — 3 real \`ringkv start\` processes on 127.0.0.1 (native engine, default Q = 4096, tokens and peer authentication on), every client request sent to n1 (the coordinator; it holds one replica itself), n2 and n3 replicas only; the in-tree YCSB generator in the bench process, ${cfg.threads} threads, ${cfg.targetOpsPerS ? `open loop at ${cfg.targetOpsPerS} ops/s (the same rate for every build: CPU per request depends on the load, as more frames share each peer message)` : 'closed loop'}; per round and build a fresh cluster, a warm-up, then ${cfg.idleS} s idle, ${cfg.records.toLocaleString('en')} blind PUTs (YCSB load phase, 10 × 100 B), ${cfg.runS} s of GETs of them (workload C, zipfian); ${cfg.rounds} round${cfg.rounds === 1 ? '' : 's'}${builds.length > 1 ? ', the builds alternated, their order rotated each round' : ''}. CPU: utime+stime of each node process (/proc/<pid>/stat, all threads) over the phase, per client request at the coordinator and per replica request served at a replica (ringkv_replica_requests_total; replica figures are the mean of n2 and n3); *net of idle* subtracts the node's idle CPU rate over the phase's length. Heap: V8 bytes allocated (GC profile in the node, bench/roles/probe.mjs); loop delay: monitorEventLoopDelay at 10 ms resolution (replicas: the worse of the two). Peer messages and bytes: both directions, from ringkv_peer_*_total. Medians over the rounds (min–max). Machine: ${machineLine()}, shared: other helpers ran test suites on it during the run (1-minute load ${startLoad.toFixed(2)} at the start, ${endLoad.toFixed(2)} at the end). Wall time ${Math.round(seconds)} s. Date: ${today()}. Per-round JSON in \`bench/results/${jsonName}\`.\n\n${report}`,
  );
}
process.exit(0);
