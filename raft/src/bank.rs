//! The bank-transfer workload that the tests and the example share:
//! accounts `acct/NNNN` holding decimal balances, transfers that move money
//! between two of them and write a unique marker `xfer/<id>`, so a retried
//! transfer never applies twice and every acknowledged one can be found.

use std::time::Duration;

use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::node::{ReadSnapshot, Txn};

/// The key of account `i`.
pub fn account(i: u32) -> String {
    format!("acct/{i:04}")
}

/// The marker key of transfer `id`.
pub fn marker(id: u64) -> String {
    format!("xfer/{id:016x}")
}

/// An account's balance from its stored value: a missing or unreadable
/// account is `Corrupt` (the bank's state lost one), which
/// `Cluster::transaction` does not retry.
fn balance(raw: Option<bytes::Bytes>, key: &str) -> Result<u64> {
    let raw = raw.ok_or_else(|| Error::Corrupt(format!("account {key} is missing")))?;
    std::str::from_utf8(&raw)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Corrupt(format!("balance of {key}")))
}

/// Open `accounts` accounts with `initial` each, in one transaction.
/// Accounts already open (the first one exists: an attempt whose outcome
/// was unknown committed, or an earlier run opened them) are left as they
/// are: a retry must not reset balances that transfers have moved since
/// (`Cluster::transaction` asks for idempotent bodies).
pub async fn open_accounts(cluster: &Cluster, accounts: u32, initial: u64) -> Result<u64> {
    let (_, index) = cluster
        .transaction(Duration::from_secs(30), |tx| {
            if tx.get(account(0))?.is_some() {
                return Ok(());
            }
            for i in 0..accounts {
                tx.put(account(i), initial.to_string())?;
            }
            Ok(())
        })
        .await?;
    Ok(index)
}

/// The body of transfer `id`: move up to `amount` from account `from` to
/// account `to`, unless the marker shows it already happened (then
/// `false`).
pub fn transfer_in(tx: &mut Txn, id: u64, from: u32, to: u32, amount: u64) -> Result<bool> {
    if tx.get(marker(id))?.is_some() {
        return Ok(false);
    }
    let (fk, tk) = (account(from), account(to));
    let fb = balance(tx.get(&fk)?, &fk)?;
    let moved = amount.min(fb);
    if from != to {
        let tb = balance(tx.get(&tk)?, &tk)?;
        tx.put(&fk, (fb - moved).to_string())?;
        tx.put(&tk, (tb + moved).to_string())?;
    }
    tx.put(marker(id), format!("{from}>{to}:{moved}"))?;
    Ok(true)
}

/// Run transfer `id` through the cluster's leader with retries (see
/// [`Cluster::transaction`]); returns the commit's log index.
pub async fn transfer(cluster: &Cluster, id: u64, from: u32, to: u32, amount: u64) -> Result<u64> {
    let (_, index) = cluster
        .transaction(Duration::from_secs(30), |tx| transfer_in(tx, id, from, to, amount))
        .await?;
    Ok(index)
}

/// The sum of every account's balance in `read`.
pub fn total(read: &ReadSnapshot) -> Result<u64> {
    let mut sum = 0u64;
    for (k, v) in read.scan_prefix("acct/")? {
        sum += balance(Some(v), &String::from_utf8_lossy(&k))?;
    }
    Ok(sum)
}

/// How many transfer markers `read` holds.
pub fn transfers(read: &ReadSnapshot) -> Result<usize> {
    Ok(read.scan_prefix("xfer/")?.len())
}

/// Check every balance in `read` against its ledger: `initial`, plus what
/// the transfer markers (`from>to:moved`) say moved in, less what moved
/// out. A transfer applied twice moves its money twice under one marker,
/// which the total and the marker count both miss; this does not.
/// `Corrupt` names the first account that disagrees.
pub fn ledger_matches(read: &ReadSnapshot, accounts: u32, initial: u64) -> Result<()> {
    let mut want = vec![i128::from(initial); accounts as usize];
    for (k, v) in read.scan_prefix("xfer/")? {
        let bad = || Error::Corrupt(format!("transfer marker {}", String::from_utf8_lossy(&k)));
        let text = std::str::from_utf8(&v).map_err(|_| bad())?;
        let (from, rest) = text.split_once('>').ok_or_else(bad)?;
        let (to, moved) = rest.split_once(':').ok_or_else(bad)?;
        let parse = |s: &str| s.parse::<u64>().map_err(|_| bad());
        let (from, to, moved) = (parse(from)?, parse(to)?, i128::from(parse(moved)?));
        let n = want.len();
        let slot = |i: u64| usize::try_from(i).ok().filter(|&i| i < n).ok_or_else(bad);
        let (f, t) = (slot(from)?, slot(to)?);
        want[f] -= moved;
        want[t] += moved;
    }
    for (i, want) in want.into_iter().enumerate() {
        let key = account(i as u32);
        let have = i128::from(balance(read.get(&key)?, &key)?);
        if have != want {
            return Err(Error::Corrupt(format!(
                "{key} holds {have}, its transfers leave {want}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A missing account is corrupt state, not an unknown outcome: it is
    /// not retried until the timeout. (It was an `Error::Raft`.)
    #[test]
    fn a_missing_account_is_corrupt_not_retried() {
        let e = balance(None, "acct/1").unwrap_err();
        assert!(matches!(&e, Error::Corrupt(m) if m.contains("acct/1")), "{e:?}");
        assert!(!crate::cluster::retryable(&e));
        assert_eq!(balance(Some("12".into()), "acct/1").unwrap(), 12);
    }
}
