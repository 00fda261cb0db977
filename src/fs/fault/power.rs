//! [`FaultFs`]'s power losses (what survives of each file's unsynced
//! bytes when the "machine" restarts) and process kills.

use super::FaultFs;

use super::PAGE;

impl FaultFs {
    /// The process using the file system is killed: every operation fails
    /// (as after a power loss, so that the dying process's destructors
    /// change nothing) until [`FaultFs::restart`]. Unlike a power loss, the
    /// machine stays up: what was written stays readable, synced or not.
    pub fn kill(&self) {
        self.st().crashed = true;
    }

    /// A new process after [`FaultFs::kill`]: file handles from before
    /// fail, locks are released and armed faults cleared; every byte
    /// written stays as it was (unsynced ones still in the "page cache",
    /// lost by a later power loss).
    pub fn restart(&self) {
        let mut s = self.st();
        s.crashed = false;
        s.generation += 1;
        s.locks.clear();
        s.clear_faults();
    }

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
            // The pages a failed sync lost are not the cache's to write back.
            let mut data = std::mem::take(&mut i.data);
            i.as_on_device(&mut data);
            i.data = data;
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
            i.lost.clear();
        }
        s.locks.clear();
        s.crashed = false;
        s.generation += 1;
        s.clear_faults();
    }
}
