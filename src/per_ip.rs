//! Open connections per client address (`--max-connections-per-ip`).
//!
//! Every accepted TCP connection (HTTP, WebSocket, or still in its TLS
//! handshake) takes a [`Slot`] for its client's address and gives it back
//! when it ends; an address at the cap gets no slot and its connection is
//! answered with HTTP 429. IPv6 clients are counted per /64, the block one
//! subscriber usually gets, so one client cannot dodge the cap by walking
//! its own prefix; IPv4-mapped IPv6 addresses count as the IPv4 address.
//!
//! Loopback is not exempt: a reverse proxy on the same machine connects
//! from 127.0.0.1 for every user, and an exemption would let the whole
//! internet past the cap through it. Behind a proxy all users share the
//! proxy's address, so such deployments set the cap to 0 (none) and limit
//! per client in the proxy.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// The address a client is counted under: IPv4 as is, IPv6 cut to its /64.
pub fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Counts open connections per client address.
#[derive(Debug)]
pub struct PerIp {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of an address; dropping it gives the place back.
#[derive(Debug)]
pub struct Slot {
    owner: Option<(Arc<PerIp>, IpAddr)>,
}

impl PerIp {
    /// At most `max` connections per address; 0 means no cap.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a connection from `ip`, or `None` when its address holds
    /// the maximum already.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        if self.max == 0 {
            return Some(Slot { owner: None });
        }
        let key = key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            owner: Some((self.clone(), key)),
        })
    }

    /// Connections open from `ip`'s address.
    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&key(ip)).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some((per_ip, key)) = self.owner.take() else {
            return;
        };
        let mut open = per_ip.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                // Forget the address: the map holds only live clients.
                open.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_cap_holds_per_address_and_places_come_back() {
        let per_ip = PerIp::new(2);
        let a1 = per_ip.try_acquire(ip("192.0.2.1")).unwrap();
        let _a2 = per_ip.try_acquire(ip("192.0.2.1")).unwrap();
        assert!(per_ip.try_acquire(ip("192.0.2.1")).is_none());
        // Another address is not affected.
        let _b = per_ip.try_acquire(ip("192.0.2.2")).unwrap();
        drop(a1);
        assert!(per_ip.try_acquire(ip("192.0.2.1")).is_some());
        assert_eq!(per_ip.open(ip("192.0.2.1")), 1);
    }

    #[test]
    fn an_ipv6_client_is_one_slash_64() {
        let per_ip = PerIp::new(1);
        let _a = per_ip.try_acquire(ip("2001:db8:1:2::1")).unwrap();
        assert!(per_ip.try_acquire(ip("2001:db8:1:2:ffff::9")).is_none());
        assert!(per_ip.try_acquire(ip("2001:db8:1:3::1")).is_some());
        let _m = per_ip.try_acquire(ip("::ffff:192.0.2.9")).unwrap();
        assert!(per_ip.try_acquire(ip("192.0.2.9")).is_none());
    }

    #[test]
    fn zero_means_no_cap_and_no_bookkeeping() {
        let per_ip = PerIp::new(0);
        let slots: Vec<_> = (0..1000)
            .map(|_| per_ip.try_acquire(ip("127.0.0.1")).unwrap())
            .collect();
        assert_eq!(per_ip.open(ip("127.0.0.1")), 0);
        drop(slots);
    }

    #[test]
    fn the_map_forgets_addresses_that_left() {
        let per_ip = PerIp::new(5);
        for i in 0..100u8 {
            drop(per_ip.try_acquire(IpAddr::from([10, 0, 0, i])).unwrap());
        }
        assert!(per_ip.open.lock().unwrap().is_empty());
    }
}
