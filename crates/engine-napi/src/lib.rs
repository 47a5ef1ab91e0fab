//! The only crate that knows N-API: it moves bytes between JS and
//! `ringkv_engine`, runs I/O on the libuv pool, and turns engine errors and
//! panics into JS errors. Errors reach JS as `"<CODE>: <message>"`; the
//! TypeScript facade (src/engine/native) turns that into an `EngineError`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use ringkv_engine as engine;

fn js_error(code: &str, message: &str) -> Error {
    Error::new(Status::GenericFailure, format!("{code}: {message}"))
}

fn from_engine(e: engine::error::EngineError) -> Error {
    js_error(e.code.as_str(), &e.message)
}

/// A coordinate's attributes as the facade passes them: the content type
/// (absent = the default) and the metadata as names and values alternating.
fn attributes(content_type: Option<String>, meta: Option<Vec<String>>) -> Result<engine::codec::Attributes> {
    let meta = meta.unwrap_or_default();
    if meta.len() % 2 != 0 {
        return Err(js_error("INVALID_ARGUMENT", "meta must alternate names and values"));
    }
    Ok(engine::codec::Attributes {
        content_type: content_type.map_or_else(|| engine::codec::DEFAULT_CONTENT_TYPE.to_vec(), String::into_bytes),
        meta: meta.chunks(2).map(|p| (p[0].clone().into_bytes(), p[1].clone().into_bytes())).collect(),
    })
}

/// A panic must unwind to the `catch_unwind`s below: with `panic = "abort"`
/// every invariant check would kill the Node process instead of failing
/// one call.
#[cfg(panic = "abort")]
compile_error!("ringkv-engine-napi needs panic = \"unwind\": panics become INTERNAL errors at the N-API boundary");

/// The text of a panic payload (`panic!` gives `&str` or `String`).
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs `f`, turning a panic into `INTERNAL: engine panicked: ...`. Every
/// export's body and both halves of every async job run inside one: a
/// panic crossing the `extern "C"` N-API callbacks would abort the process.
/// (`#[napi(catch_unwind)]` on the exports also covers napi's own argument
/// conversions, with an uncoded message.)
fn guard<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            let what = panic_text(panic.as_ref());
            // A payload whose Drop panics must not unwind from here.
            std::mem::forget(panic);
            Err(js_error("INTERNAL", &format!("engine panicked: {what}")))
        }
    }
}

/// Runs engine work, turning an engine error or a panic into a JS error.
fn guarded<T>(f: impl FnOnce() -> engine::error::Result<T>) -> Result<T> {
    guard(|| f().map_err(from_engine))
}

/// One unit of engine work for the libuv pool: `work` runs off the main
/// thread, `to_js` converts its result on the main thread.
pub struct Job<R: Send + 'static, J: ToNapiValue + TypeName> {
    work: Option<Box<dyn FnOnce() -> engine::error::Result<R> + Send>>,
    to_js: fn(R) -> Result<J>,
}

impl<R: Send + 'static, J: ToNapiValue + TypeName> Task for Job<R, J> {
    type Output = R;
    type JsValue = J;

    fn compute(&mut self) -> Result<R> {
        match self.work.take() {
            Some(work) => guarded(work),
            None => Err(js_error("INTERNAL", "job ran twice")),
        }
    }

    fn resolve(&mut self, _env: Env, output: R) -> Result<J> {
        // Runs in napi's completion callback on the main thread.
        let to_js = self.to_js;
        guard(move || to_js(output))
    }
}

fn job<R: Send + 'static, J: ToNapiValue + TypeName>(
    work: impl FnOnce() -> engine::error::Result<R> + Send + 'static,
    to_js: fn(R) -> Result<J>,
) -> AsyncTask<Job<R, J>> {
    AsyncTask::new(Job { work: Some(Box::new(work)), to_js })
}

fn buffer(v: Vec<u8>) -> Result<Buffer> {
    Ok(v.into())
}

fn maybe_buffer(v: Option<Vec<u8>>) -> Result<Option<Buffer>> {
    Ok(v.map(Buffer::from))
}

