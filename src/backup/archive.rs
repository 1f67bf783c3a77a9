//! A data mount archived as `.tar.gz`, read through the container archive endpoint (bind mounts
//! and named volumes alike) and re-rooted so that the archive holds the mount's content:
//! `tar xzf data.tar.gz -C <mount source>` puts it back. Compressed on every core.
use std::io::Read;
use std::path::{Path, PathBuf};

use super::BackupError;
use super::gzip::{self, ChannelReader};
use crate::docker::{Engine, exec};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ArchiveStats {
    pub files: u64,
    /// Bytes of file content (uncompressed).
    pub bytes: u64,
}

/// Archives `path` of `container` into `dest`; `read` hears the bytes of the engine's tar
/// stream read so far. Returns what it holds, and the file's sha256 and size (taken on the
/// read that verified it).
pub async fn archive(
    engine: &Engine,
    container: &str,
    path: &str,
    dest: &Path,
    read: &(dyn Fn(u64) + Sync),
) -> Result<(ArchiveStats, (String, u64)), BackupError> {
    let tmp = gzip::temp_name(dest);
    let (file, sync) = gzip::create_private(&tmp).map_err(|e| BackupError::io(&tmp, e))?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<bytes::Bytes>(8);
    let writer_tmp = tmp.clone();
    let writer = tokio::task::spawn_blocking(move || {
        rewrite(ChannelReader::new(rx), file, sync, &writer_tmp)
    });
    let started = std::time::Instant::now();
    let mut so_far = 0u64;
    let mut sink = move |chunk: bytes::Bytes| {
        so_far += chunk.len() as u64;
        read(so_far);
        tx.send(chunk).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the archive's writer stopped",
            )
        })
    };
    let downloaded = exec::download_path(engine, container, path, &mut sink).await;
    drop(sink);
    let written = writer
        .await
        .map_err(|e| BackupError::io(&tmp, std::io::Error::other(e.to_string())));
    let result = match (downloaded, written) {
        // A full disk stopped the writer, and so the stream: that is what happened.
        (_, Ok(Err(e @ BackupError::DiskFull { .. }))) => Err(e),
        (Err(e), _) => Err(BackupError::Docker(e)),
        (Ok(_), Err(e)) | (Ok(_), Ok(Err(e))) => Err(e),
        (Ok(_), Ok(Ok(stats))) => {
            tracing::info!("{} written in {:?}", dest.display(), started.elapsed());
            let tmp = tmp.clone();
            tokio::task::spawn_blocking(move || verify(&tmp, stats).map(|digest| (stats, digest)))
                .await
                .unwrap_or_else(|e| Err(BackupError::Verify(e.to_string())))
        }
    };
    match result {
        Ok(stats) => {
            tracing::info!(
                "{} written and verified in {:?}",
                dest.display(),
                started.elapsed()
            );
            std::fs::rename(&tmp, dest).map_err(|e| BackupError::io(dest, e))?;
            Ok(stats)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// The entry's path without the first component (the mount point's own name in the stream).
fn reroot(path: &Path) -> Option<PathBuf> {
    let mut parts = path.components();
    parts.next()?;
    let rest = parts.as_path();
    (!rest.as_os_str().is_empty()).then(|| rest.to_path_buf())
}

/// Reads the engine's tar stream and writes it re-rooted into a parallel gzip file.
fn rewrite(
    input: ChannelReader,
    file: std::fs::File,
    sync: std::fs::File,
    tmp: &Path,
) -> Result<ArchiveStats, BackupError> {
    let io = |e: std::io::Error| BackupError::io(tmp, e);
    let mut out = tar::Builder::new(gzip::AdaptiveGzip::new(file));
    out.follow_symlinks(false);
    let mut stats = ArchiveStats::default();
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let path = entry.path().map_err(io)?.into_owned();
        let Some(rel) = reroot(&path) else { continue };
        let mut header = entry.header().clone();
        match header.entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(io)?
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                // A hard link names another entry of the stream: re-root its target too.
                let target = if header.entry_type() == tar::EntryType::Link {
                    reroot(&target).unwrap_or(target)
                } else {
                    target
                };
                out.append_link(&mut header, &rel, &target).map_err(io)?;
            }
            _ => {
                if header.entry_type().is_file() {
                    stats.files += 1;
                    stats.bytes += header.size().map_err(io)?;
                }
                out.append_data(&mut header, &rel, &mut entry).map_err(io)?;
            }
        }
    }
    // Drain what follows the tar's end marker so the sender never blocks.
    let mut rest = archive.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(io)?;
    let gz = out.into_inner().map_err(io)?;
    let (_, members, stored) = gz.finish().map_err(io)?;
    tracing::info!("archive written in {members} gzip members, {stored} of them stored");
    sync.sync_all().map_err(io)?;
    Ok(stats)
}

/// The archive gunzips and lists, with the same files and bytes as were written; its sha256
/// and size, read on the way.
pub fn verify(path: &Path, expected: ArchiveStats) -> Result<(String, u64), BackupError> {
    let file = std::fs::File::open(path).map_err(|e| BackupError::io(path, e))?;
    let hashing = gzip::Hashing::new(std::io::BufReader::with_capacity(1 << 16, file));
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(hashing));
    let bad =
        |e: std::io::Error| BackupError::Verify(format!("{} does not list: {e}", path.display()));
    let mut seen = ArchiveStats::default();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if entry.header().entry_type().is_file() {
            seen.files += 1;
            // Reading the content checks the compressed stream end to end.
            seen.bytes += std::io::copy(&mut entry.by_ref(), &mut std::io::sink()).map_err(bad)?;
        }
    }
    if seen != expected {
        return Err(BackupError::Verify(format!(
            "{} holds {} files / {} bytes, but {} files / {} bytes were written",
            path.display(),
            seen.files,
            seen.bytes,
            expected.files,
            expected.bytes
        )));
    }
    // What follows the tar's end (the rest of the last member) is part of the file too.
    let mut gz = archive.into_inner();
    std::io::copy(&mut gz, &mut std::io::sink()).map_err(bad)?;
    gz.into_inner()
        .finish()
        .map_err(|e| BackupError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reroot_drops_the_mount_points_name() {
        assert_eq!(
            reroot(Path::new("data/uploads/a.bin")),
            Some(PathBuf::from("uploads/a.bin"))
        );
        assert_eq!(reroot(Path::new("data")), None);
        assert_eq!(reroot(Path::new("data/")), None);
    }
}
