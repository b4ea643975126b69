//! Files the harness owns: created fresh, never written through a symlink, replaced whole.
//!
//! ```text
//!  create_new(path)          O_CREAT|O_EXCL|O_NOFOLLOW: fails if anything is already there
//!  write_atomic(path, bytes) fresh random temp file beside it --rename--> path
//!                            (rename replaces a symlink itself; it never writes through it)
//!  Placed { path, file }     a file we hold open under a name; `move_to` renames it only if
//!                            the name still points at our file (same device and inode)
//!  open_regular(path)        O_NONBLOCK open, fstat: regular files only (no FIFO, device, dir)
//!  read_regular_capped(path) open_regular, then at most `cap` bytes of UTF-8
//! ```
//!
//! Every file we write lives in a directory the user chose (`--out`) or one we created
//! ourselves (mosquitto's config dir, 0700). In both, a name that already exists is either a
//! leftover of ours or someone else's trap; neither is ever opened for writing.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Create `path` for writing; fails if anything (a file, a symlink, a FIFO) is already there.
/// Mode 0666 before the umask, like any file a program writes.
pub fn create_new(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// A new file with a random name in `dir` (`.PREFIX.XXXXXXXXXX.tmp`), open for writing.
pub(crate) fn fresh_temp(dir: &Path, prefix: &str) -> std::io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&format!(".{prefix}."))
        .suffix(".tmp")
        .rand_bytes(10)
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
}

/// The directory part of `path` ("." for a bare file name).
pub(crate) fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_string())
}

/// Write `bytes` to `path` whole: into a fresh temp file beside it, then renamed over it. A
/// reader sees the old content or the new, never half; a symlink at `path` is replaced, not
/// followed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = fresh_temp(dir_of(path), &file_name(path))?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A file we created and hold open, under a name in a directory.
#[derive(Debug)]
pub struct Placed {
    pub path: PathBuf,
    pub file: File,
}

impl Placed {
    /// A fresh file of ours, then renamed to `path` (replacing whatever had that name, a stale
    /// file or a symlink, without following it).
    pub fn create(path: &Path) -> std::io::Result<Placed> {
        let tmp = fresh_temp(dir_of(path), &file_name(path))?;
        let file = tmp.persist(path).map_err(|e| e.error)?;
        Ok(Placed {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Does `self.path` still name our file?
    fn still_ours(&self) -> std::io::Result<bool> {
        let ours = self.file.metadata()?;
        let there = std::fs::symlink_metadata(&self.path)?;
        Ok(ours.dev() == there.dev() && ours.ino() == there.ino())
    }

    /// Rename our file to `to`. Refused when its name was replaced meanwhile: then the file
    /// under that name is not the one we wrote.
    pub fn move_to(&mut self, to: &Path) -> std::io::Result<()> {
        if !self.still_ours()? {
            return Err(std::io::Error::other(format!(
                "{} was replaced by another file while the run wrote it",
                self.path.display()
            )));
        }
        std::fs::rename(&self.path, to)?;
        self.path = to.to_path_buf();
        Ok(())
    }
}

/// Why a file could not be read as text input.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a regular file ({0})")]
    NotRegular(&'static str),
    #[error("larger than {0} bytes: a scenario file is a few hundred bytes")]
    TooLarge(u64),
    #[error("not UTF-8 text")]
    NotUtf8,
}

/// What kind of file a mode says it is, for the error.
fn kind(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => "a directory",
        libc::S_IFIFO => "a FIFO",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFSOCK => "a socket",
        libc::S_IFLNK => "a symlink",
        _ => "not a regular file",
    }
}

/// Open a regular file for reading, with its length: a FIFO, a device (`/dev/zero`) or a
/// directory is refused before a byte is read, and the open does not wait for a FIFO's writer
/// (O_NONBLOCK, which reads of a regular file ignore).
pub fn open_regular(path: &Path) -> Result<(File, u64), ReadError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular(kind(meta.mode())));
    }
    Ok((file, meta.len()))
}

/// Read a regular file of at most `cap` bytes as UTF-8. A FIFO, a device (`/dev/zero`) or a
/// directory is refused before a byte is read: the open does not wait for a FIFO's writer
/// (O_NONBLOCK), and the read stops one byte past the cap.
pub fn read_regular_capped(path: &Path, cap: u64) -> Result<String, ReadError> {
    let (file, _) = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge(cap));
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(test: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("unplug-fsx-{test}-"))
            .tempdir()
            .unwrap()
    }

    #[test]
    fn create_new_refuses_a_symlink_and_leaves_its_target_alone() {
        let d = scratch("symlink");
        let victim = d.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let trap = d.path().join("out.json");
        std::os::unix::fs::symlink(&victim, &trap).unwrap();
        assert!(create_new(&trap).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn write_atomic_replaces_a_symlink_instead_of_writing_through_it() {
        let d = scratch("atomic");
        let victim = d.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let trap = d.path().join("SUITE.md");
        std::os::unix::fs::symlink(&victim, &trap).unwrap();
        write_atomic(&trap, b"table").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&trap).unwrap(), "table");
        assert!(!std::fs::symlink_metadata(&trap).unwrap().is_symlink());
        // Nothing but the two names is left behind.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_placed_file_moves_only_while_its_name_is_still_ours() {
        let d = scratch("placed");
        let live = d.path().join("a.log.inprogress");
        let mut p = Placed::create(&live).unwrap();
        p.file.write_all(b"line\n").unwrap();
        p.move_to(&d.path().join("a.log")).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("a.log")).unwrap(),
            "line\n"
        );
        let mut q = Placed::create(&live).unwrap();
        std::fs::remove_file(&live).unwrap();
        std::fs::write(&live, "someone else's").unwrap();
        assert!(q.move_to(&d.path().join("b.log")).is_err());
        assert!(!d.path().join("b.log").exists());
    }

    #[test]
    fn only_regular_files_are_read_and_only_up_to_the_cap() {
        let d = scratch("read");
        let fifo = d.path().join("s.toml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let e = read_regular_capped(&fifo, 100).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        let e = read_regular_capped(Path::new("/dev/zero"), 100).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let e = read_regular_capped(d.path(), 100).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        let big = d.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; 101]).unwrap();
        assert!(matches!(
            read_regular_capped(&big, 100),
            Err(ReadError::TooLarge(100))
        ));
        std::fs::write(&big, "x = 1\n").unwrap();
        assert_eq!(read_regular_capped(&big, 100).unwrap(), "x = 1\n");
    }
}