fn nothing(_: ()) -> Result<()> {
    Ok(())
}

fn mode(lww: bool) -> engine::Mode {
    if lww {
        engine::Mode::Lww
    } else {
        engine::Mode::Siblings
    }
}

#[napi(object)]
pub struct OpenOptions {
    pub path: String,
    pub node_id: String,
    pub epoch: Option<String>,
    pub partition_bits: Option<u32>,
    pub tree_branch_bits: Option<u32>,
    pub tree_segment_bits: Option<u32>,
    pub cache_bytes: Option<f64>,
    pub flush_every_ms: Option<u32>,
    pub max_key_bytes: Option<u32>,
    pub max_value_bytes: Option<u32>,
    pub max_siblings: Option<u32>,
}

#[napi(object)]
pub struct SegmentKey {
    pub bucket: Buffer,
    pub key: Buffer,
    pub hash: Buffer,
}

#[napi(object)]
pub struct KeyRecord {
    pub bucket: Buffer,
    pub key: Buffer,
    pub record: Buffer,
}

/// One page of `scanPartition`: `next` is the cursor to continue from, null
/// once the partition is exhausted.
#[napi(object)]
pub struct PartitionPage {
    pub items: Vec<KeyRecord>,
    #[napi(ts_type = "Buffer | null")]
    pub next: Option<Buffer>,
}

fn key_records(v: Vec<engine::KeyRecord>) -> Vec<KeyRecord> {
    v.into_iter()
        .map(|h| KeyRecord { bucket: h.bucket.into(), key: h.key.into(), record: h.record.into() })
        .collect()
}

fn small_bits(v: Option<u32>, default: u8) -> engine::error::Result<u8> {
    match v {
        None => Ok(default),
        Some(v) => u8::try_from(v).map_err(|_| engine::error::EngineError {
            code: engine::error::ErrorCode::InvalidArgument,
            message: format!("bit count {v} out of range"),
        }),
    }
}

fn config(o: OpenOptions) -> engine::error::Result<engine::Config> {
    let mut cfg = engine::Config::new(o.path, o.node_id);
    cfg.epoch = o.epoch;
    cfg.partition_bits = small_bits(o.partition_bits, cfg.partition_bits)?;
    cfg.tree_branch_bits = small_bits(o.tree_branch_bits, cfg.tree_branch_bits)?;
    cfg.tree_segment_bits = small_bits(o.tree_segment_bits, cfg.tree_segment_bits)?;
    if let Some(bytes) = o.cache_bytes {
        if !(bytes.is_finite() && bytes >= 0.0) {
            return Err(engine::error::EngineError {
                code: engine::error::ErrorCode::InvalidArgument,
                message: "cacheBytes must be a non-negative number".into(),
            });
        }
        cfg.cache_bytes = bytes as u64;
    }
    if let Some(ms) = o.flush_every_ms {
        cfg.flush_every_ms = if ms == 0 { None } else { Some(ms as u64) };
    }
    if let Some(v) = o.max_key_bytes {
        cfg.limits.max_key_bytes = v as usize;
    }
    if let Some(v) = o.max_value_bytes {
        cfg.limits.max_value_bytes = v as usize;
    }
    if let Some(v) = o.max_siblings {
        cfg.limits.max_siblings = v as usize;
    }
    Ok(cfg)
}

/// Opens (or creates) a data directory on the libuv pool.
#[napi(ts_return_type = "Promise<NativeEngine>", catch_unwind)]
pub fn open_engine(options: OpenOptions) -> Result<AsyncTask<Job<engine::Engine, NativeEngine>>> {
    guard(|| {
        Ok(job(
            move || engine::Engine::open(config(options)?),
            |e| Ok(NativeEngine { inner: Mutex::new(Some(Arc::new(e))) }),
        ))
    })
}

/// Ring position of `bucket ‖ 0 ‖ key`.
#[napi(catch_unwind)]
pub fn hash_key(bucket: &[u8], key: &[u8]) -> Result<BigInt> {
    guard(|| {
        guarded(|| engine::position(bucket, key)).map(BigInt::from)
    })
}

