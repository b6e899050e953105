//! The feed on disk (`--data-dir`), so a restarted server still has every acknowledged event.
//!
//! redb, an embedded transactional store: each publish commits (with fsync) before its seq is
//! acknowledged, so `kill -9` cannot lose an event a client was told about, and seq continues
//! from the last one after a restart. Only the last `--retain` events are kept.

use std::path::Path;

use anyhow::Context as _;
use redb::{Database, ReadableTable, TableDefinition};

use crate::event::Seq;

/// seq → (publish time in µs, data as compact JSON).
const EVENTS: TableDefinition<'_, u64, (u64, &str)> = TableDefinition::new("events");

/// Older events are deleted in batches, once this many have accumulated past `--retain`.
const TRIM_EVERY: u64 = 1024;

pub struct Store {
    db: Database,
    retain: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("storing the event failed: {0}")]
pub struct StoreError(String);

impl<E: Into<redb::Error>> From<E> for StoreError {
    fn from(e: E) -> Self {
        Self(e.into().to_string())
    }
}

/// An event as stored.
pub struct Stored {
    pub seq: Seq,
    pub ts: u64,
    pub data: String,
}

impl Store {
    /// Opens (or creates) `dir/feed.redb`.
    ///
    /// # Errors
    /// The directory cannot be created, or the file is not a redb database.
    pub fn open(dir: &Path, retain: u64) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("feed.redb");
        let db = Database::create(&path).with_context(|| format!("opening {}", path.display()))?;
        let txn = db.begin_write()?;
        txn.open_table(EVENTS)?;
        txn.commit()?;
        Ok(Self { db, retain })
    }

    /// Durably appends one event; returns once it is on disk.
    pub fn append(&self, seq: Seq, ts: u64, data: &str) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(EVENTS)?;
            table.insert(seq, (ts, data))?;
            if seq % TRIM_EVERY == 0 && seq > self.retain {
                let cutoff = seq - self.retain;
                let old: Vec<u64> = table
                    .range(..=cutoff)?
                    .map(|entry| entry.map(|(k, _)| k.value()))
                    .collect::<Result<_, _>>()?;
                for k in old {
                    table.remove(k)?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// The last `n` events, oldest first.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn tail(&self, n: usize) -> anyhow::Result<Vec<Stored>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        let mut out = Vec::with_capacity(n.min(1 << 16));
        for entry in table.iter()?.rev().take(n) {
            let (k, v) = entry?;
            let (ts, data) = v.value();
            out.push(Stored {
                seq: k.value(),
                ts,
                data: data.to_owned(),
            });
        }
        out.reverse();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_reopening_and_old_ones_are_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), 100).unwrap();
            for seq in 1..=2048 {
                store
                    .append(seq, seq * 10, &format!("{{\"n\":{seq}}}"))
                    .unwrap();
            }
        }
        let store = Store::open(dir.path(), 100).unwrap();
        let tail = store.tail(3).unwrap();
        assert_eq!(
            tail.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [2046, 2047, 2048]
        );
        assert_eq!(tail[2].data, "{\"n\":2048}");
        assert_eq!(tail[2].ts, 20480);
        let all = store.tail(usize::MAX).unwrap();
        assert!(
            all.len() < 2048 && all.len() >= 100,
            "trimmed to about --retain: {}",
            all.len()
        );
    }
}
