//! The feed on disk (`--data-dir`), so a restarted server still has every acknowledged event.
//!
//! redb, an embedded transactional store: each publish commits (with fsync) before its seq is
//! acknowledged, so `kill -9` cannot lose an event a client was told about, and seq continues
//! from the last one after a restart. Only the last `--retain` events are kept.

use std::path::Path;

use anyhow::Context as _;
use redb::{Database, ReadableTable, TableDefinition};

use crate::{
    event::Seq,
    idempotency::{KeyPolicy, Remembered},
};

/// seq → (publish time in µs, data as compact JSON).
const EVENTS: TableDefinition<'_, u64, (u64, &str)> = TableDefinition::new("events");

/// Idempotency key id → (seq, first publish time in µs, body fingerprint), written in the same
/// transaction as the event, so a key is remembered exactly when its event is stored.
const KEYS: TableDefinition<'_, u128, (u64, u64, u128)> = TableDefinition::new("idempotency_keys");

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
        txn.open_table(KEYS)?;
        txn.commit()?;
        Ok(Self { db, retain })
    }

    /// Durably appends one event; returns once it is on disk.
    pub fn append(&self, seq: Seq, ts: u64, data: &str) -> Result<(), StoreError> {
        self.append_keyed(seq, ts, data, None, &[])
    }

    /// Durably appends one event, remembers its idempotency key and forgets the `forgotten`
    /// ones, in one transaction; returns once it is on disk.
    pub fn append_keyed(
        &self,
        seq: Seq,
        ts: u64,
        data: &str,
        key: Option<(u128, Remembered)>,
        forgotten: &[u128],
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        if key.is_some() || !forgotten.is_empty() {
            let mut keys = txn.open_table(KEYS)?;
            for id in forgotten {
                keys.remove(id)?;
            }
            if let Some((id, r)) = key {
                keys.insert(id, (r.seq, r.at_us, r.body))?;
            }
        }
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

    /// The idempotency keys still within `policy`'s window at `now_us`, oldest first, at most
    /// `max_keys` of them; the rest are deleted.
    ///
    /// # Errors
    /// The file cannot be read or written.
    pub fn keys(&self, policy: &KeyPolicy, now_us: u64) -> anyhow::Result<Vec<(u128, Remembered)>> {
        let mut all = Vec::new();
        {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(KEYS)?;
            for entry in table.iter()? {
                let (k, v) = entry?;
                let (seq, at_us, body) = v.value();
                all.push((k.value(), Remembered { seq, at_us, body }));
            }
        }
        all.sort_by_key(|(_, r)| (r.at_us, r.seq));
        let expired = all
            .iter()
            .take_while(|(_, r)| now_us.saturating_sub(r.at_us) >= policy.window_us())
            .count();
        let drop = expired.max(all.len().saturating_sub(policy.max_keys));
        if drop > 0 {
            let txn = self.db.begin_write()?;
            {
                let mut table = txn.open_table(KEYS)?;
                for (id, _) in &all[..drop] {
                    table.remove(id)?;
                }
            }
            txn.commit()?;
        }
        Ok(all.split_off(drop))
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

    #[test]
    fn keys_are_stored_with_their_events_and_trimmed_on_open() {
        use crate::idempotency::{KeyPolicy, Remembered};
        let dir = tempfile::tempdir().unwrap();
        let policy = KeyPolicy {
            window: std::time::Duration::from_secs(10),
            max_keys: 2,
            max_key_bytes: 8,
        };
        let r = |seq: u64, at_s: u64| Remembered {
            seq,
            at_us: at_s * 1_000_000,
            body: u128::from(seq),
        };
        {
            let store = Store::open(dir.path(), 100).unwrap();
            store
                .append_keyed(1, 1, "1", Some((11, r(1, 100))), &[])
                .unwrap();
            store
                .append_keyed(2, 2, "2", Some((12, r(2, 101))), &[])
                .unwrap();
            store
                .append_keyed(3, 3, "3", Some((13, r(3, 102))), &[])
                .unwrap();
            // A forgotten key is deleted in the commit of the event that pushed it out.
            store
                .append_keyed(4, 4, "4", Some((14, r(4, 103))), &[12])
                .unwrap();
        }
        let store = Store::open(dir.path(), 100).unwrap();
        let ids =
            |keys: Vec<(u128, Remembered)>| keys.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
        // 11, 13, 14 left; at most 2 kept, the newest.
        assert_eq!(ids(store.keys(&policy, 104_000_000).unwrap()), [13, 14]);
        // And the trimmed ones are gone from the file; past the window, all are.
        assert_eq!(
            ids(store
                .keys(
                    &KeyPolicy {
                        max_keys: 10,
                        ..policy
                    },
                    104_000_000
                )
                .unwrap()),
            [13, 14]
        );
        assert!(store.keys(&policy, 200_000_000).unwrap().is_empty());
        assert_eq!(store.tail(10).unwrap().len(), 4, "events are not touched");
    }
}