/// Ring positions of many keys packed as repeated
/// `{u16 bucketLen, bucket, u32 keyLen, key}`: one crossing for the batch.
#[napi(catch_unwind)]
pub fn hash_keys(packed: &[u8]) -> Result<Buffer> {
    guard(|| {
        guarded(|| engine::keys::positions_packed(packed)).map(Buffer::from)
    })
}

/// Reconciles records of one key in memory (`dvv::reconcile`): the merge
/// replicas run, without storage, for the coordinator's read path.
#[napi(catch_unwind)]
pub fn reconcile(records: Vec<Buffer>, lww: bool) -> Result<Buffer> {
    guard(|| {
        let slices: Vec<&[u8]> = records.iter().map(|r| r.as_ref()).collect();
        guarded(|| engine::dvv::reconcile(&slices, mode(lww))).map(Buffer::from)
    })
}

/// The size limits a detached coordination checks: the engine's own, as the
/// facade holds them (`EngineLimits`).
#[napi(object)]
pub struct Limits {
    pub max_key_bytes: u32,
    pub max_value_bytes: u32,
    pub max_siblings: u32,
}

/// Coordinates a new version of a key in memory with `actor` making the dot
/// (`dvv::coordinate_detached`): what `coordinate` makes on a key with no
/// stored record, without storage, for the fallback coordinator's one-off
/// actors. `content_type` and `meta` as for `coordinate` (unchecked here).
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn coordinate_detached(
    context: Option<&[u8]>,
    actor: &[u8],
    value: Option<&[u8]>,
    now: f64,
    lww: bool,
    content_type: Option<String>,
    meta: Option<Vec<String>>,
    limits: Limits,
) -> Result<Buffer> {
    guard(|| {
        let now = timestamp(now)?;
        let attrs = attributes(content_type, meta)?;
        let limits = engine::Limits {
            max_key_bytes: limits.max_key_bytes as usize,
            max_value_bytes: limits.max_value_bytes as usize,
            max_siblings: limits.max_siblings as usize,
        };
        guarded(|| engine::dvv::coordinate_detached(context.unwrap_or_default(), actor, value, &attrs, now, mode(lww), &limits))
            .map(Buffer::from)
    })
}

#[napi]
pub struct NativeEngine {
    // None once closed: dropping the last Arc releases sled's file lock so the
    // directory can be reopened in the same process.
    inner: Mutex<Option<Arc<engine::Engine>>>,
}

#[napi]
impl NativeEngine {
    fn engine(&self) -> Result<Arc<engine::Engine>> {
        let guard = self.inner.lock().map_err(|_| js_error("INTERNAL", "engine lock poisoned"))?;
        guard.clone().ok_or_else(|| js_error("CLOSED", "engine is closed"))
    }

    #[napi(getter, catch_unwind)]
    pub fn actor(&self) -> Result<String> {
        guard(|| {
            Ok(self.engine()?.actor().to_string())
        })
    }

    /// `[partitionBits, treeBranchBits, treeSegmentBits, maxKeyBytes, maxValueBytes, maxSiblings]`
    #[napi(catch_unwind)]
    pub fn settings(&self) -> Result<Vec<u32>> {
        guard(|| {
            let e = self.engine()?;
            let l = e.limits();
            Ok(vec![
                e.partition_bits() as u32,
                e.tree_branch_bits() as u32,
                e.tree_segment_bits() as u32,
                l.max_key_bytes as u32,
                l.max_value_bytes as u32,
                l.max_siblings as u32,
            ])
        })
    }

