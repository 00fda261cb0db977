//! Keyspaces: a table and its index in two keyspaces of one database,
//! written atomically, read back, dropped transactionally, and reopened.
//!
//! `cargo run --example keyspaces`

use bwtx::{Db, Error};

fn main() -> bwtx::Result<()> {
    let dir = std::env::temp_dir().join(format!("bwtx-example-keyspaces-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let db = Db::open(&dir)?;
        let users = db.keyspace("users")?;
        let by_email = db.keyspace("users.by_email")?;
        for (id, email) in [("u1", "alice@example.com"), ("u2", "bob@example.com")] {
            // The row and its index entry: one commit, one log record.
            db.transaction(|tx| {
                tx.put_in(&users, id, email)?;
                tx.put_in(&by_email, email, id)
            })?;
        }
        let snap = db.snapshot();
        let who = snap.get_in(&by_email, "bob@example.com")?;
        println!("bob is {:?}", who.as_deref().map(String::from_utf8_lossy));
        println!("keyspaces: {:?}", db.keyspaces()?);
        println!("users: {:?}", db.keyspace_stats(&users)?);

        db.drop_keyspace("users.by_email")?;
        // The snapshot from before the drop still reads the index ...
        println!("old snapshot, index entries: {}", snap.len_in(&by_email)?);
        // ... a new one does not.
        match db.snapshot().get_in(&by_email, "bob@example.com") {
            Err(Error::KeyspaceNotFound { name }) => println!("after the drop: {name} not found"),
            other => println!("unexpected: {other:?}"),
        }
    }
    // Keyspaces and their contents survive a restart.
    let db = Db::open(&dir)?;
    let users = db.keyspace("users")?;
    println!(
        "after reopening: {:?}, {} users",
        db.keyspaces()?,
        db.snapshot().len_in(&users)?
    );
    drop(db);
    std::fs::remove_dir_all(&dir).map_err(Error::Io)?;
    Ok(())
}
