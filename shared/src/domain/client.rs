//! Who is signing in, as far as throttling can tell: the client's network
//! address, and the counters that sign-in throttling keeps per client.

use super::values::Email;
use std::fmt;
use std::net::IpAddr;

/// The network a request came from. IPv4 counts per address; IPv6 per /64,
/// because one subscriber is routinely handed a whole /64 and could otherwise
/// take a fresh address for every guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId(Option<IpAddr>);

impl ClientId {
    pub fn from_ip(ip: IpAddr) -> Self {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    IpAddr::V6(bits.into())
                }
            },
            v4 => v4,
        };
        Self(Some(ip))
    }

    /// A request whose peer is not known (e.g. a router driven in-process):
    /// all such requests share one client's limits.
    pub const UNKNOWN: Self = Self(None);
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(IpAddr::V6(v6)) => write!(f, "{v6}/64"),
            Some(v4) => write!(f, "{v4}"),
            None => f.write_str("unknown"),
        }
    }
}

/// What a sign-in failure is counted against. Both counts apply: the first
/// locks out one client guessing one account without locking the owner out
/// elsewhere; the second stops one client spraying guesses over many accounts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    EmailFromClient(Email, ClientId),
    Client(ClientId),
}

impl ThrottleKey {
    /// A text form unique to the key, for storage. The client comes first and
    /// never contains `#`, so the form cannot be ambiguous whatever the email holds.
    pub fn storage_key(&self) -> String {
        match self {
            Self::EmailFromClient(email, client) => format!("CLIENT#{client}#EMAIL#{}", email.as_str()),
            Self::Client(client) => format!("CLIENT#{client}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4() {
        let a = ClientId::from_ip("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = ClientId::from_ip("2001:db8:1:2:bbbb::9".parse().unwrap());
        let other = ClientId::from_ip("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        let mapped = ClientId::from_ip("::ffff:203.0.113.7".parse().unwrap());
        assert_eq!(mapped, ClientId::from_ip("203.0.113.7".parse().unwrap()));
        assert_eq!(mapped.to_string(), "203.0.113.7");
        assert_eq!(ClientId::UNKNOWN.to_string(), "unknown");
    }

    #[test]
    fn throttle_keys_differ_by_client_and_by_email() {
        let c1 = ClientId::from_ip("10.0.0.1".parse().unwrap());
        let c2 = ClientId::from_ip("10.0.0.2".parse().unwrap());
        let e = Email::from_trusted("a@x.io".into());
        let keys = [
            ThrottleKey::EmailFromClient(e.clone(), c1).storage_key(),
            ThrottleKey::EmailFromClient(e, c2).storage_key(),
            ThrottleKey::Client(c1).storage_key(),
            ThrottleKey::Client(c2).storage_key(),
        ];
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), 4, "{keys:?}");
    }
}
