//! The connection caps: one slot of the global count and one of the client address's, held by
//! a connection for as long as it is open; and the file-descriptor headroom the global cap must
//! fit in.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    GlobalLimit,
    AddressLimit,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::GlobalLimit => "global_limit",
            Refusal::AddressLimit => "address_limit",
        }
    }
}

/// The open connections, overall and per client address.
#[derive(Clone)]
pub struct ConnectionLimits {
    global: Arc<Semaphore>,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_address: usize,
}

/// A connection's slots, given back when it is dropped.
pub struct ConnectionSlot {
    _global: OwnedSemaphorePermit,
    address: IpAddr,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl ConnectionLimits {
    pub fn new(max: usize, max_per_address: usize) -> Self {
        ConnectionLimits {
            global: Arc::new(Semaphore::new(max)),
            per_address: Arc::default(),
            max_per_address,
        }
    }

    /// Takes a slot for a connection from `address`, if both caps leave room.
    pub fn admit(&self, address: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let address = client_of(address);
        if !self.address_has_room(address) {
            return Err(Refusal::AddressLimit);
        }
        let global = self
            .global
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::GlobalLimit)?;
        Ok(self.slot(global, address))
    }

    /// As [`admit`](Self::admit), waiting up to `wait` for a global slot (one being freed by a
    /// displaced connection).
    pub async fn admit_within(
        &self,
        address: IpAddr,
        wait: Duration,
    ) -> Result<ConnectionSlot, Refusal> {
        let address = client_of(address);
        let global = tokio::time::timeout(wait, self.global.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(Refusal::GlobalLimit)?;
        if !self.address_has_room(address) {
            return Err(Refusal::AddressLimit);
        }
        Ok(self.slot(global, address))
    }

    fn address_has_room(&self, address: IpAddr) -> bool {
        let counts = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        counts
            .get(&address)
            .is_none_or(|&n| n < self.max_per_address)
    }

    /// Counts a connection from `address` (a check of its room just before is enough: only
    /// the accept loop admits).
    fn slot(&self, global: OwnedSemaphorePermit, address: IpAddr) -> ConnectionSlot {
        let mut counts = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry(address).or_insert(0) += 1;
        ConnectionSlot {
            _global: global,
            address,
            per_address: self.per_address.clone(),
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

/// The client an address stands for: an IPv4 address, or an IPv6 address's /64 (one host
/// commonly has a whole /64, so counting single IPv6 addresses would cap nothing).
pub fn client_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !u128::from(u64::MAX);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// The connection cap the process's file-descriptor limit leaves room for: the soft limit is
/// raised to the hard one first; `reserved` descriptors stay for everything else (Kafka
/// clients, logs, the listener). Warns when the configured cap does not fit.
pub fn fit_to_fd_limit(configured: usize, reserved: u64) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the file-descriptor limit; connection cap not checked");
            return configured;
        }
    };
    let room = limit.saturating_sub(reserved).max(limit / 2);
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    if room < configured {
        tracing::warn!(
            fd_limit = limit,
            reserved,
            configured,
            effective = room,
            "the file-descriptor limit is low for the configured max_connections; capping connections at what it leaves room for (raise `ulimit -n`)"
        );
        return room;
    }
    tracing::info!(
        fd_limit = limit,
        max_connections = configured,
        "file-descriptor limit checked"
    );
    configured
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_of(a), client_of(b));
        assert_ne!(client_of(a), client_of(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(client_of(mapped), IpAddr::from([10, 0, 0, 1]));
    }

    #[test]
    fn caps_overall_and_per_address_and_frees_on_drop() {
        let limits = ConnectionLimits::new(3, 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let a1 = limits.admit(a).unwrap();
        let _a2 = limits.admit(a).unwrap();
        assert_eq!(limits.admit(a).err(), Some(Refusal::AddressLimit));
        let _b1 = limits.admit(b).unwrap();
        assert_eq!(limits.admit(b).err(), Some(Refusal::GlobalLimit));
        drop(a1);
        assert!(
            limits.admit(a).is_ok(),
            "a closed connection frees both slots"
        );
        assert_eq!(
            limits.per_address.lock().unwrap().get(&a),
            Some(&1),
            "the refused attempt holds nothing"
        );
    }
}
