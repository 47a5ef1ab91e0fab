// `ringkv backup` and `ringkv restore` (docs/backup.md): every object of
// the cluster (or of chosen buckets) with its full record streamed into a
// backup file (src/backup/format.ts), and merged back through POST
// /admin/merge. Both bounded in memory (a page, a batch) and restartable.
import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Command } from 'commander';
import type { ListedObject, RingkvClient } from '../client/index.js';
import { BackupFormatError, BackupReader, BackupWriter, type BackupMeta } from '../backup/format.js';
import { type ClientFactory, positiveInt } from './listing.js';
import { withTokenOptions } from './token.js';
import { invariant } from '../core/types.js';

const CHECKPOINT_VERSION = 1;

/** Where a backup in progress stands, written beside FILE.partial after each page (the data synced first). */
interface BackupCheckpoint {
  version: number;
  /** Bytes of FILE.partial the checkpoint covers (whole entries). */
  bytes: number;
  entries: number;
  /** Index into the bucket list of the next page (0 when backing up every bucket at once; the list's length once all are done). */
  bucketIndex: number;
  /** The next page's cursor in that bucket's listing (null: from its start). */
  cursor: string | null;
  meta: BackupMeta;
}

/** Where a restore stands: the entries merged so far (the file is verified again before they are skipped). */
interface RestoreCheckpoint {
  version: number;
  entries: number;
}

/** The file `--out DIR` writes in an existing directory (a fixed name, so --resume finds it). */
export const DIR_BACKUP_NAME = 'ringkv.bak';

export const backupPaths = (out: string) => ({ partial: `${out}.partial`, checkpoint: `${out}.partial.checkpoint` });
export const restoreCheckpointPath = (file: string) => `${file}.restore-checkpoint`;

function writeJsonAtomically(path: string, doc: unknown): void {
  writeFileSync(`${path}.tmp`, JSON.stringify(doc));
  renameSync(`${path}.tmp`, path);
}

function readJson<T>(path: string): T | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

/** A progress line on stderr at most once a second (and at the end). */
function progress(): (line: string, force?: boolean) => void {
  let last = 0;
  return (line, force = false) => {
    const now = Date.now();
    if (!force && now - last < 1_000) return;
    last = now;
    process.stderr.write(`${line}\n`);
  };
}

const mib = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;

export interface BackupOptions {
  out: string;
  buckets: string[];
  resume: boolean;
  force: boolean;
  pageSize: number;
  r?: number;
  source?: string;
}

/** Runs a backup to `o.out`; resolves with the entries written. */
export async function runBackup(c: RingkvClient, o: BackupOptions): Promise<number> {
  const { partial, checkpoint } = backupPaths(o.out);
  if (existsSync(o.out) && !o.force) throw new Error(`${o.out} exists (give --force to replace it)`);
  const saved = o.resume ? readJson<BackupCheckpoint>(checkpoint) : null;
  let writer: BackupWriter;
  let state: BackupCheckpoint;
  if (saved !== null && saved.version === CHECKPOINT_VERSION && existsSync(partial)) {
    const wanted = o.buckets.length > 0 ? o.buckets : null;
    if (JSON.stringify(saved.meta.buckets) !== JSON.stringify(wanted)) throw new Error(`the backup in progress is of ${saved.meta.buckets ? `buckets ${saved.meta.buckets.join(', ')}` : 'every bucket'}: give the same --bucket options, or start over without --resume`);
    writer = BackupWriter.resume(partial, saved.bytes, saved.entries).writer;
    state = saved;
    console.error(`resuming ${partial}: ${saved.entries} objects (${mib(saved.bytes)}) already written`);
  } else {
    if (o.resume) console.error(`no backup in progress to resume for ${o.out}: starting over`);
    const meta: BackupMeta = { createdAtMs: Date.now(), buckets: o.buckets.length > 0 ? o.buckets : null, tombstones: true, ...(o.source ? { source: o.source } : {}) };
    writer = BackupWriter.create(partial, meta);
    state = { version: CHECKPOINT_VERSION, bytes: writer.size, entries: 0, bucketIndex: 0, cursor: null, meta };
    writer.sync();
    writeJsonAtomically(checkpoint, { ...state, bytes: writer.size });
  }
  const show = progress();
  const sources: Array<string | null> = state.meta.buckets ?? [null];
  try {
    while (state.bucketIndex < sources.length) {
      const index = state.bucketIndex;
      const bucket = sources[index]!;
      const onPage = (cursor: string | null) => {
        // The page's objects are written: make them durable, then say where the next page starts
        // (a listing's last page: the next bucket, from its start).
        writer.sync();
        state.bucketIndex = cursor === null ? index + 1 : index;
        state.cursor = cursor;
        state.bytes = writer.size;
        state.entries = writer.entries;
        writeJsonAtomically(checkpoint, state);
        show(`backup: ${writer.entries} objects, ${mib(writer.size)}${bucket !== null ? ` (bucket ${bucket})` : ''}`);
      };
      for await (const o2 of c.listObjects(bucket, { pageSize: o.pageSize, r: o.r, tombstones: true, cursor: state.cursor, onPage })) writer.add(o2);
      invariant(state.bucketIndex === index + 1 && state.cursor === null, 'a listing ended without its last page');
    }
    writer.finish();
  } catch (err) {
    writer.abandon();
    throw err;
  }
  // Complete only now: the trailer is written and synced.
  renameSync(partial, o.out);
  rmSync(checkpoint, { force: true });
  show(`backup: ${writer.entries} objects, ${mib(writer.size)}: ${o.out} complete`, true);
  return writer.entries;
}

