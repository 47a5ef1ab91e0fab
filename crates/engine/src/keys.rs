//! Object names and their place on the ring: bkey, position, partition,
//! branch, segment and the on-disk key (docs/engine.md, "Names" and
//! "Ring position, partition, segment").

use crate::error::{err, ErrorCode, Result};

pub const MAX_BUCKET_BYTES: usize = 255;
/// Hard maximum key length, independent of the configured limit.
pub const HARD_MAX_KEY_BYTES: usize = 65535;
/// Length of the position prefix of a disk key.
pub const POSITION_BYTES: usize = 8;

/// Bucket: 1..=255 bytes, no 0x00 (the 0x00 separates it from the key in a bkey).
pub fn check_bucket(bucket: &[u8]) -> Result<()> {
    if bucket.is_empty() {
        return err(ErrorCode::InvalidArgument, "bucket is empty");
    }
    if bucket.len() > MAX_BUCKET_BYTES {
        return err(
            ErrorCode::InvalidArgument,
            "bucket is longer than 255 bytes",
        );
    }
    if bucket.contains(&0) {
        return err(ErrorCode::InvalidArgument, "bucket contains a 0x00 byte");
    }
    Ok(())
}

/// Key: 1..=`max` bytes, any bytes.
pub fn check_key(key: &[u8], max: usize) -> Result<()> {
    if key.is_empty() {
        return err(ErrorCode::InvalidArgument, "key is empty");
    }
    if key.len() > max {
        return err(
            ErrorCode::KeyTooLarge,
            format!("key is longer than {max} bytes"),
        );
    }
    Ok(())
}

/// `bucket ‖ 0x00 ‖ key`; callers validate the parts first.
pub fn bkey(bucket: &[u8], key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bucket.len() + 1 + key.len());
    out.extend_from_slice(bucket);
    out.push(0);
    out.extend_from_slice(key);
    out
}

/// First 8 bytes of blake3(bkey), big-endian.
pub fn position_of_bkey(bkey: &[u8]) -> u64 {
    let hash = blake3::hash(bkey);
    let mut head = [0u8; 8];
    head.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_be_bytes(head)
}

/// Ring position of (bucket, key); checks only the shape, not configured limits.
pub fn position(bucket: &[u8], key: &[u8]) -> Result<u64> {
    check_bucket(bucket)?;
    check_key(key, HARD_MAX_KEY_BYTES)?;
    Ok(position_of_bkey(&bkey(bucket, key)))
}

/// Ring positions of many keys packed as repeated
/// `{u16 bucketLen, bucket, u32 keyLen, key}` (one N-API crossing for a
/// batch); returns 8 big-endian bytes per key, in order.
pub fn positions_packed(packed: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = packed;
    while !rest.is_empty() {
        let (bucket, after) = take_prefixed(rest, 2)?;
        let (key, after) = take_prefixed(after, 4)?;
        out.extend_from_slice(&position(bucket, key)?.to_be_bytes());
        rest = after;
    }
    Ok(out)
}

/// Splits a big-endian length prefix of `width` bytes and that many bytes off `buf`.
fn take_prefixed(buf: &[u8], width: usize) -> Result<(&[u8], &[u8])> {
    let truncated = || err(ErrorCode::InvalidArgument, "packed key batch is truncated");
    if buf.len() < width {
        return truncated();
    }
    let len = buf[..width].iter().fold(0usize, |n, b| (n << 8) | *b as usize);
    let body = &buf[width..];
    if body.len() < len {
        return truncated();
    }
    Ok(body.split_at(len))
}

/// `position ‖ bkey`: sorting by it groups partitions, branches and segments.
pub fn disk_key(position: u64, bkey: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(POSITION_BYTES + bkey.len());
    out.extend_from_slice(&position.to_be_bytes());
    out.extend_from_slice(bkey);
    out
}

/// A disk key split back into its parts.
pub struct DiskKey<'a> {
    pub position: u64,
    pub bkey: &'a [u8],
    pub bucket: &'a [u8],
    pub key: &'a [u8],
}

/// Inverse of [`disk_key`]; `None` for bytes no disk key can have.
pub fn split_disk_key(dk: &[u8]) -> Option<DiskKey<'_>> {
    if dk.len() < POSITION_BYTES + 3 {
        return None;
    }
    let (head, bkey) = dk.split_first_chunk::<POSITION_BYTES>()?;
    let position = u64::from_be_bytes(*head);
    let sep = bkey.iter().position(|&b| b == 0)?;
    let (bucket, key) = (&bkey[..sep], &bkey[sep + 1..]);
    if bucket.is_empty() || key.is_empty() {
        return None;
    }
    Some(DiskKey {
        position,
        bkey,
        bucket,
        key,
    })
}