    /// `content_type` and `meta` (names and values alternating) are the new
    /// sibling's attributes, unchecked: the engine checks and sorts them.
    #[napi(ts_return_type = "Promise<Buffer>", catch_unwind)]
    #[allow(clippy::too_many_arguments)]
    pub fn coordinate(
        &self,
        bucket: &[u8],
        key: &[u8],
        context: Option<&[u8]>,
        value: Option<&[u8]>,
        now: f64,
        lww: bool,
        durable: bool,
        content_type: Option<String>,
        meta: Option<Vec<String>>,
    ) -> Result<AsyncTask<Job<Vec<u8>, Buffer>>> {
        guard(|| {
            let e = self.engine()?;
            let (bucket, key) = (bucket.to_vec(), key.to_vec());
            let context = context.map(<[u8]>::to_vec);
            let value = value.map(<[u8]>::to_vec);
            let now = timestamp(now)?;
            let attrs = attributes(content_type, meta)?;
            Ok(job(
                move || e.coordinate_with(&bucket, &key, context.as_deref(), value.as_deref(), &attrs, now, mode(lww), durable),
                buffer,
            ))
        })
    }

    /// `coordinate` on the calling thread, for writes that do not wait for
    /// disk: an in-memory apply costs microseconds, a pool hop costs more.
    #[napi(catch_unwind)]
    #[allow(clippy::too_many_arguments)]
    pub fn coordinate_sync(
        &self,
        bucket: &[u8],
        key: &[u8],
        context: Option<&[u8]>,
        value: Option<&[u8]>,
        now: f64,
        lww: bool,
        content_type: Option<String>,
        meta: Option<Vec<String>>,
    ) -> Result<Buffer> {
        guard(|| {
            let e = self.engine()?;
            let now = timestamp(now)?;
            let attrs = attributes(content_type, meta)?;
            guarded(|| e.coordinate_with(bucket, key, context, value, &attrs, now, mode(lww), false)).map(Buffer::from)
        })
    }

    /// `merge` on the calling thread, not durable (see `coordinate_sync`).
    #[napi(catch_unwind)]
    pub fn merge_sync(&self, bucket: &[u8], key: &[u8], record: &[u8], lww: bool) -> Result<Buffer> {
        guard(|| {
            let e = self.engine()?;
            guarded(|| e.merge(bucket, key, record, mode(lww), false)).map(Buffer::from)
        })
    }

    #[napi(ts_return_type = "Promise<Buffer>", catch_unwind)]
    pub fn merge(
        &self,
        bucket: &[u8],
        key: &[u8],
        record: &[u8],
        lww: bool,
        durable: bool,
    ) -> Result<AsyncTask<Job<Vec<u8>, Buffer>>> {
        guard(|| {
            let e = self.engine()?;
            let (bucket, key, record) = (bucket.to_vec(), key.to_vec(), record.to_vec());
            Ok(job(move || e.merge(&bucket, &key, &record, mode(lww), durable), buffer))
        })
    }

    /// Merges many records in one crossing; parallel arrays, one flag set for all.
    #[napi(ts_return_type = "Promise<Buffer[]>", catch_unwind)]
    pub fn merge_many(
        &self,
        buckets: Vec<Buffer>,
        keys: Vec<Buffer>,
        records: Vec<Buffer>,
        lww: Vec<bool>,
        durable: bool,
    ) -> Result<AsyncTask<Job<Vec<Vec<u8>>, Vec<Buffer>>>> {
        guard(|| {
            let e = self.engine()?;
            if keys.len() != buckets.len() || records.len() != buckets.len() || lww.len() != buckets.len() {
                return Err(js_error("INVALID_ARGUMENT", "mergeMany arrays differ in length"));
            }
            let items: Vec<(Vec<u8>, Vec<u8>, Vec<u8>, bool)> = buckets
                .iter()
                .zip(&keys)
                .zip(&records)
                .zip(&lww)
                .map(|(((b, k), r), l)| (b.to_vec(), k.to_vec(), r.to_vec(), *l))
                .collect();
            Ok(job(
                move || {
                    let last = items.len().saturating_sub(1);
                    items
                        .iter()
                        .enumerate()
                        // One flush for the batch: only the last merge waits for it.
                        .map(|(i, (b, k, r, l))| e.merge(b, k, r, mode(*l), durable && i == last))
                        .collect()
                },
                |v: Vec<Vec<u8>>| Ok(v.into_iter().map(Buffer::from).collect()),
            ))
        })
    }

