//! Writing a stream of chunks into a compressed file on a blocking thread, so the async side
//! (the Docker stream) never waits on the disk or the compressor.
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use bytes::Bytes;

/// A `Read` over chunks arriving on a channel (the blocking side of a Docker stream).
pub struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl ChannelReader {
    pub fn new(rx: mpsc::Receiver<Bytes>) -> ChannelReader {
        ChannelReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.recv() {
                Ok(chunk) => self.current = chunk,
                // The sender is gone: end of stream.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// Creates `path` (mode 0600, must not exist) and returns it with a handle kept for fsync.
pub fn create_private(path: &Path) -> std::io::Result<(std::fs::File, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    let sync_handle = file.try_clone()?;
    Ok((file, sync_handle))
}

/// Input bytes per gzip member: each member's level is chosen from a sample of its start, so
/// a data dir of photos and text gets each part at the level it needs.
const SEGMENT: u64 = 64 << 20;
/// Bytes of a member's start compressed on the side to judge whether it compresses.
const SAMPLE: usize = 256 << 10;

/// A gzip writer that compresses on every core, in members of up to `SEGMENT` input bytes
/// (concatenated members are one gzip file to `gzip -d`, `tar xzf` and Docker). A member whose
/// sample does not shrink by a tenth at level 1 (photos, video, archives) is stored: level 1
/// on incompressible data costs most of a backup's time and saves under a percent.
pub struct AdaptiveGzip {
    threads: usize,
    segment_bytes: u64,
    /// The file, while no member is open.
    file: Option<std::fs::File>,
    member: Option<gzp::par::compress::ParCompress<'static, gzp::deflate::Gzip, std::fs::File>>,
    in_member: u64,
    /// The start of the next member, until it is long enough to judge.
    sample: Vec<u8>,
    members: u32,
    stored: u32,
}

impl AdaptiveGzip {
    pub fn new(file: std::fs::File) -> AdaptiveGzip {
        // Two at most: more threads buy little on the small servers hoist is for, and each
        // holds its buffers.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
        AdaptiveGzip::with_segment(file, threads, SEGMENT)
    }

    fn with_segment(file: std::fs::File, threads: usize, segment_bytes: u64) -> AdaptiveGzip {
        AdaptiveGzip {
            threads,
            segment_bytes,
            file: Some(file),
            member: None,
            in_member: 0,
            sample: Vec::new(),
            members: 0,
            stored: 0,
        }
    }

    /// Opens a member at the level the sample calls for, and writes the sample into it.
    fn open_member(&mut self) -> std::io::Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| std::io::Error::other("the gzip file is already closed"))?;
        let stored = !compresses(&self.sample);
        let level = gzp::Compression::new(if stored { 0 } else { 1 });
        let builder = gzp::par::compress::ParCompressBuilder::<gzp::deflate::Gzip>::new()
            .compression_level(level)
            .num_threads(self.threads)
            .map_err(std::io::Error::other)?;
        let mut member = builder.from_writer(file);
        member.write_all(&self.sample)?;
        self.in_member = self.sample.len() as u64;
        self.sample.clear();
        self.members += 1;
        self.stored += u32::from(stored);
        self.member = Some(member);
        Ok(())
    }

    fn close_member(&mut self) -> std::io::Result<()> {
        if let Some(mut member) = self.member.take() {
            let file = gzp::ZWriter::finish(&mut member).map_err(gzp_io)?;
            self.file = Some(file);
        }
        Ok(())
    }

    /// Writes what is left and the last member's trailer; the file back, with how many
    /// members were written and how many of them stored.
    pub fn finish(mut self) -> std::io::Result<(std::fs::File, u32, u32)> {
        if self.member.is_none() && (!self.sample.is_empty() || self.members == 0) {
            self.open_member()?;
        }
        self.close_member()?;
        let file = self
            .file
            .take()
            .ok_or_else(|| std::io::Error::other("the gzip file is already closed"))?;
        Ok((file, self.members, self.stored))
    }
}

/// A compressor's error as an I/O error, a full disk kept recognisable.
fn gzp_io(e: gzp::GzpError) -> std::io::Error {
    match e {
        gzp::GzpError::Io(e) => e,
        e => std::io::Error::other(e.to_string()),
    }
}

/// Whether `sample` shrinks by at least a tenth at level 1.
fn compresses(sample: &[u8]) -> bool {
    if sample.len() < 4096 {
        return true;
    }
    let mut encoder =
        flate2::write::DeflateEncoder::new(Counter::default(), flate2::Compression::new(1));
    if encoder.write_all(sample).is_err() {
        return true;
    }
    encoder
        .finish()
        .is_ok_and(|c| c.0 * 10 < sample.len() as u64 * 9)
}

/// A sink that counts what it is given.
#[derive(Default)]
struct Counter(u64);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Write for AdaptiveGzip {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.member.is_none() {
            let take = buf.len().min(SAMPLE - self.sample.len());
            self.sample.extend_from_slice(&buf[..take]);
            if self.sample.len() == SAMPLE {
                self.open_member()?;
            }
            return Ok(take);
        }
        let room = self.segment_bytes.saturating_sub(self.in_member);
        let take = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let written = match self.member.as_mut() {
            Some(member) => member.write(&buf[..take])?,
            None => 0,
        };
        self.in_member += written as u64;
        if self.in_member >= self.segment_bytes {
            self.close_member()?;
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.member.as_mut() {
            Some(m) => m.flush(),
            None => Ok(()),
        }
    }
}

/// A reader that hashes (sha256) and counts what passes through it: the file's digest taken
/// on the read that verifies it, not on a second read.
pub struct Hashing<R> {
    inner: R,
    hasher: sha2::Sha256,
    size: u64,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Hashing<R> {
        use sha2::Digest;
        Hashing {
            inner,
            hasher: sha2::Sha256::new(),
            size: 0,
        }
    }

    /// Reads what is left (a reader may stop before the end), then (sha256 hex, size).
    pub fn finish(mut self) -> std::io::Result<(String, u64)> {
        use sha2::Digest;
        std::io::copy(&mut self, &mut std::io::sink())?;
        Ok((hex::encode(self.hasher.finalize()), self.size))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// sha256 (hex) and size of a file, read in 1 MiB chunks.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// `name.tmp` beside `name`: where a file is written until it is complete.
pub fn temp_name(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that do not compress (a xorshift stream, as photos and video do not).
    fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            out.extend_from_slice(&seed.to_le_bytes());
        }
        out.truncate(len);
        out
    }

    fn text(len: usize) -> Vec<u8> {
        let line = b"2026-12-04 INFO worker indexed issue 42 in 3 ms (queue: search)\n";
        line.iter().copied().cycle().take(len).collect()
    }

    fn written(input: &[u8], segment: u64, writes: usize) -> (Vec<u8>, u32, u32) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.gz");
        let mut gz = AdaptiveGzip::with_segment(std::fs::File::create(&path).unwrap(), 2, segment);
        for chunk in input.chunks(writes) {
            gz.write_all(chunk).unwrap();
        }
        let (file, members, stored) = gz.finish().unwrap();
        file.sync_all().unwrap();
        (std::fs::read(&path).unwrap(), members, stored)
    }

    fn gunzipped(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(gz)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn each_member_is_stored_or_compressed_as_its_data_calls_for() {
        // text, noise, text: three members of 1 MiB at most.
        let mut input = text(1 << 20);
        input.extend(noise(1 << 20, 7));
        input.extend(text(700 << 10));
        let (gz, members, stored) = written(&input, 1 << 20, 100_000);
        assert_eq!((members, stored), (3, 1));
        assert_eq!(gunzipped(&gz), input);
        // The noise is stored (a few bytes of framing more), the text compressed.
        assert!(gz.len() < (1 << 20) + (200 << 10), "{}", gz.len());
        assert!(gz.len() > 1 << 20);
    }

    #[test]
    fn gzip_itself_reads_the_members_as_one_file() {
        let mut input = noise(600 << 10, 3);
        input.extend(text(600 << 10));
        let (gz, members, _) = written(&input, 300 << 10, 4096);
        assert!(members >= 4, "{members}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gz");
        std::fs::write(&path, &gz).unwrap();
        let out = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, input);
    }

    #[test]
    fn little_or_nothing_still_makes_a_whole_gzip_file() {
        for input in [Vec::new(), b"x".to_vec(), text(5000)] {
            let (gz, members, _) = written(&input, 1 << 20, 1000);
            assert_eq!(members, 1);
            assert_eq!(gunzipped(&gz), input);
        }
    }

    #[test]
    fn the_digest_is_taken_on_the_read() {
        let data = noise(300_000, 9);
        let mut r = Hashing::new(&data[..]);
        let mut first = vec![0u8; 1000];
        r.read_exact(&mut first).unwrap();
        let (sha, size) = r.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, &data).unwrap();
        assert_eq!((sha, size), sha256_file(&path).unwrap());
    }
}
