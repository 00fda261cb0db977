//! The durable peers: fjall, redb and sled, each committing as durably as
//! it can per transaction (see the bench's documentation).

use std::path::PathBuf;

use bwtx_kit::par::value_of;

use crate::engines::{be, Engine, LOAD_BATCH};

// fjall ---------------------------------------------------------------------

pub(crate) struct Fjall {
    pub(crate) dir: PathBuf,
    /// (database, keyspace); `None` only while reopening.
    pub(crate) db: Option<(fjall::OptimisticTxDatabase, fjall::OptimisticTxKeyspace)>,
}

impl Fjall {
    pub(crate) fn open(dir: PathBuf) -> Self {
        let db = fjall::OptimisticTxDatabase::builder(&dir).open().expect("fjall open");
        let ks = db
            .keyspace("bench", fjall::KeyspaceCreateOptions::default)
            .expect("fjall keyspace");
        Fjall {
            dir,
            db: Some((db, ks)),
        }
    }
    fn parts(&self) -> &(fjall::OptimisticTxDatabase, fjall::OptimisticTxKeyspace) {
        self.db.as_ref().expect("open")
    }
}

impl Engine for Fjall {
    fn name(&self) -> &'static str {
        "fjall"
    }
    fn load(&self, keys: &[u64]) {
        let (db, ks) = self.parts();
        for chunk in keys.chunks(LOAD_BATCH) {
            let mut tx = db.write_tx().expect("fjall write_tx");
            for &k in chunk {
                tx.insert(ks, k.to_be_bytes(), value_of(k).to_be_bytes());
            }
            tx.commit().expect("fjall load commit").expect("fjall load conflict");
        }
        db.persist(fjall::PersistMode::SyncAll).expect("fjall persist");
    }
    fn commit(&self, _thread: usize, writes: &[(u64, u64)]) -> u64 {
        let (db, ks) = self.parts();
        let mut conflicts = 0;
        loop {
            let mut tx = db
                .write_tx()
                .expect("fjall write_tx")
                .durability(Some(fjall::PersistMode::SyncAll));
            for &(k, v) in writes {
                tx.insert(ks, k.to_be_bytes(), v.to_be_bytes());
            }
            match tx.commit().expect("fjall commit") {
                Ok(()) => return conflicts,
                Err(fjall::Conflict) => conflicts += 1,
            }
        }
    }
    fn value(&self, key: u64) -> Option<u64> {
        self.parts()
            .1
            .get(key.to_be_bytes())
            .expect("fjall get")
            .map(|v| be(&v))
    }
    fn reopen(&mut self) {
        drop(self.db.take());
        *self = Fjall::open(self.dir.clone());
    }
}

// redb ----------------------------------------------------------------------

pub(crate) const REDB_TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("bench");

pub(crate) struct Redb {
    pub(crate) path: PathBuf,
    pub(crate) db: Option<redb::Database>,
}

impl Redb {
    pub(crate) fn open(path: PathBuf) -> Self {
        let db = redb::Database::create(&path).expect("redb open");
        Redb { path, db: Some(db) }
    }
    fn db(&self) -> &redb::Database {
        self.db.as_ref().expect("open")
    }
    fn write(&self, writes: impl Iterator<Item = (u64, u64)>) {
        let mut tx = self.db().begin_write().expect("redb begin_write");
        tx.set_durability(redb::Durability::Immediate)
            .expect("redb set_durability");
        {
            let mut t = tx.open_table(REDB_TABLE).expect("redb open_table");
            for (k, v) in writes {
                t.insert(&k.to_be_bytes()[..], &v.to_be_bytes()[..])
                    .expect("redb insert");
            }
        }
        tx.commit().expect("redb commit");
    }
}

impl Engine for Redb {
    fn name(&self) -> &'static str {
        "redb"
    }
    fn load(&self, keys: &[u64]) {
        for chunk in keys.chunks(LOAD_BATCH) {
            self.write(chunk.iter().map(|&k| (k, value_of(k))));
        }
    }
    fn commit(&self, _thread: usize, writes: &[(u64, u64)]) -> u64 {
        self.write(writes.iter().copied());
        0
    }
    fn value(&self, key: u64) -> Option<u64> {
        use redb::ReadableDatabase;
        let tx = self.db().begin_read().expect("redb begin_read");
        let t = tx.open_table(REDB_TABLE).expect("redb open_table");
        let v = t.get(&key.to_be_bytes()[..]).expect("redb get");
        v.map(|g| be(g.value()))
    }
    fn reopen(&mut self) {
        drop(self.db.take());
        *self = Redb::open(self.path.clone());
    }
}

// sled ----------------------------------------------------------------------

pub(crate) struct Sled {
    pub(crate) dir: PathBuf,
    pub(crate) db: Option<sled::Db>,
}

impl Sled {
    pub(crate) fn open(dir: PathBuf) -> Self {
        let db = sled::open(&dir).expect("sled open");
        Sled { dir, db: Some(db) }
    }
    fn db(&self) -> &sled::Db {
        self.db.as_ref().expect("open")
    }
}

impl Engine for Sled {
    fn name(&self) -> &'static str {
        "sled"
    }
    fn load(&self, keys: &[u64]) {
        for chunk in keys.chunks(LOAD_BATCH) {
            let mut b = sled::Batch::default();
            for &k in chunk {
                b.insert(&k.to_be_bytes(), &value_of(k).to_be_bytes());
            }
            self.db().apply_batch(b).expect("sled batch");
        }
        self.db().flush().expect("sled flush");
    }
    fn commit(&self, _thread: usize, writes: &[(u64, u64)]) -> u64 {
        let db = self.db();
        let r: sled::transaction::TransactionResult<(), ()> = db.transaction(|tx| {
            for &(k, v) in writes {
                tx.insert(&k.to_be_bytes(), &v.to_be_bytes())?;
            }
            Ok(())
        });
        r.expect("sled transaction");
        db.flush().expect("sled flush");
        0
    }
    fn value(&self, key: u64) -> Option<u64> {
        self.db().get(key.to_be_bytes()).expect("sled get").map(|v| be(&v))
    }
    fn reopen(&mut self) {
        drop(self.db.take());
        *self = Sled::open(self.dir.clone());
    }
}
