//! The on-disk format of the embedded log: segment files of framed records.
//!
//! A segment is named by the sequence number of its first record (`00000000000000000042.seg`)
//! and holds records back to back, each `[length u32][crc32c u32][sequence u64][payload]`
//! (little-endian; the checksum covers the sequence number and the payload). A record is
//! valid only with the expected sequence number and a matching checksum, so recovery stops at
//! the first torn or stale record, and the bytes of a write that failed can never pass for the
//! record that later takes their place.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crc::{Crc, Table, CRC_32_ISCSI};

/// Bytes before each payload.
pub(super) const HEADER: usize = 16;
/// A length above this is corruption, not a record: the gateway's own body limit is far lower.
const MAX_RECORD: u32 = 64 << 20;

static CRC: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISCSI);

/// The checksum of a record's sequence number and payload.
fn checksum(seq: u64, payload: &[u8]) -> u32 {
    let mut digest = CRC.digest();
    digest.update(&seq.to_le_bytes());
    digest.update(payload);
    digest.finalize()
}

/// Appends the framed record `seq` to `buf`.
pub(super) fn frame(buf: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    // Payloads are bounded by the gateway's body limit, far below u32::MAX.
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&checksum(seq, payload).to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// The path of the segment whose first record is `first`.
pub(super) fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.seg"))
}

/// A consumed segment kept for the next one. Overwriting blocks a file already has lets
/// `fdatasync` flush only the data; appending to a growing file also commits its new size to
/// the file system's journal, which cost 1.3–1.7 times the CPU and 1.4–1.5 times the time per
/// sync here (8 KiB writes, ext4). The records it still holds have sequence numbers below any
/// the new segment will hold, so none of them can be read as the new segment's.
pub(super) fn spare_path(dir: &Path) -> PathBuf {
    dir.join("spare")
}

/// Retires a segment the consumer has passed: it becomes the spare unless there is one.
pub(super) fn retire(dir: &Path, first: u64) -> io::Result<()> {
    let path = segment_path(dir, first);
    if spare_path(dir).exists() {
        fs::remove_file(path)
    } else {
        fs::rename(path, spare_path(dir))
    }
}

/// The first sequence numbers of the segments in `dir`, in order.
pub(super) fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut firsts = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(first) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".seg"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        firsts.push(first);
    }
    firsts.sort_unstable();
    Ok(firsts)
}

/// Reads records of one segment in order from a known position.
pub(super) struct SegmentReader {
    file: io::BufReader<File>,
    /// The segment's first sequence number.
    pub(super) first: u64,
    /// The sequence number of the next record.
    pub(super) seq: u64,
    /// Its byte offset.
    pub(super) offset: u64,
}

impl SegmentReader {
    /// Opens the segment starting at `first`, positioned at its first record.
    pub(super) fn open(dir: &Path, first: u64) -> io::Result<SegmentReader> {
        let file = File::open(segment_path(dir, first))?;
        Ok(SegmentReader {
            file: io::BufReader::with_capacity(256 * 1024, file),
            first,
            seq: first,
            offset: 0,
        })
    }

