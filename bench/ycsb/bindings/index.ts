// Bindings by name (YCSB's -db).
import type { Properties } from '../properties.js';
import { YcsbPropertyError } from '../properties.js';
import type { RecordShape } from '../record.js';
import { BaselineBinding, baselineOptions } from './baseline.js';
import type { DB } from './db.js';
import { RingkvBinding, ringkvOptions } from './ringkv.js';

export type { DB, Status } from './db.js';
export const BINDINGS = ['ringkv', 'baseline'] as const;

export function createBinding(name: string, props: Properties, shape: RecordShape, threads: number): DB {
  switch (name) {
    case 'ringkv': return new RingkvBinding(ringkvOptions(props), shape);
    case 'baseline': return new BaselineBinding(baselineOptions(props, threads), shape);
    default: throw new YcsbPropertyError('-db', `unknown binding "${name}" (choose ${BINDINGS.join(' or ')})`);
  }
}
