//! A budget of file bytes a process holds in memory at once.
//!
//! A process serves several deliveries at once (the local queue sends four; a Cloud Run
//! instance may be given more than one), and each holds up to a read group of images. Without a
//! shared bound, peak memory grows with the number of deliveries times the image size; with it,
//! a process stays near the budget whatever arrives. Reservations are taken whole (never piece
//! by piece), and a holder that wants more only tries (`try_reserve`, as a chunk's read-ahead
//! does), so two holders can never wait on each other.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget is counted in KiB so that a `u32` of permits covers it.
const UNIT: u64 = 1024;

#[derive(Clone, Debug)]
pub struct MemoryBudget {
    permits: Arc<Semaphore>,
    units: u32,
}

impl MemoryBudget {
    pub fn new(bytes: u64) -> Self {
        let units = (bytes / UNIT).clamp(1, u64::from(u32::MAX >> 4)) as u32;
        Self { permits: Arc::new(Semaphore::new(units as usize)), units }
    }

    /// Waits until `bytes` fit (a request larger than the whole budget waits for all of it),
    /// and holds them until the returned permit is dropped.
    pub async fn reserve(&self, bytes: u64) -> OwnedSemaphorePermit {
        let units = self.units_of(bytes);
        self.permits.clone().acquire_many_owned(units).await.expect("the budget's semaphore is never closed")
    }

    /// Holds `bytes` if they fit now, without waiting.
    pub fn try_reserve(&self, bytes: u64) -> Option<OwnedSemaphorePermit> {
        let units = self.units_of(bytes);
        self.permits.clone().try_acquire_many_owned(units).ok()
    }

    /// A request larger than the whole budget asks for all of it.
    fn units_of(&self, bytes: u64) -> u32 {
        bytes.div_ceil(UNIT).clamp(1, u64::from(self.units)) as u32
    }

    /// Bytes free right now.
    #[cfg(test)]
    fn available(&self) -> u64 {
        self.permits.available_permits() as u64 * UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_wait_for_room_attempts_do_not_and_oversized_ones_take_the_whole_budget() {
        let budget = MemoryBudget::new(10 * UNIT);
        let first = budget.reserve(6 * UNIT).await;
        assert_eq!(budget.available(), 4 * UNIT);
        // 6 KiB more do not fit while the first 6 are held.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), budget.reserve(6 * UNIT)).await;
        assert!(waiting.is_err(), "a reservation that does not fit waits");
        assert!(budget.try_reserve(6 * UNIT).is_none(), "an attempt that does not fit gets nothing");
        let small = budget.try_reserve(4 * UNIT).expect("4 KiB fit");
        assert_eq!(budget.available(), 0);
        drop((first, small));
        let whole = budget.reserve(1 << 30).await;
        assert_eq!(budget.available(), 0, "an oversized reservation holds the whole budget");
        drop(whole);
        assert_eq!(budget.available(), 10 * UNIT);
    }
}
