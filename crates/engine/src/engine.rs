//! The storage engine: sled trees `objects`, `hints` and `meta`, DVV writes
//! as compare-and-swap loops, in-memory TicTac trees, group commit.

use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use fs2::FileExt;

use crate::codec::{canonical_attributes, decode_context, decode_record, encode_record, Attributes, Record, MAX_SAFE};
use crate::commit::GroupCommit;
use crate::config::{check_epoch, check_node_id, Config, Limits, HARD_MAX_SIBLINGS};
use crate::dvv::{self, Mode};
use crate::error::{err, EngineError, ErrorCode, Result};
use crate::keys::{
    bkey, check_bucket, check_key, check_cursor, disk_key, position_of_bkey, split_disk_key,
    Geometry,
};
use crate::tictac::{leaf_hash, Trees};

const META_NODE_ID: &str = "engine.nodeId";
const META_EPOCH: &str = "engine.epoch";
/// Present (flushed) only while the engine is closed cleanly; see `next_epoch`.
const META_CLEAN: &str = "engine.cleanShutdown";

/// The epoch after an unclean shutdown: the old one plus 1 (mod 2^64, as 16
/// hex digits). A crash can lose the tail of the log, and with it the key
/// counters of dots this actor already issued to other replicas; issuing
/// them again under the same actor would give two values one dot (replicas
/// that never converge, an acknowledged write lost). A new actor cannot
/// collide: the new epoch is flushed before any dot under it (Riak's vnode
/// ids do the same after an unclean shutdown).
fn next_epoch(epoch: &str) -> Result<String> {
    let n = u64::from_str_radix(epoch, 16)
        .map_err(|_| EngineError::new(ErrorCode::CorruptRecord, "stored engine.epoch is not hex"))?;
    Ok(format!("{:016x}", n.wrapping_add(1)))
}
const META_PARTITION_BITS: &str = "engine.partitionBits";
const META_BRANCH_BITS: &str = "engine.treeBranchBits";
const META_SEGMENT_BITS: &str = "engine.treeSegmentBits";
/// Names the engine reserves for itself in the meta store.
const META_RESERVED_PREFIX: &str = "engine.";

/// An object in a TicTac segment with its leaf hash (big-endian).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SegmentKey {
    pub bucket: Vec<u8>,
    pub key: Vec<u8>,
    pub hash: [u8; 8],
}

/// Most items one `scan_partition` page may ask for.
pub const MAX_SCAN_LIMIT: usize = 10_000;

/// One page of `scan_partition`: objects in disk-key order and the cursor
/// to continue from (`None` once the partition is exhausted).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PartitionPage {
    pub items: Vec<KeyRecord>,
    pub next: Option<Vec<u8>>,
}

/// An object (or a hint) and its record bytes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KeyRecord {
    pub bucket: Vec<u8>,
    pub key: Vec<u8>,
    pub record: Vec<u8>,
}

struct Store {
    db: sled::Db,
    objects: sled::Tree,
    hints: sled::Tree,
    meta: sled::Tree,
}

impl Store {
    fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}

/// Outcome of one read-modify-write.
struct Swap {
    /// The record replaced, if any.
    old: Option<Record>,
    new: Record,
    bytes: Vec<u8>,
    /// False when the new record equalled the stored one and nothing was written.
    written: bool,
}

/// Read, compute, compare-and-swap, retry on conflict: concurrent writers
/// to one key each see the other's result, so no write is lost.
fn read_modify_write(
    tree: &sled::Tree,
    key: &[u8],
    f: impl Fn(&Record) -> Result<Record>,
) -> Result<Swap> {
    let mut current = tree.get(key)?;
    loop {
        let old = current.as_deref().map(decode_record).transpose()?;
        let new = f(old.as_ref().unwrap_or(&Record::default()))?;
        let bytes = encode_record(&new);
        if current.as_deref() == Some(bytes.as_slice()) {
            return Ok(Swap {
                old,
                new,
                bytes,
                written: false,
            });
        }
        match tree.compare_and_swap(key, current.as_deref(), Some(bytes.as_slice()))? {
            Ok(()) => {
                return Ok(Swap {
                    old,
                    new,
                    bytes,
                    written: true,
                })
            }
            Err(conflict) => current = conflict.current,
        }
    }
}

/// `u8 targetLen ‖ target`: the hints of one target are one key range.
fn hint_prefix(target: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + target.len());
    out.push(target.len() as u8);
    out.extend_from_slice(target.as_bytes());
    out
}

