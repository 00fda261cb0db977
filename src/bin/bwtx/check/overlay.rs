//! A copy-on-write view of a database directory, for `bwtx check`: the
//! open reads the real files in place, and whatever it writes (recovery
//! cuts a torn tail, the log opens a new segment, a close checkpoints) goes
//! to memory and is dropped with the view. The directory is never changed.
//!
//! Before this view, `check` copied every file into a `FaultFs` first: the
//! whole database in memory, so a database larger than memory (what a page
//! store is for) could not be checked.
//!
//! **Definitions.** The *base* is the real directory, read through
//! [`StdFs`]. A path's *layer* is what the view holds for it: `Gone`
//! (removed, or renamed away), `Mem` (contents in memory: created,
//! appended to or truncated in the view), or `Base(p)` (the base file `p`,
//! for a base file renamed in the view). A path without a layer is the
//! base file of that path, if there is one.
//!
//! **Invariants.**
//! - V1. Nothing in the base is written, created, renamed or removed: every
//!   changing operation changes layers only.
//! - V2. A base file is read only while no `Mem` layer holds its path: the
//!   first write to it (an append, a truncation) copies what the view keeps
//!   of it into memory, and every later read sees that copy, through
//!   readers opened before it too.
//! - V3. The view of a directory lists each path once: the base's files
//!   without a layer, and the paths whose layer is `Mem` or `Base`.
//!
//! Not modelled, as no caller of the check's open needs it: an append
//! handle follows its path, not its file (a write through one whose path
//! was renamed or removed before its first write fails, and one whose path
//! was created again writes to the old contents).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use bwtx::fs::{Fs, FsFile, FsRead, StdFs};

/// An in-memory file's contents, shared by its writer and its readers.
type Contents = Arc<RwLock<Vec<u8>>>;

#[derive(Clone)]
enum Layer {
    Gone,
    Mem(Contents),
    Base(PathBuf),
}

/// The layers by path, shared by the view and its open files.
type View = Arc<Mutex<BTreeMap<PathBuf, Layer>>>;

/// A copy-on-write view of the real file system (see the module doc).
#[derive(Default)]
pub struct OverlayFs {
    view: View,
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file", path.display()))
}

fn lock(view: &View) -> std::sync::MutexGuard<'_, BTreeMap<PathBuf, Layer>> {
    view.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What `path` reads as now: its layer, or its base file (`Gone` if there
/// is none).
fn resolve(layers: &BTreeMap<PathBuf, Layer>, path: &Path) -> Layer {
    match layers.get(path) {
        Some(l) => l.clone(),
        None if path.is_file() => Layer::Base(path.to_path_buf()),
        None => Layer::Gone,
    }
}

/// `path`'s contents in memory, copied from its base file the first time
/// (V2), of at most `keep` bytes.
fn materialize(view: &View, path: &Path, keep: Option<u64>) -> io::Result<Contents> {
    let mut layers = lock(view);
    let contents = match resolve(&layers, path) {
        Layer::Mem(c) => c,
        Layer::Gone => return Err(not_found(path)),
        Layer::Base(p) => {
            let mut data = match keep {
                Some(len) => {
                    let f = StdFs.open_read(&p)?;
                    let len = len.min(f.len()?);
                    let mut data = vec![0; usize::try_from(len).map_err(io::Error::other)?];
                    f.read_exact_at(0, &mut data)?;
                    data
                }
                None => StdFs.read(&p)?,
            };
            data.shrink_to_fit();
            let c = Arc::new(RwLock::new(data));
            layers.insert(path.to_path_buf(), Layer::Mem(c.clone()));
            c
        }
    };
    Ok(contents)
}

/// An appender to a path of the view: its contents are made in memory at
/// the first write (so an append handle opened and never written, as a
/// check's open leaves some, copies nothing).
struct Appender {
    view: View,
    path: PathBuf,
    contents: Option<Contents>,
}

impl FsFile for Appender {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let contents = match &self.contents {
            Some(c) => c.clone(),
            None => {
                let c = materialize(&self.view, &self.path, None)?;
                self.contents = Some(c.clone());
                c
            }
        };
        contents
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Positional reads of an in-memory file.
struct MemReader(Contents);

impl FsRead for MemReader {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let data = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(buf.len()).and_then(|end| data.get(start..end)) {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "a read of {} bytes at {offset} past the end ({})",
                    buf.len(),
                    data.len()
                ),
            )),
        }
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.read().unwrap_or_else(PoisonError::into_inner).len() as u64)
    }
}

