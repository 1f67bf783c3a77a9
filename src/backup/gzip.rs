//! Writing a stream of chunks into a compressed file on a blocking thread, so the async side
//! (the Docker stream) never waits on the disk or the compressor.
use std::io::Read;
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

/// A gzip writer that compresses on every core (output readable by `gzip -d` and `tar xzf`).
/// Level 1: uploads (photos, PDFs) barely compress; time matters more than a few percent.
pub fn parallel_gzip(file: std::fs::File) -> Result<impl gzp::ZWriter<std::fs::File>, String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let builder = gzp::par::compress::ParCompressBuilder::<gzp::deflate::Gzip>::new()
        .compression_level(gzp::Compression::new(1));
    let builder = builder.num_threads(threads).map_err(|e| e.to_string())?;
    Ok(builder.from_writer(file))
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
