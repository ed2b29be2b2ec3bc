//! Streams per token and per client address, besides the global `max_clients`: one tenant's
//! token, or one address, cannot take every stream the service has (five streams on one
//! source's token starved another tenant's client with 503 when the limit was global only).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Which quota a stream request exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaScope {
    Token,
    Address,
}

/// Open streams counted by key, at most `max` per key.
struct Counts<K> {
    open: Mutex<HashMap<K, usize>>,
    max: usize,
}

impl<K: Hash + Eq + Clone> Counts<K> {
    fn new(max: usize) -> Self {
        Counts {
            open: Mutex::default(),
            max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, usize>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn has_room(&self, key: &K) -> bool {
        self.lock().get(key).is_none_or(|&n| n < self.max)
    }

    fn add(&self, key: &K) {
        *self.lock().entry(key.clone()).or_insert(0) += 1;
    }

    fn remove(&self, key: &K) {
        let mut open = self.lock();
        if let Some(n) = open.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                open.remove(key);
            }
        }
    }
}

/// The per-token and per-address stream counts.
pub struct Quotas {
    tokens: Counts<[u8; 32]>,
    addresses: Counts<IpAddr>,
    /// Taken around check-and-add, so two requests cannot both take the last place.
    admitting: Mutex<()>,
}

/// A stream's place in its token's and its address's quota, given back when dropped.
pub struct QuotaSlot {
    quotas: Arc<Quotas>,
    token: [u8; 32],
    address: IpAddr,
}

impl Quotas {
    pub fn new(max_per_token: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(Quotas {
            tokens: Counts::new(max_per_token),
            addresses: Counts::new(max_per_address),
            admitting: Mutex::new(()),
        })
    }

    /// A place for one more stream of `token` (its digest) from `address`, if both have room.
    pub fn admit(
        self: &Arc<Self>,
        token: [u8; 32],
        address: IpAddr,
    ) -> Result<QuotaSlot, QuotaScope> {
        let _admitting = self.admitting.lock().unwrap_or_else(|p| p.into_inner());
        if !self.tokens.has_room(&token) {
            return Err(QuotaScope::Token);
        }
        if !self.addresses.has_room(&address) {
            return Err(QuotaScope::Address);
        }
        self.tokens.add(&token);
        self.addresses.add(&address);
        Ok(QuotaSlot {
            quotas: self.clone(),
            token,
            address,
        })
    }
}

impl Drop for QuotaSlot {
    fn drop(&mut self) {
        self.quotas.tokens.remove(&self.token);
        self.quotas.addresses.remove(&self.address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_token_and_address_has_its_own_room() {
        let quotas = Quotas::new(2, 3);
        let here: IpAddr = [10, 0, 0, 1].into();
        let there: IpAddr = [10, 0, 0, 2].into();
        let a1 = quotas.admit([1; 32], here).unwrap();
        let _a2 = quotas.admit([1; 32], here).unwrap();
        assert_eq!(quotas.admit([1; 32], there).err(), Some(QuotaScope::Token));
        let _b1 = quotas.admit([2; 32], here).unwrap();
        assert_eq!(quotas.admit([3; 32], here).err(), Some(QuotaScope::Address));
        assert!(quotas.admit([3; 32], there).is_ok(), "another address");
        drop(a1);
        assert!(
            quotas.admit([1; 32], there).is_ok(),
            "a closed stream frees its place"
        );
    }
}