/** Reads the whole file and checks every entry and the trailer; throws BackupFormatError on the first problem. */
export function verifyBackup(file: string, onProgress?: (entries: number, offset: number) => void): { meta: BackupMeta; entries: number } {
  const { reader, close } = BackupReader.open(file);
  try {
    const meta = reader.readHeader();
    while (reader.readEntry() !== null) onProgress?.(reader.entries, reader.offset);
    return { meta, entries: reader.entries };
  } finally {
    close();
  }
}

export interface RestoreOptions {
  file: string;
  resume: boolean;
  batch: number;
  batchBytes: number;
}

/** Verifies `o.file` whole, then merges its entries in batches; resolves with the entries merged. */
export async function runRestore(c: RingkvClient, o: RestoreOptions): Promise<number> {
  const show = progress();
  // First the whole file: a corrupt or truncated one is refused before anything is merged.
  const { entries } = verifyBackup(o.file, (n, offset) => show(`verify: ${n} objects, ${mib(offset)}`));
  show(`verify: ${entries} objects: the file is intact`, true);
  const ckptPath = restoreCheckpointPath(o.file);
  const saved = o.resume ? readJson<RestoreCheckpoint>(ckptPath) : null;
  const skip = saved !== null && saved.version === CHECKPOINT_VERSION ? Math.min(saved.entries, entries) : 0;
  if (skip > 0) console.error(`resuming: the first ${skip} objects were merged before`);
  const { reader, close } = BackupReader.open(o.file);
  let done = skip;
  try {
    reader.readHeader();
    let batch: ListedObject[] = [];
    let bytes = 0;
    let index = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      const outcome = await c.mergeRecords(batch);
      if (outcome.failed.length > 0) {
        const f = outcome.failed[0]!;
        const e = batch[f.index]!;
        throw new Error(
          `${outcome.failed.length} of ${batch.length} objects were not merged (first: ${e.bucket.toString('utf8')}/${e.key.toString('base64url')}: ${f.error}: ${f.message}); ` +
            `${done} objects are merged: run again with --resume (merging is idempotent)`,
        );
      }
      done += batch.length;
      writeJsonAtomically(ckptPath, { version: CHECKPOINT_VERSION, entries: done } satisfies RestoreCheckpoint);
      show(`restore: ${done} of ${entries} objects merged`);
      batch = [];
      bytes = 0;
    };
    for (let e = reader.readEntry(); e !== null; e = reader.readEntry()) {
      // Checked again as it is read: the file could have changed since the verify pass.
      if (index++ < skip) continue;
      batch.push(e);
      bytes += e.record.length + e.key.length + e.bucket.length;
      if (batch.length >= o.batch || bytes >= o.batchBytes) await flush();
    }
    await flush();
  } finally {
    close();
  }
  rmSync(ckptPath, { force: true });
  show(`restore: ${done} objects merged from ${o.file}`, true);
  return done;
}

export function registerBackupCommands(program: Command, defaultNode: string, client: ClientFactory): void {
  withTokenOptions(program.command('backup'))
    .description('write every object (or those of --bucket) with siblings and causal context to a checksummed backup file (docs/backup.md)')
    .requiredOption('--out <file|dir>', 'the backup file (written as <file>.partial, renamed when complete); an existing directory: <dir>/ringkv.bak')
    .option('--bucket <bucket>', 'back up this bucket only (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--resume', 'continue the backup in progress from its checkpoint (<file>.partial.checkpoint)')
    .option('--force', 'replace <file> if it exists')
    .option('--page-size <n>', 'objects per request', positiveInt('page-size', 1_000), 100)
    .option('--r <n>', 'replicas read per partition (default: n - w + 1)', positiveInt('r', 16))
    .option('--node <host:port>', 'node to ask (comma-separated for failover)', defaultNode)
    .option('--tls-ca <file>', 'HTTPS: verify the node against this CA certificate (PEM); env RINGKV_TLS_CA')
    .action(async (o) => {
      const c = client(o);
      try {
        const out = existsSync(o.out) && statSync(o.out).isDirectory() ? join(o.out, DIR_BACKUP_NAME) : o.out;
        await runBackup(c, { out, buckets: o.bucket, resume: o.resume === true, force: o.force === true, pageSize: o.pageSize, r: o.r, source: o.node });
      } finally {
        c.close();
      }
    });

  withTokenOptions(program.command('restore'))
    .description('verify a backup file whole, then merge every object into the cluster (concurrent versions become siblings, newer writes stay; needs an admin token)')
    .argument('<file>', 'a backup file')
    .option('--resume', 'skip the objects a previous run merged (<file>.restore-checkpoint); running again without it is safe too')
    .option('--batch <n>', 'objects per merge request', positiveInt('batch', 1_000), 500)
    .option('--node <host:port>', 'node to send to (comma-separated for failover)', defaultNode)
    .option('--tls-ca <file>', 'HTTPS: verify the node against this CA certificate (PEM); env RINGKV_TLS_CA')
    .action(async (file: string, o) => {
      const c = client(o);
      try {
        await runRestore(c, { file, resume: o.resume === true, batch: o.batch, batchBytes: 8 * 1024 * 1024 });
      } catch (err) {
        if (err instanceof BackupFormatError) throw new Error(`${file} is not an intact backup: ${err.message}; nothing was restored`);
        throw err;
      } finally {
        c.close();
      }
    });
}
