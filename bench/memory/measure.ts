// Resident memory of a process and bytes of a directory on disk, as the
// kernel and `du` see them (Linux only: /proc and GNU du).
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

export interface ProcessMemory {
  /** VmRSS: resident set now, bytes. */
  rssBytes: number;
  /** VmHWM: the highest resident set so far, bytes. */
  peakRssBytes: number;
}

/** Reads VmRSS and VmHWM of `pid` from /proc/<pid>/status. */
export function processMemory(pid: number): ProcessMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
    if (!match) throw new Error(`/proc/${pid}/status has no ${field} line`);
    return Number(match[1]) * 1024;
  };
  return { rssBytes: kib('VmRSS'), peakRssBytes: kib('VmHWM') };
}

export interface DiskUsage {
  /** Blocks allocated (what the disk pays), bytes: `du -s -B1`. */
  allocatedBytes: number;
  /** Sum of file sizes, bytes: `du -s -B1 --apparent-size` (sled's files can be sparse). */
  apparentBytes: number;
}

export function diskUsage(dir: string): DiskUsage {
  const du = (...flags: string[]): number => {
    const out = spawnSync('du', ['-s', '-B1', ...flags, dir], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`du ${dir} failed: ${out.stderr.trim()}`);
    return Number(out.stdout.split('\t')[0]);
  };
  return { allocatedBytes: du(), apparentBytes: du('--apparent-size') };
}