    #[napi(ts_return_type = "Promise<Buffer | null>", catch_unwind)]
    pub fn get(&self, bucket: &[u8], key: &[u8]) -> Result<AsyncTask<Job<Option<Vec<u8>>, Option<Buffer>>>> {
        guard(|| {
            let e = self.engine()?;
            let (bucket, key) = (bucket.to_vec(), key.to_vec());
            Ok(job(move || e.get(&bucket, &key), maybe_buffer))
        })
    }

    /// `get` on the calling thread: a read from sled's cache costs about a
    /// microsecond, far less than a trip through the libuv pool.
    #[napi(catch_unwind)]
    pub fn get_sync(&self, bucket: &[u8], key: &[u8]) -> Result<Option<Buffer>> {
        guard(|| {
            let e = self.engine()?;
            guarded(|| e.get(bucket, key)).map(|v| v.map(Buffer::from))
        })
    }

    #[napi(ts_return_type = "Promise<Array<Buffer | null>>", catch_unwind)]
    pub fn get_many(
        &self,
        buckets: Vec<Buffer>,
        keys: Vec<Buffer>,
    ) -> Result<AsyncTask<Job<Vec<Option<Vec<u8>>>, Vec<Option<Buffer>>>>> {
        guard(|| {
            let e = self.engine()?;
            if keys.len() != buckets.len() {
                return Err(js_error("INVALID_ARGUMENT", "getMany arrays differ in length"));
            }
            let items: Vec<(Vec<u8>, Vec<u8>)> = buckets.iter().zip(&keys).map(|(b, k)| (b.to_vec(), k.to_vec())).collect();
            Ok(job(
                move || items.iter().map(|(b, k)| e.get(b, k)).collect(),
                |v: Vec<Option<Vec<u8>>>| Ok(v.into_iter().map(|r| r.map(Buffer::from)).collect()),
            ))
        })
    }

    #[napi(catch_unwind)]
    pub fn tree_roots(&self) -> Result<Buffer> {
        guard(|| {
            let e = self.engine()?;
            guarded(|| Ok(e.tree_roots())).map(Buffer::from)
        })
    }

    #[napi(catch_unwind)]
    pub fn tree_branches(&self, partition: u32) -> Result<Buffer> {
        guard(|| {
            let e = self.engine()?;
            guarded(|| e.tree_branches(partition)).map(Buffer::from)
        })
    }

    #[napi(catch_unwind)]
    pub fn tree_segments(&self, partition: u32, branch: u32) -> Result<Buffer> {
        guard(|| {
            let e = self.engine()?;
            guarded(|| e.tree_segments(partition, branch)).map(Buffer::from)
        })
    }

    #[napi(ts_return_type = "Promise<SegmentKey[]>", catch_unwind)]
    pub fn segment_keys(
        &self,
        partition: u32,
        segments: Vec<u32>,
    ) -> Result<AsyncTask<Job<Vec<engine::SegmentKey>, Vec<SegmentKey>>>> {
        guard(|| {
            let e = self.engine()?;
            Ok(job(
                move || e.segment_keys(partition, &segments),
                |v| {
                    Ok(v.into_iter()
                        .map(|s| SegmentKey { bucket: s.bucket.into(), key: s.key.into(), hash: s.hash.to_vec().into() })
                        .collect())
                },
            ))
        })
    }

    /// Objects of one partition in disk-key order, strictly after the cursor `after`.
    #[napi(ts_return_type = "Promise<PartitionPage>", catch_unwind)]
    pub fn scan_partition(
        &self,
        partition: u32,
        after: Option<&[u8]>,
        limit: u32,
    ) -> Result<AsyncTask<Job<engine::PartitionPage, PartitionPage>>> {
        guard(|| {
            let e = self.engine()?;
            let after = after.map(<[u8]>::to_vec);
            Ok(job(
                move || e.scan_partition(partition, after.as_deref(), limit as usize),
                |p| Ok(PartitionPage { items: key_records(p.items), next: p.next.map(Buffer::from) }),
            ))
        })
    }

