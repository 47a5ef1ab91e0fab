// Bindings by name (YCSB's -db).
import type { Properties } from '../properties.js';
import { YcsbPropertyError } from '../properties.js';
import type { RecordShape } from '../record.js';
import { BaselineBinding, baselineOptions } from './baseline.js';
import type { DB } from './db.js';
import { RingkvBinding, ringkvOptions } from './ringkv.js';
import { RingkvHttpBinding } from './ringkv-http.js';

export type { DB, Status } from './db.js';
export const BINDINGS = ['ringkv', 'baseline'] as const;

export function createBinding(name: string, props: Properties, shape: RecordShape, threads: number): DB {
  switch (name) {
    case 'ringkv': {
      const opts = ringkvOptions(props);
      return opts.client === 'http' ? new RingkvHttpBinding(opts, shape, threads) : new RingkvBinding(opts, shape);
    }
    case 'baseline': return new BaselineBinding(baselineOptions(props, threads), shape);
    default: throw new YcsbPropertyError('-db', `unknown binding "${name}" (choose ${BINDINGS.join(' or ')})`);
  }
}
