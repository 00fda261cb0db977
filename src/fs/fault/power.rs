//! [`FaultFs`]'s power losses: what survives of each file's unsynced
//! bytes when the "machine" restarts.

use super::FaultFs;

/// The page size a power loss keeps or loses whole in
/// [`FaultFs::power_loss_scattered`].
const PAGE: usize = 4096;

impl FaultFs {
    /// Drop every unsynced byte and directory change, clear the faults and
    /// locks: the machine restarted after a power failure.
    pub fn power_loss(&self) {
        self.power_loss_keeping(|_| 0);
    }

    /// [`FaultFs::power_loss`], except that each file keeps the first
    /// `keep(n)` (at most `n`) of the `n` bytes appended to it since its
    /// last sync: the page cache wrote part of them back, in file order,
    /// before the power went. A log's tail then ends in a torn record, and
    /// past it the file's synced reservation reads as zeros, as on a real
    /// disk. (Directory changes since the last directory sync are lost all
    /// the same.)
    pub fn power_loss_keeping(&self, mut keep: impl FnMut(usize) -> usize) {
        self.power_loss_with(|_, data, synced| {
            let appended = data.len() - synced;
            let kept = keep(appended).min(appended);
            data.truncate(synced + kept);
        });
    }

    /// [`FaultFs::power_loss`], except that of the bytes written to each
    /// file since its last sync, the 4 KiB pages (by file offset) for which
    /// `keep(file_name, page_offset)` says so were written back before the
    /// power went, and the others were not: a disk writes a file's dirty
    /// pages back in any order. A lost page reads as what was durable
    /// there (the synced prefix, then zeros, as in a synced reservation);
    /// the file ends with its last kept page (or its synced length or
    /// reservation, if longer). Directory changes since the last directory
    /// sync are lost all the same.
    pub fn power_loss_scattered(&self, mut keep: impl FnMut(&str, usize) -> bool) {
        let names: std::collections::HashMap<usize, String> = {
            let s = self.st();
            s.names.iter().map(|(p, &i)| (i, super::file_name(p))).collect()
        };
        self.power_loss_with(|inode, data, synced| {
            let name = names.get(&inode).map(String::as_str).unwrap_or("");
            let mut end = synced;
            let mut page = synced / PAGE * PAGE;
            while page < data.len() {
                let to = (page + PAGE).min(data.len());
                if keep(name, page) {
                    end = to;
                } else {
                    data[page.max(synced)..to].fill(0);
                }
                page += PAGE;
            }
            data.truncate(end);
        });
    }

    /// A power loss: `survive(inode, data, synced)` cuts each file's bytes
    /// as written (`synced` of them durable, the rest written after the
    /// last sync) to what survives; the result is the file's durable
    /// content.
    fn power_loss_with(&self, mut survive: impl FnMut(usize, &mut Vec<u8>, usize)) {
        let mut s = self.st();
        s.names = s.durable_names.clone();
        for (n, i) in s.inodes.iter_mut().enumerate() {
            let synced = i.durable.len();
            let kept = i.data.len() > synced && i.data.starts_with(&i.durable) && {
                survive(n, &mut i.data, synced);
                i.data.len() > synced
            };
            if kept {
                i.durable.clone_from(&i.data);
            } else {
                i.data.clone_from(&i.durable);
            }
            i.alloc = i.durable_alloc;
        }
        s.locks.clear();
        s.crashed = false;
        s.generation += 1;
        s.fail_write_at = None;
        s.short_write_at = None;
        s.fail_sync_at = None;
        s.crash_at_sync = None;
        s.panic_sync_of = None;
        s.fail_removes_of = None;
        s.fail_write_of = None;
        s.panic_write_of = None;
        s.fail_read_at = None;
    }
}
