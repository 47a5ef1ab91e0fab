//! TicTac Merkle trees (docs/engine.md, "TicTac trees"): one per partition,
//! XOR-combined leaf hashes so a write updates segment, branch and root in
//! O(1) with lock-free `fetch_xor`, in any order, from any thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, OnceLock};

use crate::codec::Record;
use crate::error::Result;
use crate::keys::Geometry;

/// `blake3("ringkv tictac leaf v1")`, the key of the leaf hash.
pub static LEAF_KEY: LazyLock<[u8; 32]> =
    LazyLock::new(|| *blake3::hash(b"ringkv tictac leaf v1").as_bytes());

/// The leaf message: the object's causal state without values or timestamps,
/// so replicas that agree on history agree on the hash.
pub fn leaf_message(bkey: &[u8], rec: &Record) -> Vec<u8> {
    let actors: usize = rec.context.keys().map(|a| a.len() + 9).sum();
    let mut msg = Vec::with_capacity(8 + bkey.len() + actors * 2);
    msg.extend_from_slice(&(bkey.len() as u32).to_be_bytes());
    msg.extend_from_slice(bkey);
    msg.extend_from_slice(&(rec.context.len() as u16).to_be_bytes());
    for (actor, counter) in &rec.context {
        msg.push(actor.len() as u8);
        msg.extend_from_slice(actor);
        msg.extend_from_slice(&counter.to_be_bytes());
    }
    msg.extend_from_slice(&(rec.siblings.len() as u16).to_be_bytes());
    for s in &rec.siblings {
        msg.push(s.dot.actor.len() as u8);
        msg.extend_from_slice(&s.dot.actor);
        msg.extend_from_slice(&s.dot.counter.to_be_bytes());
    }
    msg
}

/// First 8 bytes (big-endian) of the keyed blake3 of the leaf message.
pub fn leaf_hash(bkey: &[u8], rec: &Record) -> u64 {
    let hash = blake3::keyed_hash(&LEAF_KEY, &leaf_message(bkey, rec));
    let mut head = [0u8; 8];
    head.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_be_bytes(head)
}

struct PartitionTree {
    root: AtomicU64,
    branches: Box<[AtomicU64]>,
    segments: Box<[AtomicU64]>,
}

fn zeros(n: u32) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

fn to_be(values: impl Iterator<Item = u64>) -> Vec<u8> {
    values.flat_map(u64::to_be_bytes).collect()
}

/// All partitions' trees. A partition's arrays are allocated on its first
/// write; until then every hash in it reads as 0 (the empty XOR).
pub struct Trees {
    geometry: Geometry,
    parts: Box<[OnceLock<PartitionTree>]>,
}

impl Trees {
    pub fn new(geometry: Geometry) -> Trees {
        let parts = (0..geometry.partitions())
            .map(|_| OnceLock::new())
            .collect();
        Trees { geometry, parts }
    }

    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// XOR `delta` (old leaf ^ new leaf) into the segment, branch and root
    /// of `position`. Relaxed is enough: XOR commutes, and readers only
    /// need each word's own latest value.
    pub fn apply(&self, position: u64, delta: u64) {
        if delta == 0 {
            return;
        }
        let g = self.geometry;
        let part = self.parts[g.partition(position) as usize].get_or_init(|| PartitionTree {
            root: AtomicU64::new(0),
            branches: zeros(g.branches()),
            segments: zeros(g.segments()),
        });
        let segment = g.segment(position);
        // The geometry's bit math keeps both in range; the indexing below
        // would catch it too, but without naming the broken rule.
        debug_assert!(segment < g.segments(), "invariant: segment {segment} of a position is in range");
        debug_assert!(
            g.branch_of_segment(segment) < g.branches(),
            "invariant: the branch of segment {segment} is in range"
        );
        part.segments[segment as usize].fetch_xor(delta, Ordering::Relaxed);
        part.branches[g.branch_of_segment(segment) as usize].fetch_xor(delta, Ordering::Relaxed);
        part.root.fetch_xor(delta, Ordering::Relaxed);
    }

    /// Checks that every branch is the XOR of its segments and every root
    /// the XOR of its branches, naming the first level that is not. Only
    /// meaningful while no `apply` runs: one updates the three levels one
    /// after the other. O(Q * 2^(B+S)) for the partitions written so far.
    pub fn verify(&self) -> std::result::Result<(), String> {
        let g = self.geometry;
        let per = g.segments_per_branch() as usize;
        for (p, part) in self.parts.iter().enumerate() {
            let Some(t) = part.get() else { continue };
            let mut root = 0;
            for (b, branch) in t.branches.iter().enumerate() {
                let segs = &t.segments[b * per..(b + 1) * per];
                let x = segs.iter().fold(0, |acc, s| acc ^ s.load(Ordering::Relaxed));
                if x != branch.load(Ordering::Relaxed) {
                    return Err(format!("partition {p} branch {b} is not the XOR of its segments"));
                }
                root ^= x;
            }
            if root != t.root.load(Ordering::Relaxed) {
                return Err(format!("partition {p} root is not the XOR of its branches"));
            }
        }
        Ok(())
    }

