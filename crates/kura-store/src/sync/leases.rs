//! Serial leases: blocks of Kura ID serials the registry granted this workstation, and the
//! serials taken from them (never one issued twice).

use serde::{Deserialize, Serialize};

use crate::{Store, StoreError, Tx};

/// A block of serials the registry leased to this workstation; `next` is the first not issued.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseBlock {
    pub year: i32,
    pub first: u64,
    pub last: u64,
    pub next: u64,
}

impl LeaseBlock {
    pub fn left(&self) -> u64 {
        (self.last + 1).saturating_sub(self.next)
    }
}

impl Tx<'_> {
    /// Adds a leased block; serials this database issued itself before (its own counter) are
    /// skipped, so that no ID is issued twice here.
    pub fn add_lease(
        &mut self,
        year: i32,
        first: u64,
        last: u64,
    ) -> Result<LeaseBlock, StoreError> {
        let mut state = self.sync_state()?;
        if let Some(b) = state
            .leases
            .iter()
            .find(|b| b.year == year && b.first == first)
        {
            return Ok(*b);
        }
        let own_next = self.local_serial(year)?;
        let block = LeaseBlock {
            year,
            first,
            last,
            next: first.max(own_next),
        };
        state.leases.push(block);
        self.write_leases(&state.leases)?;
        Ok(block)
    }

    pub(super) fn local_serial(&self, year: i32) -> Result<u64, StoreError> {
        let key = format!("serial:{year}");
        self.meta(&key)?
            .map(|v| {
                v.parse()
                    .map_err(|_| StoreError::Corrupt(format!("meta {key} = {v:?}")))
            })
            .transpose()
            .map(|n| n.unwrap_or(1))
    }

    pub(super) fn write_leases(&self, leases: &[LeaseBlock]) -> Result<(), StoreError> {
        let json = serde_json::to_string(leases)
            .map_err(|e| StoreError::Corrupt(format!("leases: {e}")))?;
        self.conn()
            .prepare_cached("UPDATE sync_state SET leases = ?1 WHERE id = 1")?
            .execute([json])?;
        Ok(())
    }

    /// Stops issuing from a block another bench was leased too (the registry forgot it had
    /// granted it to this one): what is left of it is burned. Returns how many serials.
    pub fn drop_lease(&mut self, year: i32, first: u64) -> Result<u64, StoreError> {
        let mut leases = self.sync_state()?.leases;
        let mut burned = 0;
        for b in leases
            .iter_mut()
            .filter(|b| b.year == year && b.first == first)
        {
            burned += b.left();
            b.next = b.last + 1;
        }
        self.write_leases(&leases)?;
        Ok(burned)
    }

    /// Burns what is left of every leased block (a database restored from a backup may have
    /// issued those serials after the copy was taken): the next IDs come from a new lease.
    /// Returns how many serials were burned.
    pub fn burn_leases(&mut self) -> Result<u64, StoreError> {
        let mut leases = self.sync_state()?.leases;
        let mut burned = 0;
        for b in &mut leases {
            burned += b.left();
            b.next = b.last + 1;
        }
        self.write_leases(&leases)?;
        Ok(burned)
    }

    /// Takes `count` serials for Kura IDs of `year`: from the registry's leases once enrolled
    /// (refused, never a collision, when they are used up), else from this database's counter.
    pub fn take_serials(&mut self, year: i32, count: u64) -> Result<Vec<u64>, StoreError> {
        let state = self.sync_state()?;
        if state.restored_at.is_some() {
            return Err(StoreError::RestoredUnsynced);
        }
        if state.registry_url.is_none() {
            let next = self.local_serial(year)?;
            self.set_meta(&format!("serial:{year}"), &(next + count).to_string())?;
            return Ok((next..next + count).collect());
        }
        let mut leases = state.leases;
        let left: u64 = leases
            .iter()
            .filter(|b| b.year == year)
            .map(LeaseBlock::left)
            .sum();
        if left < count {
            return Err(StoreError::NoSerials {
                year,
                wanted: count,
                left,
            });
        }
        let mut out = Vec::with_capacity(count as usize);
        for b in leases.iter_mut().filter(|b| b.year == year) {
            while out.len() < count as usize && b.next <= b.last {
                out.push(b.next);
                b.next += 1;
            }
        }
        self.write_leases(&leases)?;
        Ok(out)
    }
}

impl Store {
    /// How many Kura IDs this workstation issued since `since` (µs): a day's worth, for the
    /// lease warning.
    pub fn ids_issued_since(&self, since: i64) -> Result<u64, StoreError> {
        // Newest first along the (workstation, seq) index, stopping at the first older event.
        let mut st = self.conn().prepare_cached(
            "SELECT at, kind FROM events WHERE workstation = ?1 ORDER BY seq DESC",
        )?;
        let mut rows = st.query([self.workstation().as_bytes().as_slice()])?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            if r.get::<_, i64>(0)? < since {
                break;
            }
            let kind: String = r.get(1)?;
            if kind == "registered" || kind == "derived" {
                n += 1;
            }
        }
        Ok(n)
    }
}
