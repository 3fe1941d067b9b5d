//! Webhooks, the pure parts: the event types a receiver subscribes to, the
//! Standard Webhooks signature (`webhook-signature: v1,<base64 HMAC-SHA256
//! of "{id}.{timestamp}.{body}">`, secret `whsec_<base64>`), the retry
//! schedule, and which addresses a delivery may never reach (SSRF); the
//! entities are in `model`.

mod model;
pub use model::*;

use crate::error::Error;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// What a receiver can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WebhookEventType {
    TicketCreated,
    TicketAssigned,
    TicketUpdated,
    TicketStatusChanged,
    TicketResponded,
    TicketAutoClosed,
    TicketReplied,
}

impl WebhookEventType {
    pub const ALL: [WebhookEventType; 7] = [
        WebhookEventType::TicketCreated,
        WebhookEventType::TicketAssigned,
        WebhookEventType::TicketUpdated,
        WebhookEventType::TicketStatusChanged,
        WebhookEventType::TicketResponded,
        WebhookEventType::TicketAutoClosed,
        WebhookEventType::TicketReplied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEventType::TicketCreated => "ticket.created",
            WebhookEventType::TicketAssigned => "ticket.assigned",
            WebhookEventType::TicketUpdated => "ticket.updated",
            WebhookEventType::TicketStatusChanged => "ticket.status_changed",
            WebhookEventType::TicketResponded => "ticket.responded",
            WebhookEventType::TicketAutoClosed => "ticket.auto_closed",
            WebhookEventType::TicketReplied => "ticket.replied",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<Self, Error> {
        WebhookEventType::ALL
            .into_iter()
            .find(|t| t.as_str() == raw)
            .ok_or_else(|| Error::invalid(field, "each event must be one of ticket.created, ticket.assigned, ticket.updated, ticket.status_changed, ticket.responded, ticket.auto_closed, ticket.replied"))
    }
}

/// The secret's bytes: 32, shown to the receiver once as `whsec_<base64>`.
pub const SECRET_BYTES: usize = 32;
const SECRET_PREFIX: &str = "whsec_";

/// A new signing secret, as the receiver is shown it.
pub fn generate_webhook_secret() -> String {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The `webhook-signature` value of `body` sent as message `id` at
/// `timestamp` (seconds since the epoch), under `secret` (`whsec_...`).
/// `None` if the secret is not one we issued.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// When the attempts after the first are made, counted from the first: the
/// first retry within 30 s, then exponential, past 24 hours in all
/// (delivery adds up to 20% jitter to each wait).
pub const RETRY_AFTER: [Duration; 10] = [
    Duration::from_secs(10),
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(3600),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(4 * 3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(6 * 3600),
];

/// A delivery's timeout; any 2xx within it is success.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a delivery may connect to `ip`: never to loopback, private,
/// link-local (the cloud metadata address 169.254.169.254 among them),
/// unique-local, carrier-grade NAT, multicast, broadcast, unspecified or
/// documentation addresses, whether written as IPv4, IPv6 or IPv4 inside
/// IPv6. Checked on the address actually connected to, so a name that
/// resolves (or re-resolves) to one of these is refused too.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10, carrier-grade NAT; 192.0.0.0/24, protocol assignments.
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        // 198.18.0.0/15, benchmarking; 240.0.0.0/4, reserved.
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

/// Only global unicast (2000::/3) is public, less the parts of it that are
/// not: so every form that embeds IPv4 or reaches a local network is refused
/// by what it is not (::/8 with IPv4-compatible, IPv4-translated
/// `::ffff:0:0/96` and NAT64 `64:ff9b::/96`, discard `100::/64`, unique-local
/// `fc00::/7`, site-local `fec0::/10`, link-local `fe80::/10`, multicast,
/// unspecified, loopback), and inside it: `2001::/23` (IETF protocol
/// assignments: Teredo `2001::/32`, benchmarking, ORCHID), documentation
/// `2001:db8::/32` and `3fff::/20`, 6to4 `2002::/16`. (IPv4-mapped
/// `::ffff:a.b.c.d` is checked as the IPv4 address it is.)
fn is_public_v6(ip: Ipv6Addr) -> bool {
    let [first, second, ..] = ip.segments();
    let global_unicast = (first & 0xe000) == 0x2000;
    let reserved = match first {
        0x2001 => second < 0x0200 || second == 0x0db8,
        0x2002 => true,
        0x3fff => second < 0x1000,
        _ => false,
    };
    global_unicast && !reserved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_standard_webhooks_example_does() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(sign("not-ours", "id", 1, body), None);
    }

    #[test]
    fn secrets_are_fresh_and_usable() {
        let a = generate_webhook_secret();
        assert!(a.starts_with("whsec_") && a != generate_webhook_secret());
        assert!(sign(&a, "id", 1, "{}").is_some());
    }

    #[test]
    fn retries_start_within_30_seconds_and_last_past_a_day() {
        assert!(RETRY_AFTER[0] <= Duration::from_secs(30));
        assert!(RETRY_AFTER.iter().sum::<Duration>() >= Duration::from_secs(24 * 3600));
        assert!(RETRY_AFTER.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn private_and_special_addresses_are_never_reached() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(bad.parse().unwrap()), "{bad}");
        }
        for good in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(good.parse().unwrap()), "{good}");
        }
    }

    /// Each IPv6 form that embeds an IPv4 address or names a non-global
    /// network is refused; global unicast around them is not.
    #[test]
    fn ipv6_forms_embedding_ipv4_or_local_networks_are_refused() {
        for (bad, what) in [
            ("::ffff:0:7f00:1", "IPv4-translated 127.0.0.1"),
            ("::ffff:0:a9fe:a9fe", "IPv4-translated 169.254.169.254"),
            ("::ffff:7f00:1", "IPv4-mapped 127.0.0.1"),
            ("::7f00:1", "IPv4-compatible 127.0.0.1"),
            ("2002:7f00:1::1", "6to4 of 127.0.0.1"),
            ("2002:808:808::1", "6to4 of a public address"),
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo"),
            ("2001::1", "Teredo"),
            ("2001:2::1", "benchmarking"),
            ("2001:20::1", "ORCHIDv2"),
            ("64:ff9b::7f00:1", "NAT64 of 127.0.0.1"),
            ("64:ff9b:1::a00:1", "local-use NAT64"),
            ("fec0::1", "site-local"),
            ("feff::1", "site-local"),
            ("fc00::1", "unique-local"),
            ("fdff:ffff::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("ff02::1", "multicast"),
            ("ff0e::1", "global multicast"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("100::1", "discard"),
            ("100::ffff:ffff:ffff:ffff", "discard"),
            ("4000::1", "outside global unicast"),
            ("1::1", "reserved"),
        ] {
            assert!(!is_public(bad.parse().unwrap()), "{bad}: {what}");
        }
        for good in [
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "2001:200::1",
            "2001:4860:4860::8888",
            "2003::1",
            "3fff:1000::1",
        ] {
            assert!(is_public(good.parse().unwrap()), "{good}");
        }
    }
}