fn check_meta_name(name: &str) -> Result<()> {
    if !(1..=255).contains(&name.len()) {
        return err(
            ErrorCode::InvalidArgument,
            "meta name must be 1..=255 bytes",
        );
    }
    Ok(())
}

fn random_epoch() -> Result<String> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| EngineError::new(ErrorCode::Io, format!("getrandom: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Record a new directory's identity, or check a reopened one against the
/// options. Returns the directory's epoch.
fn init_meta(store: &Store, cfg: &Config) -> Result<String> {
    let meta = &store.meta;
    let Some(node_id) = meta.get(META_NODE_ID)? else {
        let epoch = match &cfg.epoch {
            Some(e) => e.clone(),
            None => random_epoch()?,
        };
        let mut batch = sled::Batch::default();
        batch.insert(META_NODE_ID, cfg.node_id.as_bytes());
        batch.insert(META_EPOCH, epoch.as_bytes());
        batch.insert(META_PARTITION_BITS, &[cfg.partition_bits]);
        batch.insert(META_BRANCH_BITS, &[cfg.tree_branch_bits]);
        batch.insert(META_SEGMENT_BITS, &[cfg.tree_segment_bits]);
        meta.apply_batch(batch)?;
        store.flush()?;
        return Ok(epoch);
    };
    if node_id.as_ref() != cfg.node_id.as_bytes() {
        return err(
            ErrorCode::ConfigMismatch,
            format!(
                "data directory belongs to nodeId {:?}",
                String::from_utf8_lossy(&node_id)
            ),
        );
    }
    let stored_bits = meta.get(META_PARTITION_BITS)?;
    if stored_bits.as_deref() != Some(&[cfg.partition_bits][..]) {
        return err(
            ErrorCode::ConfigMismatch,
            format!(
                "data directory was created with partitionBits {:?}",
                stored_bits.as_deref()
            ),
        );
    }
    let epoch = meta
        .get(META_EPOCH)?
        .and_then(|e| String::from_utf8(e.to_vec()).ok())
        .filter(|e| check_epoch(e).is_ok())
        .ok_or_else(|| {
            EngineError::new(
                ErrorCode::CorruptRecord,
                "stored engine.epoch is missing or invalid",
            )
        })?;
    // The stored epoch wins (options.epoch only applies at creation), unless
    // the last run did not close cleanly.
    let epoch = if meta.get(META_CLEAN)?.is_some() {
        epoch
    } else {
        let next = next_epoch(&epoch)?;
        meta.insert(META_EPOCH, next.as_bytes())?;
        next
    };
    meta.remove(META_CLEAN)?;
    // Tree shape may change between runs: the trees are rebuilt anyway.
    meta.insert(META_BRANCH_BITS, &[cfg.tree_branch_bits])?;
    meta.insert(META_SEGMENT_BITS, &[cfg.tree_segment_bits])?;
    // Durable before any dot is issued under the epoch.
    store.flush()?;
    Ok(epoch)
}

/// sled releases its lock on `<dir>/db` only when its background IO
/// threads drop their last handle, which can lag behind dropping the `Db`.
/// Wait for that (bounded) so a closed directory can be reopened at once.
fn wait_for_lock_release(dir: &Path) {
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("db"))
    else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while file.try_lock_exclusive().is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = file.unlock();
}

/// Recompute every partition's tree from the stored objects.
fn rebuild_trees(objects: &sled::Tree, trees: &Trees) -> Result<()> {
    for item in objects.iter() {
        let (k, v) = item?;
        let dk = split_disk_key(&k).ok_or_else(|| {
            EngineError::new(
                ErrorCode::CorruptRecord,
                "malformed key in the objects store",
            )
        })?;
        trees.apply(dk.position, leaf_hash(dk.bkey, &decode_record(&v)?));
    }
    // Cost: a pass over every tree word; debug builds only.
    debug_assert_eq!(trees.verify(), Ok(()), "invariant: rebuilt trees are XOR-consistent");
    Ok(())
}

pub struct Engine {
    path: PathBuf,
    actor: String,
    geometry: Geometry,
    limits: Limits,
    trees: Trees,
    commit: GroupCommit,
    /// `None` once closed. Operations hold the read lock for their whole
    /// run, so `close` waits for them before releasing the database.
    store: RwLock<Option<Store>>,
}

impl Engine {
    pub fn open(cfg: Config) -> Result<Engine> {
        let geometry = cfg.validate()?;
        let db = sled::Config::new()
            .path(&cfg.path)
            // sled panics below 256 bytes of cache; smaller asks mean "as small as possible".
            .cache_capacity(cfg.cache_bytes.max(256))
            .flush_every_ms(cfg.flush_every_ms.filter(|&ms| ms > 0))
            .open()?;
        let store = Store {
            objects: db.open_tree("objects")?,
            hints: db.open_tree("hints")?,
            meta: db.open_tree("meta")?,
            db,
        };
        let epoch = init_meta(&store, &cfg)?;
        let trees = Trees::new(geometry);
        rebuild_trees(&store.objects, &trees)?;
        Ok(Engine {
            path: cfg.path.clone(),
            actor: format!("{}:{}", cfg.node_id, epoch),
            geometry,
            limits: cfg.limits,
            trees,
            commit: GroupCommit::default(),
            store: RwLock::new(Some(store)),
        })
    }

    /// `nodeId:epoch`, the actor of the dots this replica issues.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    pub fn partition_bits(&self) -> u8 {
        self.geometry.partition_bits
    }

    pub fn tree_branch_bits(&self) -> u8 {
        self.geometry.branch_bits
    }

    pub fn tree_segment_bits(&self) -> u8 {
        self.geometry.segment_bits
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// True after `close()`. Methods without a `Result` (accessors,
    /// `tree_roots`) keep answering; callers enforce CLOSED with this.
    pub fn is_closed(&self) -> bool {
        self.store
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    /// Run `f` against the open store, or fail with CLOSED.
    fn with_store<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        let guard = self.store.read().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(store) => f(store),
            None => err(ErrorCode::Closed, "engine is closed"),
        }
    }

    fn check_name(&self, bucket: &[u8], key: &[u8]) -> Result<()> {
        check_bucket(bucket)?;
        check_key(key, self.limits.max_key_bytes)
    }

    /// Block until every write so far is on disk (shared flush).
    fn sync(&self, store: &Store) -> Result<()> {
        self.commit.sync(|| store.flush())
    }

    /// Read-modify-write an object and keep its partition's tree in step.
    fn write_object(
        &self,
        store: &Store,
        bucket: &[u8],
        key: &[u8],
        f: impl Fn(&Record) -> Result<Record>,
        durable: bool,
    ) -> Result<Vec<u8>> {
        let bkey = bkey(bucket, key);
        let position = position_of_bkey(&bkey);
        let swap = read_modify_write(&store.objects, &disk_key(position, &bkey), f)?;
        // Costly (a full decode): debug only. What was stored must read back
        // as the record the tree update below hashes.
        debug_assert!(
            decode_record(&swap.bytes).is_ok_and(|r| r == swap.new),
            "invariant: a stored record decodes to the record written"
        );
        if swap.written {
            let old = swap.old.as_ref().map_or(0, |r| leaf_hash(&bkey, r));
            self.trees
                .apply(position, old ^ leaf_hash(&bkey, &swap.new));
        }
        // Even an unchanged merge waits: the stored state may not be on disk yet.
        if durable {
            self.sync(store)?;
        }
        Ok(swap.bytes)
    }

    /// A client put (`value = Some`) or delete (`None`) coordinated here,
    /// without attributes (the default content type, no metadata).
    #[allow(clippy::too_many_arguments)]
    pub fn coordinate(
        &self,
        bucket: &[u8],
        key: &[u8],
        context: Option<&[u8]>,
        value: Option<&[u8]>,
        now: u64,
        mode: Mode,
        durable: bool,
    ) -> Result<Vec<u8>> {
        self.coordinate_with(bucket, key, context, value, &Attributes::default(), now, mode, durable)
    }

    /// `coordinate` with the new sibling's attributes: `attrs` are the client's content type and metadata in any order
    /// (checked and sorted here; a delete stores the default).
    #[allow(clippy::too_many_arguments)]
    pub fn coordinate_with(
        &self,
        bucket: &[u8],
        key: &[u8],
        context: Option<&[u8]>,
        value: Option<&[u8]>,
        attrs: &Attributes,
        now: u64,
        mode: Mode,
        durable: bool,
    ) -> Result<Vec<u8>> {
        self.with_store(|store| {
            self.check_name(bucket, key)?;
            if value.is_some_and(|v| v.len() > self.limits.max_value_bytes) {
                return err(
                    ErrorCode::ValueTooLarge,
                    format!("value is longer than {} bytes", self.limits.max_value_bytes),
                );
            }
            let attrs = canonical_attributes(&attrs.content_type, &attrs.meta)?;
            let ctx = decode_context(context.unwrap_or_default())?;
            if now > MAX_SAFE {
                return err(ErrorCode::InvalidArgument, "timestamp above 2^53-1");
            }
            let me = self.actor.as_bytes();
            let max = self.limits.max_siblings;
            self.write_object(
                store,
                bucket,
                key,
                |stored| dvv::finish(dvv::update(stored, &ctx, me, value, &attrs, now)?, mode, max),
                durable,
            )
        })
    }

    /// Merge (DVV sync) a record from another replica into ours.
    pub fn merge(
        &self,
        bucket: &[u8],
        key: &[u8],
        record: &[u8],
        mode: Mode,
        durable: bool,
    ) -> Result<Vec<u8>> {
        self.with_store(|store| {
            self.check_name(bucket, key)?;
            let incoming = decode_record(record)?;
            // Replicas always converge: the configured limit refuses client
            // writes only (coordinate); a merge is bounded by the encoding.
            let max = HARD_MAX_SIBLINGS;
            self.write_object(
                store,
                bucket,
                key,
                |stored| dvv::finish(dvv::sync(stored, &incoming), mode, max),
                durable,
            )
        })
    }

    pub fn get(&self, bucket: &[u8], key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.with_store(|store| {
            self.check_name(bucket, key)?;
            let bkey = bkey(bucket, key);
            Ok(store
                .objects
                .get(disk_key(position_of_bkey(&bkey), &bkey))?
                .map(|v| v.to_vec()))
        })
    }

    /// Q root hashes, 8 bytes big-endian each.
    pub fn tree_roots(&self) -> Vec<u8> {
        self.trees.roots()
    }

    /// 2^B branch hashes of `partition`.
    pub fn tree_branches(&self, partition: u32) -> Result<Vec<u8>> {
        self.with_store(|_| self.trees.branches(partition))
    }

    /// 2^S segment hashes of one branch of `partition`.
    pub fn tree_segments(&self, partition: u32, branch: u32) -> Result<Vec<u8>> {
        self.with_store(|_| self.trees.segments(partition, branch))
    }

    /// Every object in the given segments of `partition`, in disk-key order.
    pub fn segment_keys(&self, partition: u32, segments: &[u32]) -> Result<Vec<SegmentKey>> {
        self.with_store(|store| {
            self.geometry.check_partition(partition)?;
            let mut wanted = segments.to_vec();
            for &s in &wanted {
                self.geometry.check_segment(s)?;
            }
            // Segments are contiguous, ascending disk-key ranges.
            wanted.sort_unstable();
            wanted.dedup();
            let mut out = Vec::new();
            for segment in wanted {
                let (start, end) = self.geometry.segment_range(partition, segment);
                let items = match end {
                    Some(end) => store.objects.range(start..end),
                    None => store.objects.range(start..),
                };
                for item in items {
                    let (k, v) = item?;
                    let dk = split_disk_key(&k).ok_or_else(|| {
                        EngineError::new(
                            ErrorCode::CorruptRecord,
                            "malformed key in the objects store",
                        )
                    })?;
                    out.push(SegmentKey {
                        bucket: dk.bucket.to_vec(),
                        key: dk.key.to_vec(),
                        hash: leaf_hash(dk.bkey, &decode_record(&v)?).to_be_bytes(),
                    });
                }
            }
            Ok(out)
        })
    }

    /// Up to `limit` objects of `partition` in disk-key order, strictly
    /// after the cursor `after` (a disk key of this partition; `None` = from
    /// the start). `next` is the last item's disk key when more objects
    /// follow it, else `None`.
    pub fn scan_partition(
        &self,
        partition: u32,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<PartitionPage> {
        use std::ops::Bound;
        self.with_store(|store| {
            self.geometry.check_partition(partition)?;
            if !(1..=MAX_SCAN_LIMIT).contains(&limit) {
                return err(
                    ErrorCode::InvalidArgument,
                    format!("limit must be 1..={MAX_SCAN_LIMIT}"),
                );
            }
            if let Some(cursor) = after {
                check_cursor(&self.geometry, partition, cursor)?;
            }
            let (start, end) = self.geometry.partition_range(partition);
            let lower = match after {
                Some(cursor) => Bound::Excluded(cursor.to_vec()),
                None => Bound::Included(start.to_vec()),
            };
            let upper = end.map_or(Bound::Unbounded, |e| Bound::Excluded(e.to_vec()));
            let mut items = Vec::new();
            let mut last: Option<sled::IVec> = None;
            let mut next = None;
            // One item past the page tells whether the partition goes on.
            for item in store.objects.range::<Vec<u8>, _>((lower, upper)).take(limit + 1) {
                let (k, v) = item?;
                if items.len() == limit {
                    next = last.map(|k| k.to_vec());
                    break;
                }
                let dk = split_disk_key(&k).ok_or_else(|| {
                    EngineError::new(
                        ErrorCode::CorruptRecord,
                        "malformed key in the objects store",
                    )
                })?;
                items.push(KeyRecord {
                    bucket: dk.bucket.to_vec(),
                    key: dk.key.to_vec(),
                    record: v.to_vec(),
                });
                last = Some(k);
            }
            Ok(PartitionPage { items, next })
        })
    }

    /// Tombstone reaping: delete the object only if it is still exactly
    /// `record` and `record` holds tombstones only; XOR its leaf out of the
    /// tree and flush before returning true. False changes nothing.
    pub fn reap(&self, bucket: &[u8], key: &[u8], record: &[u8]) -> Result<bool> {
        self.with_store(|store| {
            self.check_name(bucket, key)?;
            let rec = decode_record(record)?;
            if rec.siblings.iter().any(|s| !s.tombstone) {
                return err(
                    ErrorCode::InvalidArgument,
                    "only a record whose siblings are all tombstones can be reaped",
                );
            }
            let bkey = bkey(bucket, key);
            let position = position_of_bkey(&bkey);
            let dk = disk_key(position, &bkey);
            if store
                .objects
                .compare_and_swap(&dk, Some(record), None::<&[u8]>)?
                .is_err()
            {
                return Ok(false);
            }
            // The stored bytes were `record`, so its leaf is the one to remove.
            self.trees.apply(position, leaf_hash(&bkey, &rec));
            self.sync(store)?;
            Ok(true)
        })
    }

    /// Delete every object of one partition (tombstones too), flush, and close the engine as after a crash (no
    /// clean-shutdown mark): returns how many were deleted. For an operator
    /// whose replica of a partition is known bad, on a stopped node
    /// (anti-entropy or `ringkv repair` then refills it from the other
    /// replicas); and for tests. The hints and the metadata stay.
    ///
    /// Why it closes: the dropped objects' contexts held this actor's
    /// counters for their keys. Coordinating one of those keys again under
    /// the same actor would reissue a dot the other replicas already hold
    /// with another value. The next open starts a new epoch (a new actor), as
    /// after an unclean shutdown, so no dot can be issued twice.
    pub fn drop_partition(&self, partition: u32) -> Result<u64> {
        let dropped = self.with_store(|store| {
            self.geometry.check_partition(partition)?;
            let (start, end) = self.geometry.partition_range(partition);
            let upper = end.map_or(std::ops::Bound::Unbounded, |e| std::ops::Bound::Excluded(e.to_vec()));
            let mut dropped = 0u64;
            for item in store.objects.range::<Vec<u8>, _>((std::ops::Bound::Included(start.to_vec()), upper)) {
                // Records are not decoded: a bad replica may hold corrupt ones.
                // The trees are rebuilt from disk at the next open.
                let (k, _) = item?;
                store.objects.remove(&k)?;
                dropped += 1;
            }
            // The clean mark is absent while open; flushing without it retires this epoch.
            self.sync(store)?;
            Ok(dropped)
        })?;
        let mut guard = self.store.write().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = guard.take() {
            drop(store);
            wait_for_lock_release(&self.path);
        }
        Ok(dropped)
    }

    fn hint_key(&self, target: &str, bucket: &[u8], key: &[u8]) -> Result<Vec<u8>> {
        check_node_id(target)?;
        self.check_name(bucket, key)?;
        let bkey = bkey(bucket, key);
        let mut out = hint_prefix(target);
        out.extend_from_slice(&disk_key(position_of_bkey(&bkey), &bkey));
        Ok(out)
    }

    /// Hold `record` for `target`, DVV-merged with any hint already held
    /// (never lww: both versions are kept until delivered).
    pub fn hint_put(
        &self,
        target: &str,
        bucket: &[u8],
        key: &[u8],
        record: &[u8],
    ) -> Result<Vec<u8>> {
        self.with_store(|store| {
            let hk = self.hint_key(target, bucket, key)?;
            let incoming = decode_record(record)?;
            // As in merge: a held hint must take whatever a replica could.
            let max = HARD_MAX_SIBLINGS;
            let swap = read_modify_write(&store.hints, &hk, |held| {
                dvv::finish(dvv::sync(held, &incoming), Mode::Siblings, max)
            })?;
            Ok(swap.bytes)
        })
    }

    /// Up to `limit` hints for `target`, in disk-key order.
    pub fn hint_list(&self, target: &str, limit: usize) -> Result<Vec<KeyRecord>> {
        self.with_store(|store| {
            check_node_id(target)?;
            let prefix = hint_prefix(target);
            let mut out = Vec::new();
            for item in store.hints.scan_prefix(&prefix).take(limit) {
                let (k, v) = item?;
                let dk = split_disk_key(&k[prefix.len()..]).ok_or_else(|| {
                    EngineError::new(ErrorCode::CorruptRecord, "malformed key in the hints store")
                })?;
                out.push(KeyRecord {
                    bucket: dk.bucket.to_vec(),
                    key: dk.key.to_vec(),
                    record: v.to_vec(),
                });
            }
            Ok(out)
        })
    }

    /// Delete a delivered hint only if it is still exactly `record`.
    pub fn hint_delete(
        &self,
        target: &str,
        bucket: &[u8],
        key: &[u8],
        record: &[u8],
    ) -> Result<bool> {
        self.with_store(|store| {
            let hk = self.hint_key(target, bucket, key)?;
            Ok(store
                .hints
                .compare_and_swap(hk, Some(record), None::<&[u8]>)?
                .is_ok())
        })
    }

    /// Targets that have at least one hint, sorted.
    pub fn hint_targets(&self) -> Result<Vec<String>> {
        self.with_store(|store| {
            let mut out = Vec::new();
            let mut from: Vec<u8> = Vec::new();
            // Jump from one target's key range to the next instead of
            // walking every hint.
            while let Some(item) = store.hints.range(from.as_slice()..).next() {
                let (k, _) = item?;
                let len = k.first().map_or(0, |&n| n as usize);
                let target = k
                    .get(1..1 + len)
                    .filter(|t| !t.is_empty())
                    .and_then(|t| std::str::from_utf8(t).ok())
                    .ok_or_else(|| {
                        EngineError::new(
                            ErrorCode::CorruptRecord,
                            "malformed key in the hints store",
                        )
                    })?;
                out.push(target.to_owned());
                // The target is UTF-8, which never has a 0xFF byte, so
                // bumping its last byte cannot overflow (a wrap would loop).
                from = k[..1 + len].to_vec();
                let last = from.last_mut().expect("invariant: a hint target is not empty");
                *last = last
                    .checked_add(1)
                    .expect("invariant: a UTF-8 hint target has no 0xFF byte");
            }
            out.sort();
            Ok(out)
        })
    }

    pub fn meta_get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.with_store(|store| {
            check_meta_name(name)?;
            Ok(store.meta.get(name)?.map(|v| v.to_vec()))
        })
    }

    /// Store a named blob; durable when it returns. `engine.*` is reserved.
    pub fn meta_put(&self, name: &str, value: &[u8]) -> Result<()> {
        self.with_store(|store| {
            check_meta_name(name)?;
            if name.starts_with(META_RESERVED_PREFIX) {
                return err(
                    ErrorCode::InvalidArgument,
                    "meta names starting with \"engine.\" are reserved",
                );
            }
            store.meta.insert(name, value)?;
            self.sync(store)
        })
    }

    pub fn flush(&self) -> Result<()> {
        self.with_store(|store| self.sync(store))
    }

    /// Test hook: runs `f` the way every operation runs, holding the open
    /// store, so tests can panic there and show the engine survives it.
    #[doc(hidden)]
    pub fn run_in_store_for_test<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        self.with_store(|_| Ok(f()))
    }

    /// Flush and release the database; every later call fails with CLOSED.
    pub fn close(&self) -> Result<()> {
        let mut guard = self.store.write().unwrap_or_else(|e| e.into_inner());
        let store = guard
            .take()
            .ok_or_else(|| EngineError::new(ErrorCode::Closed, "engine is closed"))?;
        // The next open keeps this epoch only if this mark is flushed.
        let flushed = store
            .meta
            .insert(META_CLEAN, &[1u8])
            .map_err(EngineError::from)
            .and_then(|_| store.flush());
        drop(store);
        wait_for_lock_release(&self.path);
        flushed
    }
}
