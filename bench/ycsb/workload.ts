// YCSB's CoreWorkload: key names, record values, the operation mix and the
// key choice of the load phase (doInsert) and the run phase (doTransaction).
import type { DB, Status } from './bindings/db.js';
import {
  AcknowledgedCounterGenerator,
  CounterGenerator,
  DiscreteGenerator,
  fnvhash64,
  ScrambledZipfianGenerator,
  SkewedLatestGenerator,
  UniformLongGenerator,
  ZipfianGenerator,
  type NumberGenerator,
} from './generators.js';
import type { WorkloadConfig } from './properties.js';
import type { Random } from './random.js';
import { FieldData, type Fields, type RecordShape } from './record.js';

export type Operation = 'READ' | 'UPDATE' | 'INSERT' | 'READ-MODIFY-WRITE';

/** A DB whose calls are measured, plus a way to measure a composite operation (read-modify-write). */
export interface MeasuredDB extends DB {
  /** Records `op` from `startMs` (performance.now()) to now, with its status. */
  measureComposite(op: Operation, startMs: number, status: Status): void;
}

export class CoreWorkload {
  readonly shape: RecordShape;
  private readonly keysequence: CounterGenerator;
  private readonly transactioninsertkeysequence: AcknowledgedCounterGenerator;
  private readonly operationchooser: DiscreteGenerator<Operation>;
  private readonly keychooser: NumberGenerator;
  private readonly fieldchooser: UniformLongGenerator;
  private readonly fieldlengthgenerator: NumberGenerator | null;
  private readonly data: FieldData;

  constructor(readonly config: WorkloadConfig, rand: Random) {
    const c = config;
    this.shape = {
      fieldnames: Array.from({ length: c.fieldcount }, (_, i) => `${c.fieldnameprefix}${i}`),
      fieldlength: c.fieldlength,
    };
    this.data = new FieldData(rand, Math.max(1 << 20, c.fieldlength));
    this.fieldlengthgenerator =
      c.fieldlengthdistribution === 'constant' ? null
        : c.fieldlengthdistribution === 'uniform' ? new UniformLongGenerator(rand, c.minfieldlength, c.fieldlength)
          : new ZipfianGenerator(rand, c.minfieldlength, c.fieldlength);
    this.keysequence = new CounterGenerator(c.insertstart);
    this.operationchooser = new DiscreteGenerator<Operation>(rand);
    if (c.readproportion > 0) this.operationchooser.addValue(c.readproportion, 'READ');
    if (c.updateproportion > 0) this.operationchooser.addValue(c.updateproportion, 'UPDATE');
    if (c.insertproportion > 0) this.operationchooser.addValue(c.insertproportion, 'INSERT');
    if (c.readmodifywriteproportion > 0) this.operationchooser.addValue(c.readmodifywriteproportion, 'READ-MODIFY-WRITE');
    this.transactioninsertkeysequence = new AcknowledgedCounterGenerator(c.recordcount);
    if (c.requestdistribution === 'uniform') {
      this.keychooser = new UniformLongGenerator(rand, c.insertstart, c.insertstart + c.insertcount - 1);
    } else if (c.requestdistribution === 'zipfian') {
      // As YCSB: size the keyspace for the inserts the run will make (×2 fudge),
      // so the popular keys do not move as the keyspace grows; keys not yet
      // inserted are skipped by nextKeynum.
      const expectednewkeys = Math.trunc(c.operationcount * c.insertproportion * 2.0);
      this.keychooser = new ScrambledZipfianGenerator(rand, c.insertstart, c.insertstart + c.insertcount + expectednewkeys);
    } else {
      this.keychooser = new SkewedLatestGenerator(rand, this.transactioninsertkeysequence);
    }
    this.fieldchooser = new UniformLongGenerator(rand, 0, c.fieldcount - 1);
  }

  /** "user" + the (FNV-hashed unless insertorder=ordered) key number, zero-padded to zeropadding digits. */
  buildKeyName(keynum: number): string {
    const value = this.config.insertorder === 'hashed' ? fnvhash64(keynum).toString() : String(keynum);
    const fill = this.config.zeropadding - value.length;
    return fill > 0 ? `user${'0'.repeat(fill)}${value}` : `user${value}`;
  }

  /** The load phase's next insert: keys insertstart, insertstart+1, ... in order. */
  async doInsert(db: DB): Promise<Status> {
    const dbkey = this.buildKeyName(this.keysequence.nextValue());
    return db.insert(this.config.table, dbkey, this.buildValues());
  }

  /** One run-phase operation, chosen by the proportions. */
  async doTransaction(db: MeasuredDB): Promise<Operation> {
    const op = this.operationchooser.next();
    switch (op) {
      case 'READ': await this.doTransactionRead(db); break;
      case 'UPDATE': await this.doTransactionUpdate(db); break;
      case 'INSERT': await this.doTransactionInsert(db); break;
      case 'READ-MODIFY-WRITE': await this.doTransactionReadModifyWrite(db); break;
    }
    return op;
  }

  /** The next key to operate on: a draw of the request distribution among the keys inserted so far. */
  nextKeynum(): number {
    let keynum: number;
    do keynum = this.keychooser.nextValue();
    while (keynum > this.transactioninsertkeysequence.lastValue());
    return keynum;
  }

  private readFields(): string[] | null {
    return this.config.readallfields ? null : [this.shape.fieldnames[this.fieldchooser.nextValue()]!];
  }

  private writeValues(): Fields {
    return this.config.writeallfields ? this.buildValues() : this.buildSingleValue();
  }

  private async doTransactionRead(db: MeasuredDB): Promise<void> {
    const keyname = this.buildKeyName(this.nextKeynum());
    await db.read(this.config.table, keyname, this.readFields());
  }

  private async doTransactionUpdate(db: MeasuredDB): Promise<void> {
    const keyname = this.buildKeyName(this.nextKeynum());
    await db.update(this.config.table, keyname, this.writeValues());
  }

  private async doTransactionInsert(db: MeasuredDB): Promise<void> {
    const keynum = this.transactioninsertkeysequence.nextValue();
    try {
      await db.insert(this.config.table, this.buildKeyName(keynum), this.buildValues());
    } finally {
      this.transactioninsertkeysequence.acknowledge(keynum);
    }
  }

  private async doTransactionReadModifyWrite(db: MeasuredDB): Promise<void> {
    const keyname = this.buildKeyName(this.nextKeynum());
    const fields = this.readFields();
    const values = this.writeValues();
    const st = performance.now();
    const read = await db.read(this.config.table, keyname, fields);
    const update = await db.update(this.config.table, keyname, values);
    db.measureComposite('READ-MODIFY-WRITE', st, read === 'ERROR' || update === 'ERROR' ? 'ERROR' : update);
  }

  private fieldLength(): number {
    return this.fieldlengthgenerator ? this.fieldlengthgenerator.nextValue() : this.config.fieldlength;
  }

  private buildValues(): Fields {
    const values: Fields = {};
    for (const name of this.shape.fieldnames) values[name] = this.data.bytes(this.fieldLength());
    return values;
  }

  private buildSingleValue(): Fields {
    const name = this.shape.fieldnames[this.fieldchooser.nextValue()]!;
    return { [name]: this.data.bytes(this.fieldLength()) };
  }
}