/// Positional reads of a base file, until the view copies it into memory
/// (V2): then of the copy.
struct BaseReader {
    view: View,
    path: PathBuf,
    base: Box<dyn FsRead>,
}

impl BaseReader {
    fn copied(&self) -> Option<MemReader> {
        match lock(&self.view).get(&self.path) {
            Some(Layer::Mem(c)) => Some(MemReader(c.clone())),
            _ => None,
        }
    }
}

impl FsRead for BaseReader {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        match self.copied() {
            Some(m) => m.read_exact_at(offset, buf),
            None => self.base.read_exact_at(offset, buf),
        }
    }
    fn len(&self) -> io::Result<u64> {
        match self.copied() {
            Some(m) => m.len(),
            None => self.base.len(),
        }
    }
}

impl Fs for OverlayFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        // The check runs on an existing directory; nothing to create.
        if dir.is_dir() {
            Ok(())
        } else {
            Err(not_found(dir))
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let layers = lock(&self.view);
        let mut names: Vec<String> = StdFs
            .list(dir)?
            .into_iter()
            .filter(|n| !layers.contains_key(&dir.join(n)))
            .collect();
        for (path, layer) in layers.iter() {
            if matches!(layer, Layer::Gone) || path.parent() != Some(dir) {
                continue;
            }
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let layer = resolve(&lock(&self.view), path);
        match layer {
            Layer::Gone => Err(not_found(path)),
            Layer::Mem(c) => Ok(c.read().unwrap_or_else(PoisonError::into_inner).clone()),
            Layer::Base(p) => StdFs.read(&p),
        }
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let c: Contents = Arc::default();
        lock(&self.view).insert(path.to_path_buf(), Layer::Mem(c.clone()));
        Ok(Box::new(Appender {
            view: self.view.clone(),
            path: path.to_path_buf(),
            contents: Some(c),
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let contents = match resolve(&lock(&self.view), path) {
            Layer::Gone => return Err(not_found(path)),
            Layer::Mem(c) => Some(c),
            Layer::Base(_) => None,
        };
        Ok(Box::new(Appender {
            view: self.view.clone(),
            path: path.to_path_buf(),
            contents,
        }))
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FsRead>> {
        let layer = resolve(&lock(&self.view), path);
        match layer {
            Layer::Gone => Err(not_found(path)),
            Layer::Mem(c) => Ok(Box::new(MemReader(c))),
            Layer::Base(p) => Ok(Box::new(BaseReader {
                view: self.view.clone(),
                path: path.to_path_buf(),
                base: StdFs.open_read(&p)?,
            })),
        }
    }

    fn drop_cache(&self, path: &Path) -> io::Result<()> {
        // Reads of base files then see what the device holds, as an open
        // of the directory does; a file in memory has no cache.
        match resolve(&lock(&self.view), path) {
            Layer::Base(p) => StdFs.drop_cache(&p),
            Layer::Mem(_) => Ok(()),
            Layer::Gone => Err(not_found(path)),
        }
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let c = materialize(&self.view, path, Some(len))?;
        let mut data = c.write().unwrap_or_else(PoisonError::into_inner);
        let len = usize::try_from(len).map_err(io::Error::other)?;
        data.resize(len, 0);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut layers = lock(&self.view);
        let layer = resolve(&layers, from);
        if matches!(layer, Layer::Gone) {
            return Err(not_found(from));
        }
        layers.insert(from.to_path_buf(), Layer::Gone);
        layers.insert(to.to_path_buf(), layer);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut layers = lock(&self.view);
        if matches!(resolve(&layers, path), Layer::Gone) {
            return Err(not_found(path));
        }
        layers.insert(path.to_path_buf(), Layer::Gone);
        Ok(())
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    /// No lock: `check` holds the real directory's lock itself, for as
    /// long as the view is used.
    fn lock(&self, _dir: &Path) -> io::Result<Box<dyn Send + Sync>> {
        Ok(Box::new(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of `dir` with its contents.
    fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap())
            })
            .collect()
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    /// `drop_cache` reaches the base file a view's name stands for (here
    /// renamed in the view, then removed from the base behind its back, so
    /// that the forwarded call fails), does nothing for a file in memory,
    /// and fails for a name the view removed.
    #[test]
    fn drop_cache_forwards_to_the_base_file() {
        let dir = std::env::temp_dir().join(format!("bwtx-overlay-drop-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["a", "b", "c"] {
            std::fs::write(dir.join(name), b"data").unwrap();
        }
        let fs = OverlayFs::default();
        let p = |n: &str| dir.join(n);
        fs.drop_cache(&p("a")).unwrap();
        fs.rename(&p("c"), &p("d")).unwrap();
        fs.drop_cache(&p("d")).unwrap();
        std::fs::remove_file(p("c")).unwrap();
        assert_eq!(fs.drop_cache(&p("d")).unwrap_err().kind(), io::ErrorKind::NotFound);
        fs.create(&p("new")).unwrap().write_all(b"x").unwrap();
        fs.drop_cache(&p("new")).unwrap();
        fs.remove(&p("b")).unwrap();
        assert_eq!(fs.drop_cache(&p("b")).unwrap_err().kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Every changing operation shows in the view and leaves the base as it
    /// was (V1, V2, V3).
    #[test]
    fn the_view_changes_and_the_base_does_not() {
        let dir = std::env::temp_dir().join(format!("bwtx-overlay-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, data) in [("a", &b"aaaa"[..]), ("b", b"bbbbbb"), ("c", b"cc")] {
            std::fs::write(dir.join(name), data).unwrap();
        }
        let before = files(&dir);
        let fs = OverlayFs::default();
        let p = |n: &str| dir.join(n);
        // Appending to a base file, truncating one, renaming one,
        // removing one, creating one.
        let mut f = fs.open_append(&p("a")).unwrap();
        f.write_all(b"++").unwrap();
        f.sync().unwrap();
        fs.truncate(&p("b"), 2).unwrap();
        fs.rename(&p("c"), &p("d")).unwrap();
        let mut n = fs.create(&p("new")).unwrap();
        n.write_all(b"fresh").unwrap();
        fs.remove(&p("b")).unwrap();
        fs.truncate(&p("new"), 3).unwrap();
        fs.sync_dir(&dir).unwrap();
        assert_eq!(fs.read(&p("a")).unwrap(), b"aaaa++");
        assert!(fs.read(&p("b")).is_err() && fs.open_read(&p("b")).is_err());
        assert!(fs.read(&p("c")).is_err());
        assert_eq!(fs.read(&p("d")).unwrap(), b"cc");
        assert_eq!(fs.read(&p("new")).unwrap(), b"fre");
        let r = fs.open_read(&p("a")).unwrap();
        let mut buf = [0u8; 3];
        r.read_exact_at(3, &mut buf).unwrap();
        assert_eq!(&buf, b"a++");
        assert_eq!(r.len().unwrap(), 6);
        assert!(r.read_exact_at(5, &mut buf).is_err(), "past the end");
        // A reader opened on a base file follows the copy the view makes
        // of it at its first write.
        let e = p("e");
        std::fs::write(&e, b"ee").unwrap();
        let before_e = files(&dir);
        let r = fs.open_read(&e).unwrap();
        let mut w = fs.open_append(&e).unwrap();
        assert_eq!(r.len().unwrap(), 2);
        w.write_all(b"!").unwrap();
        assert_eq!(r.len().unwrap(), 3);
        r.read_exact_at(1, &mut buf[..2]).unwrap();
        assert_eq!(&buf[..2], b"e!");
        assert_eq!(files(&dir), before_e);
        std::fs::remove_file(&e).unwrap();
        assert_eq!(sorted(fs.list(&dir).unwrap()), ["a", "d", "e", "new"]);
        assert!(fs.remove(&p("b")).is_err() && fs.rename(&p("c"), &p("e")).is_err());
        // A base file truncated in the view keeps only its prefix there.
        fs.truncate(&p("d"), 1).unwrap();
        assert_eq!(fs.read(&p("d")).unwrap(), b"c");
        assert_eq!(files(&dir), before, "the base is unchanged");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// An append handle opened on a base file and never written copies
    /// nothing: the base file is still what is read.
    #[test]
    fn an_unwritten_append_handle_copies_nothing() {
        let dir = std::env::temp_dir().join(format!("bwtx-overlay-lazy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("seg"), b"0123").unwrap();
        let fs = OverlayFs::default();
        let _f = fs.open_append(&dir.join("seg")).unwrap();
        assert!(lock(&fs.view).is_empty());
        // The base file read in place sees what the base holds.
        std::fs::write(dir.join("seg"), b"012345").unwrap();
        assert_eq!(fs.read(&dir.join("seg")).unwrap(), b"012345");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
