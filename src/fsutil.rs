//! Small file-system helpers shared by the modules.
use std::path::{Path, PathBuf};

/// Creates `dir` (and parents) with mode 0700 for the last component when it does not exist.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Makes an existing file readable and writable by its owner only (0600), whatever the umask
/// made it; a file that is not there, or not ours to change, is left as it is.
pub fn make_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}

/// The nearest ancestor of `path` (itself included) that exists: where a directory that hoist
/// will create later would live, so free space and permissions can be checked without creating it.
pub fn nearest_existing(path: &Path) -> Option<PathBuf> {
    path.ancestors().find(|p| p.exists()).map(Path::to_path_buf)
}

/// Whether this process may create files in the existing directory `dir`: tried for real with a
/// temporary file (permission bits do not tell about read-only mounts or ACLs).
pub fn can_create_files_in(dir: &Path) -> Result<(), std::io::Error> {
    tempfile_in(dir).map(|_| ())
}

fn tempfile_in(dir: &Path) -> std::io::Result<()> {
    let name = dir.join(format!(".hoist-write-test-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&name)?;
    drop(file);
    std::fs::remove_file(&name)
}

/// Total size in bytes of the regular files under `path` (symlinks not followed). Unreadable
/// entries are counted in the second value so an estimate can say it is partial.
pub fn tree_size(path: &Path) -> (u64, u64) {
    let mut total = 0u64;
    let mut unreadable = 0u64;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(_) => {
                unreadable += 1;
                continue;
            }
        };
        if meta.is_dir() {
            match std::fs::read_dir(&p) {
                Ok(entries) => {
                    for entry in entries {
                        match entry {
                            Ok(e) => stack.push(e.path()),
                            Err(_) => unreadable += 1,
                        }
                    }
                }
                Err(_) => unreadable += 1,
            }
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    (total, unreadable)
}
