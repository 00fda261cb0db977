//! The shell's keyspace commands: `use NAME` (open or create a keyspace and
//! make it current), `keyspaces` (list them with their exact key counts) and
//! `drop NAME` (`Db::drop_keyspace`).

use super::Session;

/// The keyspace the existing single-space API reads and writes.
pub(super) const DEFAULT: &str = "default";

impl Session<'_> {
    /// The prompt: the current keyspace when it is not the default, and
    /// whether a transaction is open.
    pub(super) fn prompt(&self) -> String {
        let tx = if self.tx.is_some() { "(tx)" } else { "" };
        match self.ks.name() {
            DEFAULT => format!("bwtx{tx}> "),
            name => format!("bwtx[{name}]{tx}> "),
        }
    }

    /// `use NAME`. Refused inside a transaction only if the keyspace would
    /// be created (creation commits on its own, outside the transaction);
    /// switching between existing keyspaces is fine.
    pub(super) fn use_keyspace(&mut self, name: &str) -> Result<(), String> {
        let exists = self
            .db
            .keyspaces()
            .map_err(|e| e.to_string())?
            .iter()
            .any(|n| n == name);
        if !exists && self.tx.is_some() {
            return Err(format!(
                "keyspace `{name}` does not exist; creating it commits on its own, so commit or roll back first"
            ));
        }
        self.ks = self.db.keyspace(name).map_err(|e| e.to_string())?;
        println!("using keyspace {name}{}", if exists { "" } else { " (created)" });
        Ok(())
    }

    /// `keyspaces`: every live keyspace and its key count in a fresh snapshot.
    pub(super) fn keyspaces(&self) -> Result<(), String> {
        let names = self.db.keyspaces().map_err(|e| e.to_string())?;
        let snap = self.db.snapshot();
        for name in &names {
            let ks = self.db.keyspace(name).map_err(|e| e.to_string())?;
            let n = snap.len_in(&ks).map_err(|e| e.to_string())?;
            let mark = if name == self.ks.name() { " (current)" } else { "" };
            println!("{name}: {n} keys{mark}");
        }
        println!("({} keyspaces)", names.len());
        Ok(())
    }

    /// `drop NAME`. The current keyspace falls back to `default` if dropped.
    pub(super) fn drop_keyspace(&mut self, name: &str) -> Result<(), String> {
        if self.tx.is_some() {
            return Err("a drop commits on its own: commit or roll back the open transaction first".into());
        }
        self.db.drop_keyspace(name).map_err(|e| e.to_string())?;
        println!("dropped keyspace {name}");
        if self.ks.name() == name {
            self.ks = self.db.keyspace(DEFAULT).map_err(|e| e.to_string())?;
            println!("using keyspace {DEFAULT}");
        }
        Ok(())
    }
}
