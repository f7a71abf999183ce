//! Where attachment downloads may go. A signed event names its attachment URLs, so a URL is
//! only fetched from an allow-listed CDN host, never from a private, loopback, link-local or
//! otherwise non-public address: checked on every redirect hop (followed by hand) and at
//! connect time by the client's own resolver, so a DNS answer that changes between check and
//! connect cannot slip through. The whole download, every hop included, has one deadline.

use std::{
    error::Error as StdError,
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
};

/// Discord's attachment CDN hosts (`INGEST_ATTACHMENT_HOSTS` when unset).
pub const DEFAULT_HOSTS: [&str; 2] = ["cdn.discordapp.com", "media.discordapp.net"];

/// Which attachment URLs ingest may download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentPolicy {
    /// Host names (exact, case-insensitive) downloads and their redirects may go to.
    pub hosts: Vec<String>,
    /// Test and demo only: a host (name or IP literal) that may be fetched at a non-public
    /// address, over plain http, without DNS, e.g. a fake CDN on 127.0.0.1. Empty in
    /// production.
    pub local_exceptions: Vec<(String, IpAddr)>,
    /// Most redirects followed for one attachment.
    pub max_redirects: usize,
    /// Deadline of one attachment's whole download, every hop included.
    pub timeout: Duration,
}

impl Default for AttachmentPolicy {
    fn default() -> Self {
        Self {
            hosts: DEFAULT_HOSTS.iter().map(|h| (*h).to_owned()).collect(),
            local_exceptions: Vec::new(),
            max_redirects: 3,
            timeout: Duration::from_secs(30),
        }
    }
}

impl AttachmentPolicy {
    /// The hosts of `INGEST_ATTACHMENT_HOSTS` (comma-separated names).
    pub fn parse_hosts(list: &str) -> Result<Vec<String>, String> {
        let hosts: Vec<String> = list
            .split(',')
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        if hosts.is_empty() {
            return Err("names no host: no attachment could ever be downloaded".into());
        }
        if let Some(bad) = hosts
            .iter()
            .find(|h| h.contains(['/', ':', '@', ' ']) || h.parse::<IpAddr>().is_ok())
        {
            return Err(format!("{bad:?} is not a host name"));
        }
        Ok(hosts)
    }

    /// Test and demo only: also allow `host` at `ip` (see [`Self::local_exceptions`]).
    pub fn allowing_local(mut self, host: &str, ip: IpAddr) -> Self {
        self.local_exceptions.push((host.to_ascii_lowercase(), ip));
        self
    }

    fn exception(&self, host: &str) -> Option<IpAddr> {
        self.local_exceptions
            .iter()
            .find(|(h, _)| h == host)
            .map(|(_, ip)| *ip)
    }

    /// Whether `url` may be requested: scheme, host and, for an IP literal, its address.
    /// Names are checked again, by address, when the client resolves them.
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        let host = url
            .host_str()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .ok_or_else(|| Refused(format!("{url} names no host")))?;
        if self.exception(&host).is_some() {
            return match url.scheme() {
                "http" | "https" => Ok(()),
                other => Err(Refused(format!("scheme {other} is not allowed"))),
            };
        }
        if url.scheme() != "https" {
            return Err(Refused(format!(
                "scheme {} is not allowed (https only)",
                url.scheme()
            )));
        }
        if host.parse::<IpAddr>().is_ok() {
            return Err(Refused(format!(
                "host {host} is an address, not a CDN host"
            )));
        }
        if !self.hosts.contains(&host) {
            return Err(Refused(format!(
                "host {host} is not an allowed attachment host"
            )));
        }
        Ok(())
    }
}

/// A download the policy does not allow (never retried).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused: {}", self.0)
    }
}

impl StdError for Refused {}

/// Whether `e` (or what caused it) is the resolver refusing an address.
pub fn is_refusal(e: &(dyn StdError + 'static)) -> Option<String> {
    let mut source: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refused>() {
            return Some(r.to_string());
        }
        source = s.source();
    }
    None
}

/// Whether an address is on the public internet: not private, loopback, link-local, CGNAT,
/// unspecified, multicast, broadcast, documentation or reserved, nor an IPv6 form of one.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16) embed an IPv4
    // address that is what gets reached.
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    if s[..6] == [0; 6] {
        return !ip.is_unspecified() && !ip.is_loopback() && is_public_v4(embedded(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return is_public_v4(embedded(s[1], s[2]));
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
}

/// The client's resolver: every name is resolved here and only public addresses are handed
/// to the connector (a name with any non-public address is refused), except a policy's local
/// exceptions, which resolve to their fixed address without DNS.
struct CheckedResolver {
    exceptions: Vec<(String, IpAddr)>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        let fixed = self
            .exceptions
            .iter()
            .find(|(h, _)| *h == host)
            .map(|(_, ip)| *ip);
        Box::pin(async move {
            if let Some(ip) = fixed {
                let addrs: Addrs = Box::new(std::iter::once(SocketAddr::new(ip, 0)));
                return Ok(addrs);
            }
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if found.is_empty() {
                return Err(Box::new(Refused(format!("{host} has no address"))) as _);
            }
            if let Some(bad) = found.iter().find(|a| !is_public(a.ip())) {
                return Err(Box::new(Refused(format!(
                    "{host} resolves to non-public address {}",
                    bad.ip()
                ))) as _);
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// An HTTP client bound to a policy: no proxy (it would resolve names for us), no automatic
/// redirects (each hop is checked by [`AttachmentPolicy::check_url`]), names resolved by the
/// checking resolver.
pub fn client(policy: &AttachmentPolicy) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(policy.timeout)
        .dns_resolver(Arc::new(CheckedResolver {
            exceptions: policy.local_exceptions.clone(),
        }))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "2002:7f00:1::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
        ] {
            assert!(!is_public(ip(private)), "{private}");
        }
        for public in [
            "162.159.128.233",
            "100.128.0.1",
            "8.8.8.8",
            "2606:4700::6810:84e5",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip(public)), "{public}");
        }
    }

    #[test]
    fn urls_are_checked_by_scheme_and_host() {
        let policy = AttachmentPolicy::default();
        let ok = |u: &str| policy.check_url(&Url::parse(u).unwrap());
        assert!(ok("https://cdn.discordapp.com/attachments/1/2/a.png").is_ok());
        assert!(ok("https://MEDIA.discordapp.net./x.png").is_ok());
        assert!(ok("http://cdn.discordapp.com/a.png").is_err());
        assert!(ok("https://evil.example/a.png").is_err());
        assert!(ok("https://cdn.discordapp.com.evil.example/a.png").is_err());
        assert!(ok("https://127.0.0.1/a.png").is_err());
        assert!(ok("https://[::1]/a.png").is_err());
        assert!(ok("http://127.0.0.1:9/a.png").is_err());
        let test = policy.allowing_local("127.0.0.1", ip("127.0.0.1"));
        assert!(
            test.check_url(&Url::parse("http://127.0.0.1:9/a.png").unwrap())
                .is_ok()
        );
    }

    #[test]
    fn host_lists_are_parsed_and_checked() {
        assert_eq!(
            AttachmentPolicy::parse_hosts(" cdn.discordapp.com, Media.Discordapp.net. ,").unwrap(),
            vec!["cdn.discordapp.com", "media.discordapp.net"]
        );
        assert!(AttachmentPolicy::parse_hosts(" , ").is_err());
        assert!(AttachmentPolicy::parse_hosts("127.0.0.1").is_err());
        assert!(AttachmentPolicy::parse_hosts("https://cdn.discordapp.com").is_err());
    }
}