/// The ring and tree shape: Q = 2^partition_bits partitions, each with
/// 2^branch_bits branches of 2^segment_bits segments.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Geometry {
    pub partition_bits: u8,
    pub branch_bits: u8,
    pub segment_bits: u8,
}

impl Geometry {
    pub fn new(partition_bits: u8, branch_bits: u8, segment_bits: u8) -> Result<Geometry> {
        if !(1..=16).contains(&partition_bits) {
            return err(ErrorCode::InvalidArgument, "partitionBits must be 1..=16");
        }
        if !(1..=12).contains(&branch_bits) || !(1..=12).contains(&segment_bits) {
            return err(
                ErrorCode::InvalidArgument,
                "treeBranchBits and treeSegmentBits must be 1..=12",
            );
        }
        if partition_bits as u32 + branch_bits as u32 + segment_bits as u32 > 32 {
            return err(
                ErrorCode::InvalidArgument,
                "partitionBits + treeBranchBits + treeSegmentBits must be <= 32",
            );
        }
        Ok(Geometry {
            partition_bits,
            branch_bits,
            segment_bits,
        })
    }

    pub fn partitions(&self) -> u32 {
        1 << self.partition_bits
    }

    pub fn branches(&self) -> u32 {
        1 << self.branch_bits
    }

    pub fn segments_per_branch(&self) -> u32 {
        1 << self.segment_bits
    }

    /// Segments in one partition: 2^(B+S).
    pub fn segments(&self) -> u32 {
        1 << (self.branch_bits + self.segment_bits)
    }

    pub fn partition(&self, position: u64) -> u32 {
        (position >> (64 - self.partition_bits as u32)) as u32
    }

    /// Segment within the partition: the B+S bits after the partition bits.
    pub fn segment(&self, position: u64) -> u32 {
        let shift = 64 - (self.partition_bits + self.branch_bits + self.segment_bits) as u32;
        ((position >> shift) as u32) & (self.segments() - 1)
    }

    pub fn branch_of_segment(&self, segment: u32) -> u32 {
        segment >> self.segment_bits
    }

    pub fn check_partition(&self, partition: u32) -> Result<()> {
        if partition >= self.partitions() {
            return err(
                ErrorCode::InvalidArgument,
                format!("partition {partition} out of range"),
            );
        }
        Ok(())
    }

    pub fn check_branch(&self, branch: u32) -> Result<()> {
        if branch >= self.branches() {
            return err(
                ErrorCode::InvalidArgument,
                format!("branch {branch} out of range"),
            );
        }
        Ok(())
    }

    pub fn check_segment(&self, segment: u32) -> Result<()> {
        if segment >= self.segments() {
            return err(
                ErrorCode::InvalidArgument,
                format!("segment {segment} out of range"),
            );
        }
        Ok(())
    }

    /// Disk-key range `[start, end)` holding one partition; `end` is `None`
    /// for the last partition.
    pub fn partition_range(&self, partition: u32) -> ([u8; 8], Option<[u8; 8]>) {
        let shift = 64 - self.partition_bits as u32;
        let start = (partition as u64) << shift;
        let end = (partition + 1 < self.partitions()).then(|| (((partition + 1) as u64) << shift).to_be_bytes());
        (start.to_be_bytes(), end)
    }

    /// Disk-key range `[start, end)` holding one segment of a partition;
    /// `end` is `None` for the last segment of the ring.
    pub fn segment_range(&self, partition: u32, segment: u32) -> ([u8; 8], Option<[u8; 8]>) {
        let prefix_bits = (self.partition_bits + self.branch_bits + self.segment_bits) as u32;
        let global =
            ((partition as u64) << (self.branch_bits + self.segment_bits)) | segment as u64;
        let shift = 64 - prefix_bits;
        let start = global << shift;
        let end = (global + 1 < 1u64 << prefix_bits).then(|| ((global + 1) << shift).to_be_bytes());
        (start.to_be_bytes(), end)
    }
}