    /// Drops what is buffered past the next record, so it is read again from the file: the
    /// buffer may hold bytes read while the writer was mid-record.
    pub(super) fn reread(&mut self) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(self.offset))?;
        Ok(())
    }

    /// The next valid record, or `None` at the end of what was durably written.
    pub(super) fn next_record(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut header = [0u8; HEADER];
        if !read_full(&mut self.file, &mut header)? {
            return Ok(None);
        }
        let [l0, l1, l2, l3, c0, c1, c2, c3, s @ ..] = header;
        let length = u32::from_le_bytes([l0, l1, l2, l3]);
        let crc = u32::from_le_bytes([c0, c1, c2, c3]);
        let seq = u64::from_le_bytes(s);
        if seq != self.seq || length > MAX_RECORD {
            return Ok(None);
        }
        let mut payload = vec![0u8; length as usize];
        if !read_full(&mut self.file, &mut payload)? || checksum(seq, &payload) != crc {
            return Ok(None);
        }
        self.seq += 1;
        self.offset += (HEADER + payload.len()) as u64;
        Ok(Some(payload))
    }

    /// Skips to record `seq` (at or after the current one); false when the segment ends first.
    pub(super) fn skip_to(&mut self, seq: u64) -> io::Result<bool> {
        while self.seq < seq {
            if self.next_record()?.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Fills `buf`; false when the file ends first (a torn tail reads as the end).
fn read_full(file: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// The segment being appended to.
pub(super) struct Active {
    pub(super) file: File,
    /// Where the next record goes: the end of the last durable one.
    pub(super) offset: u64,
    /// A failed write could not be cut off; appending after it could let its bytes be read
    /// back, so nothing more is appended until a restart recovers the segment.
    poisoned: bool,
}

impl Active {
    /// Opens the last segment, finds the end of its valid records and cuts off what follows
    /// (a group that was being written when the process died, never acknowledged). Returns it
    /// with the sequence number of the next record.
    pub(super) fn recover(dir: &Path, first: u64) -> io::Result<(Active, u64)> {
        let mut reader = SegmentReader::open(dir, first)?;
        while reader.next_record()?.is_some() {}
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(segment_path(dir, first))?;
        if file.metadata()?.len() != reader.offset {
            file.set_len(reader.offset)?;
            file.sync_all()?;
        }
        Ok((
            Active {
                file,
                offset: reader.offset,
                poisoned: false,
            },
            reader.seq,
        ))
    }

    /// Creates the segment starting at `first`, from the spare when there is one, and makes
    /// its name durable.
    pub(super) fn create(dir: &Path, first: u64) -> io::Result<Active> {
        let path = segment_path(dir, first);
        let file = match fs::rename(spare_path(dir), &path) {
            Ok(()) => OpenOptions::new().read(true).write(true).open(&path)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)?,
            Err(e) => return Err(e),
        };
        File::open(dir)?.sync_all()?;
        Ok(Active {
            file,
            offset: 0,
            poisoned: false,
        })
    }

    /// Writes `framed` after the last record and syncs it. On failure the segment is cut back
    /// to its last durable record, so nothing of the failed write can be read later.
    pub(super) fn append(&mut self, framed: &[u8]) -> io::Result<()> {
        if self.poisoned {
            return Err(io::Error::other(
                "an earlier failed write could not be undone; restart the gateway to recover the log",
            ));
        }
        let written = self
            .file
            .write_all_at(framed, self.offset)
            .and_then(|()| self.file.sync_data());
        if written.is_ok() {
            self.offset += framed.len() as u64;
        } else if self.file.set_len(self.offset).is_err() {
            self.poisoned = true;
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_and_a_torn_or_stale_tail_reads_as_the_end() {
        let dir = tempfile::tempdir().expect("dir");
        let mut active = Active::create(dir.path(), 7).expect("create");
        let mut buf = Vec::new();
        frame(&mut buf, 7, b"first");
        frame(&mut buf, 8, b"second");
        active.append(&buf).expect("append");
        // A torn record: a header promising more bytes than follow.
        let mut torn = Vec::new();
        frame(&mut torn, 9, b"never finished");
        torn.truncate(HEADER + 3);
        active
            .file
            .write_all_at(&torn, active.offset)
            .expect("write torn");
        let (active, next) = Active::recover(dir.path(), 7).expect("recover");
        assert_eq!(next, 9);
        assert_eq!(
            active.offset,
            (2 * HEADER + "first".len() + "second".len()) as u64
        );
        assert_eq!(
            std::fs::metadata(segment_path(dir.path(), 7))
                .expect("meta")
                .len(),
            active.offset,
            "the torn tail is cut off"
        );

        // A whole, well-formed record with the wrong sequence number is not the next record.
        let mut stale = Vec::new();
        frame(&mut stale, 3, b"stale");
        active
            .file
            .write_all_at(&stale, active.offset)
            .expect("write stale");
        let mut reader = SegmentReader::open(dir.path(), 7).expect("open");
        assert_eq!(reader.next_record().expect("read"), Some(b"first".to_vec()));
        assert_eq!(
            reader.next_record().expect("read"),
            Some(b"second".to_vec())
        );
        assert_eq!(reader.next_record().expect("read"), None);

        // One flipped payload byte fails the checksum.
        let path = segment_path(dir.path(), 7);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[HEADER + 1] ^= 1;
        std::fs::write(&path, bytes).expect("write");
        let mut reader = SegmentReader::open(dir.path(), 7).expect("open");
        assert_eq!(reader.next_record().expect("read"), None);
    }
}
