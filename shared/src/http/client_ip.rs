//! Which client sent a request, for sign-in throttling: the address an entry
//! point vouches for (Lambda: API Gateway's `sourceIp`), else the TCP peer,
//! or what a configured trusted proxy says it forwarded for.

use crate::domain::ClientId;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{HeaderMap, request::Parts};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

/// The client's address as the entry point saw it, put into the request's
/// extensions by that entry point (the Lambda functions do, from the request
/// context); it wins over the TCP peer, which there is API Gateway's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceIp(pub IpAddr);

/// Proxies whose `X-Forwarded-For` is believed (`ticketd --trusted-proxies`),
/// as networks. Put into the request's extensions (an `Extension` layer);
/// absent or empty, forwarded headers are ignored and the peer is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Comma-separated IPs and CIDRs, e.g. `10.0.0.1, 10.1.0.0/16, ::1`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let bad = || format!("{item:?} is not an IP address or CIDR (e.g. 10.0.0.0/8)");
            let (ip, bits) = match item.split_once('/') {
                Some((ip, bits)) => (ip, Some(bits)),
                None => (item, None),
            };
            let ip: IpAddr = ip.parse().map_err(|_| bad())?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(bad)?,
                None => max,
            };
            nets.push((ip, bits));
        }
        Ok(Self(nets))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|&(net, bits)| match (canonical(net), ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u32::from(n).into(), 32, bits) == masked(u32::from(a).into(), 32, bits)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => masked(n.into(), 128, bits) == masked(a.into(), 128, bits),
            _ => false,
        })
    }

    /// The client of a request from `peer`: the peer itself unless it is a
    /// trusted proxy; then, walking `X-Forwarded-For` from the right (each
    /// proxy appends the address it saw), the first address that is not a
    /// trusted proxy. Entries left of an unreadable one are never believed.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer;
        if !self.contains(peer) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.into_iter().rev() {
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

fn masked(addr: u128, width: u32, bits: u8) -> u128 {
    let keep = u32::from(bits).min(width);
    if keep == 0 { 0 } else { addr >> (width - keep) }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `203.0.113.7`, `203.0.113.7:5000`, `2001:db8::1` or `[2001:db8::1]:5000`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// The requesting client, for throttling. Never fails: a request with no
/// known peer (a router driven in-process) is [`ClientId::UNKNOWN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client(pub ClientId);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        if let Some(SourceIp(ip)) = parts.extensions.get::<SourceIp>() {
            return Ok(Client(ClientId::from_ip(*ip)));
        }
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Ok(Client(ClientId::UNKNOWN));
        };
        let ip = match parts.extensions.get::<TrustedProxies>() {
            Some(trusted) => trusted.client(peer.ip(), &parts.headers),
            None => peer.ip(),
        };
        Ok(Client(ClientId::from_ip(ip)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn trusted_proxies_parse_addresses_and_networks_and_refuse_the_rest() {
        let t = TrustedProxies::parse(" 10.0.0.1, 192.168.0.0/16,::1 ,2001:db8::/32").unwrap();
        assert!(t.contains(ip("10.0.0.1")));
        assert!(!t.contains(ip("10.0.0.2")));
        assert!(t.contains(ip("192.168.44.3")));
        assert!(t.contains(ip("::ffff:192.168.1.1")), "IPv4-mapped IPv6 is IPv4");
        assert!(t.contains(ip("::1")));
        assert!(t.contains(ip("2001:db8:ffff::1")));
        assert!(!t.contains(ip("2001:db9::1")));
        assert_eq!(TrustedProxies::parse("").unwrap(), TrustedProxies::default());
        for bad in ["10.0.0.0/33", "nope", "10.0.0.1/x", "::/129"] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
        assert!(TrustedProxies::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        let h = forwarded(&["198.51.100.9"]);
        assert_eq!(none.client(ip("10.0.0.1"), &h), ip("10.0.0.1"), "no proxies trusted");

        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(t.client(ip("203.0.113.5"), &h), ip("203.0.113.5"), "peer is no proxy");
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("198.51.100.9"));
        // A client's own forged entries sit left of what the proxy appended.
        let spoofed = forwarded(&["1.2.3.4, 198.51.100.9"]);
        assert_eq!(t.client(ip("10.0.0.1"), &spoofed), ip("198.51.100.9"));
        // Through two trusted proxies, across repeated headers.
        let chain = forwarded(&["198.51.100.9", "10.0.0.7"]);
        assert_eq!(t.client(ip("10.0.0.1"), &chain), ip("198.51.100.9"));
        // Garbage stops the walk at the last readable hop.
        let garbage = forwarded(&["198.51.100.9, junk, 10.0.0.7"]);
        assert_eq!(t.client(ip("10.0.0.1"), &garbage), ip("10.0.0.7"));
        assert_eq!(
            t.client(ip("10.0.0.1"), &forwarded(&["[2001:db8::1]:4711"])),
            ip("2001:db8::1")
        );
        assert_eq!(t.client(ip("10.0.0.1"), &HeaderMap::new()), ip("10.0.0.1"));
    }
}