/// A scan cursor: the disk key of an object of `partition` (the object need
/// not exist). `None` unless it is `position ‖ bkey` with a valid bucket, a
/// key of 1..=65535 bytes, the bkey's own position, and that position in
/// `partition`.
pub fn check_cursor(geometry: &Geometry, partition: u32, cursor: &[u8]) -> Result<()> {
    let valid = split_disk_key(cursor).is_some_and(|dk| {
        dk.bucket.len() <= MAX_BUCKET_BYTES
            && dk.key.len() <= HARD_MAX_KEY_BYTES
            && position_of_bkey(dk.bkey) == dk.position
            && geometry.partition(dk.position) == partition
    });
    if !valid {
        return err(
            ErrorCode::InvalidArgument,
            format!("cursor is not a disk key of partition {partition}"),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_positions_match_single_positions() {
        let mut packed = Vec::new();
        for (b, k) in [(&b"b"[..], &b"k"[..]), (&b"cart"[..], &[0u8, 1, 2][..])] {
            packed.extend_from_slice(&(b.len() as u16).to_be_bytes());
            packed.extend_from_slice(b);
            packed.extend_from_slice(&(k.len() as u32).to_be_bytes());
            packed.extend_from_slice(k);
        }
        let out = positions_packed(&packed).unwrap();
        assert_eq!(&out[..8], &position(b"b", b"k").unwrap().to_be_bytes());
        assert_eq!(&out[8..], &position(b"cart", &[0, 1, 2]).unwrap().to_be_bytes());
        assert!(positions_packed(&[]).unwrap().is_empty());
        let truncated = &packed[..packed.len() - 1];
        assert_eq!(positions_packed(truncated).unwrap_err().code, ErrorCode::InvalidArgument);
    }

    #[test]
    fn bucket_and_key_rules() {
        assert!(check_bucket(b"b").is_ok());
        assert!(check_bucket(&[b'x'; 255]).is_ok());
        for bad in [&b""[..], &[b'x'; 256][..], &b"a\0b"[..]] {
            assert_eq!(
                check_bucket(bad).unwrap_err().code,
                ErrorCode::InvalidArgument
            );
        }
        assert_eq!(
            check_key(b"", 10).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            check_key(&[0; 11], 10).unwrap_err().code,
            ErrorCode::KeyTooLarge
        );
        assert!(check_key(&[0; 10], 10).is_ok());
        assert_eq!(
            position(b"b", &[1; 65536]).unwrap_err().code,
            ErrorCode::KeyTooLarge
        );
        assert!(position(b"b", &[1; 65535]).is_ok());
    }

    #[test]
    fn position_is_blake3_prefix() {
        let h = blake3::hash(b"b\0k");
        let want = u64::from_be_bytes(h.as_bytes()[..8].try_into().unwrap());
        assert_eq!(position(b"b", b"k").unwrap(), want);
    }

    #[test]
    fn disk_key_round_trip() {
        let bk = bkey(b"bucket", b"k\0ey");
        let dk = disk_key(42, &bk);
        let parts = split_disk_key(&dk).unwrap();
        assert_eq!(parts.position, 42);
        assert_eq!(parts.bucket, b"bucket");
        assert_eq!(parts.key, b"k\0ey");
        assert!(split_disk_key(b"short").is_none());
    }

    #[test]
    fn partition_ranges_and_cursors() {
        let g = Geometry::new(3, 2, 2).unwrap();
        assert_eq!(g.partition_range(0), ([0; 8], Some(0x2000_0000_0000_0000u64.to_be_bytes())));
        assert_eq!(g.partition_range(7), (0xE000_0000_0000_0000u64.to_be_bytes(), None));
        let g16 = Geometry::new(16, 8, 8).unwrap();
        assert_eq!(g16.partition_range(0xFFFF).1, None);
        let bk = bkey(b"b", b"k");
        let pos = position_of_bkey(&bk);
        let p = g.partition(pos);
        let dk = disk_key(pos, &bk);
        assert!(check_cursor(&g, p, &dk).is_ok());
        assert!(check_cursor(&g, (p + 1) % 8, &dk).is_err());
        assert!(check_cursor(&g, p, &dk[..dk.len() - 1]).is_err());
        assert!(check_cursor(&g, p, &disk_key(pos ^ 1, &bk)).is_err());
        assert!(check_cursor(&g, p, &[]).is_err());
        let long = bkey(&[b'x'; 256], b"k");
        let lp = position_of_bkey(&long);
        assert!(check_cursor(&g, g.partition(lp), &disk_key(lp, &long)).is_err());
    }

    #[test]
    fn geometry_math() {
        let g = Geometry::new(6, 8, 8).unwrap();
        let pos: u64 = 0xABCD_EF01_2345_6789;
        assert_eq!(g.partition(pos), (pos >> 58) as u32);
        assert_eq!(g.segment(pos), ((pos >> 42) & 0xFFFF) as u32);
        assert_eq!(g.branch_of_segment(g.segment(pos)), g.segment(pos) >> 8);
        let (start, end) = g.segment_range(g.partition(pos), g.segment(pos));
        assert!(start <= pos.to_be_bytes() && pos.to_be_bytes() < end.unwrap());
        let (_, last) = g.segment_range(63, 65535);
        assert!(last.is_none());
        assert!(Geometry::new(0, 8, 8).is_err());
        assert!(Geometry::new(16, 12, 5).is_err());
        assert!(Geometry::new(16, 8, 8).is_ok());
        assert!(Geometry::new(6, 13, 1).is_err());
        let g = Geometry::new(16, 8, 8).unwrap();
        let (s, e) = g.segment_range(0xFFFF, 0xFFFF);
        assert_eq!(u64::from_be_bytes(s), 0xFFFF_FFFF_0000_0000);
        assert!(e.is_none());
    }
}
