// The interface a YCSB database binding implements (YCSB's site.ycsb.DB,
// without scan and delete: the core workloads A–D and F do not use them).
import type { Fields } from '../record.js';

/** YCSB's Status names, printed as `Return=<status>`. */
export type Status = 'OK' | 'ERROR' | 'NOT_FOUND';

export interface DB {
  /** Connects; called once before the phase starts. */
  init(): Promise<void>;
  /** Reads `key` (all fields when `fields` is null) into `result` if given. */
  read(table: string, key: string, fields: readonly string[] | null, result?: Fields): Promise<Status>;
  /** Sets `values` (some or all fields) of an existing record. */
  update(table: string, key: string, values: Fields): Promise<Status>;
  insert(table: string, key: string, values: Fields): Promise<Status>;
  /** Releases connections; called once after the phase. */
  cleanup(): Promise<void>;
}

/** Prints the first few failures of a binding to stderr, then only counts them. */
export class ErrorLog {
  private printed = 0;
  constructor(private readonly binding: string, private readonly limit = 5) {}
  report(op: string, key: string, err: unknown): void {
    if (this.printed >= this.limit) return;
    this.printed++;
    const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    process.stderr.write(`[${this.binding}] ${op} ${key} failed: ${what}${this.printed === this.limit ? ' (further errors only counted)' : ''}\n`);
  }
}