    /// Q roots, 8 bytes big-endian each.
    pub fn roots(&self) -> Vec<u8> {
        to_be(
            self.parts
                .iter()
                .map(|p| p.get().map_or(0, |t| t.root.load(Ordering::Relaxed))),
        )
    }

    /// 2^B branch hashes of one partition.
    pub fn branches(&self, partition: u32) -> Result<Vec<u8>> {
        self.geometry.check_partition(partition)?;
        Ok(match self.parts[partition as usize].get() {
            Some(t) => to_be(t.branches.iter().map(|b| b.load(Ordering::Relaxed))),
            None => vec![0; self.geometry.branches() as usize * 8],
        })
    }

    /// 2^S segment hashes of one branch of one partition.
    pub fn segments(&self, partition: u32, branch: u32) -> Result<Vec<u8>> {
        self.geometry.check_partition(partition)?;
        self.geometry.check_branch(branch)?;
        let per = self.geometry.segments_per_branch() as usize;
        Ok(match self.parts[partition as usize].get() {
            Some(t) => {
                let start = branch as usize * per;
                to_be(
                    t.segments[start..start + per]
                        .iter()
                        .map(|s| s.load(Ordering::Relaxed)),
                )
            }
            None => vec![0; per * 8],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Context, Record};
    use crate::dvv::update;

    fn word(buf: &[u8], i: usize) -> u64 {
        u64::from_be_bytes(buf[i * 8..i * 8 + 8].try_into().unwrap())
    }

    #[test]
    fn leaf_ignores_values_and_timestamps() {
        let a = update(&Record::default(), &Context::new(), b"n", Some(b"x"), &Default::default(), 1).unwrap();
        let b = update(&Record::default(), &Context::new(), b"n", Some(b"y"), &Default::default(), 2).unwrap();
        assert_eq!(leaf_hash(b"b\0k", &a), leaf_hash(b"b\0k", &b));
        assert_ne!(leaf_hash(b"b\0k", &a), leaf_hash(b"b\0j", &a));
        let c = update(&a, &a.context, b"n", Some(b"x"), &Default::default(), 1).unwrap();
        assert_ne!(leaf_hash(b"b\0k", &a), leaf_hash(b"b\0k", &c));
    }

    #[test]
    fn xor_levels_stay_consistent() {
        let g = Geometry::new(2, 2, 2).unwrap();
        let t = Trees::new(g);
        assert_eq!(t.roots(), vec![0; 32]);
        let positions = [0u64, 1 << 62, (1 << 62) | (1 << 58), u64::MAX, 12345 << 40];
        for (i, &p) in positions.iter().enumerate() {
            t.apply(p, 0x1111 * (i as u64 + 1));
        }
        for p in 0..4 {
            let branches = t.branches(p).unwrap();
            let mut root = 0;
            for b in 0..4 {
                let segs = t.segments(p, b).unwrap();
                let x = (0..4).fold(0, |acc, i| acc ^ word(&segs, i));
                assert_eq!(x, word(&branches, b as usize));
                root ^= x;
            }
            assert_eq!(root, word(&t.roots(), p as usize));
        }
        // Undoing every delta returns to all zeros.
        for (i, &p) in positions.iter().enumerate() {
            t.apply(p, 0x1111 * (i as u64 + 1));
        }
        assert_eq!(t.roots(), vec![0; 32]);
        assert!(t.branches(4).is_err());
        assert!(t.segments(0, 4).is_err());
    }

    #[test]
    fn verify_names_an_inconsistent_level() {
        let t = Trees::new(Geometry::new(2, 2, 2).unwrap());
        assert_eq!(t.verify(), Ok(()));
        for (i, p) in [0u64, 1 << 62, u64::MAX, 7 << 55].into_iter().enumerate() {
            t.apply(p, 0xABCD << i);
        }
        assert_eq!(t.verify(), Ok(()));
        let part = t.parts[3].get().unwrap();
        part.segments[5].fetch_xor(1, Ordering::Relaxed);
        assert_eq!(t.verify(), Err("partition 3 branch 1 is not the XOR of its segments".into()));
        part.branches[1].fetch_xor(1, Ordering::Relaxed);
        assert_eq!(t.verify(), Err("partition 3 root is not the XOR of its branches".into()));
        part.root.fetch_xor(1, Ordering::Relaxed);
        assert_eq!(t.verify(), Ok(()));
    }
}