    /// Deletes an all-tombstone object if it is still exactly `record`; flushed when true.
    #[napi(ts_return_type = "Promise<boolean>", catch_unwind)]
    pub fn reap(&self, bucket: &[u8], key: &[u8], record: &[u8]) -> Result<AsyncTask<Job<bool, bool>>> {
        guard(|| {
            let e = self.engine()?;
            let (bucket, key, record) = (bucket.to_vec(), key.to_vec(), record.to_vec());
            Ok(job(move || e.reap(&bucket, &key, &record), Ok))
        })
    }

    /// Deletes every object of one partition; resolves with how many (flushed).
    #[napi(ts_return_type = "Promise<number>", catch_unwind)]
    pub fn drop_partition(&self, partition: u32) -> Result<AsyncTask<Job<u64, f64>>> {
        guard(|| {
            let e = self.engine()?;
            Ok(job(move || e.drop_partition(partition), |n| Ok(n as f64)))
        })
    }

    #[napi(ts_return_type = "Promise<Buffer>", catch_unwind)]
    pub fn hint_put(
        &self,
        target: String,
        bucket: &[u8],
        key: &[u8],
        record: &[u8],
    ) -> Result<AsyncTask<Job<Vec<u8>, Buffer>>> {
        guard(|| {
            let e = self.engine()?;
            let (bucket, key, record) = (bucket.to_vec(), key.to_vec(), record.to_vec());
            Ok(job(move || e.hint_put(&target, &bucket, &key, &record), buffer))
        })
    }

    #[napi(ts_return_type = "Promise<KeyRecord[]>", catch_unwind)]
    pub fn hint_list(&self, target: String, limit: u32) -> Result<AsyncTask<Job<Vec<engine::KeyRecord>, Vec<KeyRecord>>>> {
        guard(|| {
            let e = self.engine()?;
            Ok(job(move || e.hint_list(&target, limit as usize), |v| Ok(key_records(v))))
        })
    }

    #[napi(ts_return_type = "Promise<boolean>", catch_unwind)]
    pub fn hint_delete(
        &self,
        target: String,
        bucket: &[u8],
        key: &[u8],
        record: &[u8],
    ) -> Result<AsyncTask<Job<bool, bool>>> {
        guard(|| {
            let e = self.engine()?;
            let (bucket, key, record) = (bucket.to_vec(), key.to_vec(), record.to_vec());
            Ok(job(move || e.hint_delete(&target, &bucket, &key, &record), Ok))
        })
    }

    #[napi(ts_return_type = "Promise<string[]>", catch_unwind)]
    pub fn hint_targets(&self) -> Result<AsyncTask<Job<Vec<String>, Vec<String>>>> {
        guard(|| {
            let e = self.engine()?;
            Ok(job(move || e.hint_targets(), Ok))
        })
    }

    #[napi(ts_return_type = "Promise<Buffer | null>", catch_unwind)]
    pub fn meta_get(&self, name: String) -> Result<AsyncTask<Job<Option<Vec<u8>>, Option<Buffer>>>> {
        guard(|| {
            let e = self.engine()?;
            Ok(job(move || e.meta_get(&name), maybe_buffer))
        })
    }

    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn meta_put(&self, name: String, value: &[u8]) -> Result<AsyncTask<Job<(), ()>>> {
        guard(|| {
            let e = self.engine()?;
            let value = value.to_vec();
            Ok(job(move || e.meta_put(&name, &value), nothing))
        })
    }

    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn flush(&self) -> Result<AsyncTask<Job<(), ()>>> {
        guard(|| {
            let e = self.engine()?;
            Ok(job(move || e.flush(), nothing))
        })
    }

    /// Test hook: panics inside the engine, on the calling thread, while
    /// holding the open store. Refused (INVALID_ARGUMENT) unless the
    /// environment has RINGKV_TEST_PANICS=1, read at each call, so a release
    /// build ships it inert.
    #[napi(js_name = "__panicForTest", catch_unwind)]
    pub fn panic_for_test(&self) -> Result<()> {
        guard(|| {
            test_panics_allowed()?;
            let e = self.engine()?;
            guarded(|| e.run_in_store_for_test(|| panic!("invariant: test panic on the calling thread")))
        })
    }

