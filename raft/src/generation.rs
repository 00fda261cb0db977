//! [`Generations`]: which bwtx keyspace of the state `Db` holds the
//! replicated data (the *active generation*), and the switch that a
//! snapshot install makes (`design/replication.md` §5.3).
//!
//! The data keys (`sm/data/` + user key) live in one keyspace, named by
//! `sm/active` in the default keyspace: `sm.gen.<n>`, or, when `sm/active`
//! is absent, the default keyspace itself (the layout before streamed
//! snapshots, which a directory written by an earlier build still has: it
//! is read as it is, and moves to a generation at its first install).
//! `sm/applied` always lives in the default keyspace. An install loads a
//! snapshot into a fresh generation in bounded batches, then one small
//! commit writes `sm/applied` and `sm/active` together ([`Generations::switch`]),
//! then the old generation is dropped ([`Generations::retire`]). Opening
//! ([`Generations::open`]) drops every generation that is not the active
//! one (a load or a retirement a crash interrupted), and the data keys a
//! retired default keyspace still holds.
//!
//! A reader pairs a bwtx snapshot with the keyspace that was active when it
//! was taken ([`Generations::read`]): the switch holds the write side of
//! the lock across its commit and the handle's update, so the pair always
//! agrees; a snapshot taken before a drop still reads the dropped keyspace.

use std::sync::RwLock;

use crate::error::{Error, Result};
use crate::keys::{self, ACTIVE, APPLIED, DATA_PREFIX};

/// The name every generation's keyspace starts with.
pub const GEN_PREFIX: &str = "sm.gen.";
/// The default keyspace: the data's home before generations.
pub const LEGACY: &str = "default";

/// The active generation of one state `Db`.
pub struct Generations {
    db: bwtx::Db,
    active: RwLock<(String, bwtx::Keyspace)>,
}

impl Generations {
    /// The generations of `db`: resolves the active one, drops the others,
    /// and clears the default keyspace's data keys if a generation
    /// replaced it (each removal its own commit, at most `batch` keys in
    /// one).
    ///
    /// An active generation that does not exist is `Error::Corrupt`, and
    /// nothing is dropped: no crash leaves one (its creation commits before
    /// the switch names it, and nothing drops the active one), so its data
    /// was lost, and the other generations may hold the only copy.
    pub fn open(db: &bwtx::Db, batch: usize) -> Result<Generations> {
        let snap = db.snapshot();
        let name = match snap.get(ACTIVE)? {
            Some(raw) => String::from_utf8(raw.to_vec())
                .ok()
                .filter(|n| n.starts_with(GEN_PREFIX))
                .ok_or_else(|| Error::Corrupt("sm/active does not name a generation".to_string()))?,
            None => LEGACY.to_string(),
        };
        if name != LEGACY {
            if !db.keyspaces()?.contains(&name) {
                return Err(Error::Corrupt(format!(
                    "sm/active names generation {name}, which the state database does not hold"
                )));
            }
            if snap.get(APPLIED)?.is_none() {
                return Err(Error::Corrupt(
                    "sm/active is set but sm/applied is not (one commit writes both)".to_string(),
                ));
            }
        }
        drop(snap);
        let ks = db.keyspace(&name)?;
        let gens = Generations {
            db: db.clone(),
            active: RwLock::new((name.clone(), ks)),
        };
        for other in db.keyspaces()? {
            if other.starts_with(GEN_PREFIX) && other != name {
                db.drop_keyspace(&other)?;
            }
        }
        if name != LEGACY {
            gens.clear_legacy(batch)?;
        }
        Ok(gens)
    }

    /// The active generation's keyspace.
    pub fn active(&self) -> bwtx::Keyspace {
        self.active.read().unwrap_or_else(|p| p.into_inner()).1.clone()
    }

    /// A bwtx snapshot and the keyspace active in it.
    pub fn read(&self) -> (bwtx::Snapshot, bwtx::Keyspace) {
        let guard = self.active.read().unwrap_or_else(|p| p.into_inner());
        (self.db.snapshot(), guard.1.clone())
    }

    /// Create a fresh, empty generation for a load (a commit): the one
    /// after the highest existing.
    pub fn create_next(&self) -> Result<(String, bwtx::Keyspace)> {
        let mut n = 0u64;
        for name in self.db.keyspaces()? {
            if let Some(Ok(i)) = name.strip_prefix(GEN_PREFIX).map(str::parse::<u64>) {
                n = n.max(i);
            }
        }
        let name = format!("{GEN_PREFIX}{}", n + 1);
        let ks = self.db.keyspace(&name)?;
        Ok((name, ks))
    }

    /// Make the loaded generation `name` active with the applied state
    /// `applied` (encoded, `keys::encode_applied`): one commit of `sm/applied` and `sm/active`.
    /// Returns the name of the generation it replaced.
    ///
    /// A commit that fails may still be visible: bwtx publishes a commit
    /// whose log write failed, and poisons the database (`design/durability.md`,
    /// D5). Then the handle follows what snapshots show, so that
    /// [`Generations::read`] never pairs the new applied state with the old
    /// generation's data (before 2026-12-07 it did, until a restart: a
    /// local transaction read old values at the new position).
    pub fn switch(&self, name: &str, ks: bwtx::Keyspace, applied: &[u8]) -> Result<String> {
        let mut guard = self.active.write().unwrap_or_else(|p| p.into_inner());
        let mut tx = self.db.begin();
        tx.put(APPLIED, applied)?;
        tx.put(ACTIVE, name.as_bytes())?;
        if let Err(e) = tx.commit() {
            if self.db.snapshot().get(ACTIVE).ok().flatten().as_deref() == Some(name.as_bytes()) {
                *guard = (name.to_string(), ks);
            }
            return Err(e.into());
        }
        let old = std::mem::replace(&mut *guard, (name.to_string(), ks));
        Ok(old.0)
    }

    /// Drop generation `name` after a switch replaced it (the default
    /// keyspace: delete its data keys, at most `batch` in one commit).
    pub fn retire(&self, name: &str, batch: usize) -> Result<()> {
        if name == LEGACY {
            self.clear_legacy(batch)
        } else {
            self.db.drop_keyspace(name).map_err(Error::from)
        }
    }

    /// Drop generation `name` that a load left inactive (a failed install).
    pub fn abandon(&self, name: &str) -> Result<()> {
        self.db.drop_keyspace(name).map_err(Error::from)
    }

    /// Delete the data keys and the tombstone index of the layout before
    /// generations from the default keyspace, `batch` keys a commit.
    fn clear_legacy(&self, batch: usize) -> Result<()> {
        for prefix in [DATA_PREFIX, keys::TOMB_PREFIX] {
            let end = keys::prefix_end(prefix).unwrap_or_default();
            loop {
                let mut tx = self.db.begin();
                let mut stale = Vec::new();
                for kv in tx.range(prefix.to_vec()..end.clone()).take(batch.max(1)) {
                    stale.push(kv?.0);
                }
                if stale.is_empty() {
                    break;
                }
                for k in stale {
                    tx.delete(k)?;
                }
                tx.commit()?;
            }
        }
        Ok(())
    }
}