    /// Test hook as `__panicForTest`, in an async job: `stage` "work" panics
    /// on the libuv pool while holding the open store, "resolve" when
    /// converting the result on the main thread.
    #[napi(js_name = "__panicForTestAsync", ts_return_type = "Promise<void>", catch_unwind)]
    pub fn panic_for_test_async(&self, stage: String) -> Result<AsyncTask<Job<(), ()>>> {
        guard(|| {
            test_panics_allowed()?;
            let e = self.engine()?;
            match stage.as_str() {
                "work" => Ok(job(move || e.run_in_store_for_test(|| panic!("invariant: test panic on the pool")), nothing)),
                "resolve" => Ok(job(
                    move || e.run_in_store_for_test(|| ()),
                    |_: ()| -> Result<()> { panic!("invariant: test panic while resolving") },
                )),
                _ => Err(js_error("INVALID_ARGUMENT", "stage must be \"work\" or \"resolve\"")),
            }
        })
    }

    /// Flushes and lets go of the engine; in-flight jobs keep it alive until
    /// they finish, then sled closes.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn close(&self) -> Result<AsyncTask<Job<(), ()>>> {
        guard(|| {
            let taken = self.inner.lock().map_err(|_| js_error("INTERNAL", "engine lock poisoned"))?.take();
            let e = taken.ok_or_else(|| js_error("CLOSED", "engine is closed"))?;
            Ok(job(move || e.close(), nothing))
        })
    }
}

/// The test hooks run only when the environment asks for them.
fn test_panics_allowed() -> Result<()> {
    if std::env::var("RINGKV_TEST_PANICS").as_deref() == Ok("1") {
        Ok(())
    } else {
        Err(js_error("INVALID_ARGUMENT", "test hook: set RINGKV_TEST_PANICS=1 to enable"))
    }
}

fn timestamp(now: f64) -> Result<u64> {
    if now.is_finite() && now >= 0.0 && now <= 9_007_199_254_740_991.0 && now.fract() == 0.0 {
        Ok(now as u64)
    } else {
        Err(js_error("INVALID_ARGUMENT", "now must be a non-negative integer number of ms"))
    }
}

/// Standalone TicTac trees (the structure every write updates inside the
/// engine), for microbenchmarks and tests of the tree alone.
#[napi]
pub struct TicTacTrees {
    inner: engine::tictac::Trees,
}

#[napi]
impl TicTacTrees {
    #[napi(constructor, catch_unwind)]
    pub fn new(partition_bits: u32, branch_bits: u32, segment_bits: u32) -> Result<Self> {
        guard(|| {
            let bits = |v: u32| small_bits(Some(v), 0);
            let geometry = guarded(|| engine::keys::Geometry::new(bits(partition_bits)?, bits(branch_bits)?, bits(segment_bits)?))?;
            Ok(TicTacTrees { inner: engine::tictac::Trees::new(geometry) })
        })
    }

    /// XORs packed `(u64 position, u64 delta)` big-endian pairs into the
    /// trees: one crossing for a batch.
    #[napi(catch_unwind)]
    pub fn apply_packed(&self, packed: &[u8]) -> Result<()> {
        guard(|| {
            if packed.len() % 16 != 0 {
                return Err(js_error("INVALID_ARGUMENT", "packed updates must be 16 bytes each"));
            }
            for pair in packed.chunks_exact(16) {
                let (position, delta) = pair.split_at(8);
                let word = |b: &[u8]| u64::from_be_bytes(b.try_into().expect("8 bytes"));
                self.inner.apply(word(position), word(delta));
            }
            Ok(())
        })
    }

    #[napi(catch_unwind)]
    pub fn roots(&self) -> Result<Buffer> {
        guard(|| {
            Ok(self.inner.roots().into())
        })
    }
}
