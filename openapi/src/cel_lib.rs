//! Kubernetes' CEL libraries for URLs, IP addresses, CIDRs, quantities and semantic versions,
//! as kube-apiserver 1.35 offers them in validation rules (k8s.io/apiserver/pkg/cel/library):
//!
//! - `isURL(string)`, `url(string)` and `getScheme()`, `getHost()`, `getHostname()`,
//!   `getPort()`, `getEscapedPath()`, `getQuery()` — URLs as Go's `url.ParseRequestURI` reads
//!   them (an absolute URI or an absolute path);
//! - `isIP(string)`, `ip(string)`, `ip.isCanonical(string)`, `string(ip)` and `family()`,
//!   `isUnspecified()`, `isLoopback()`, `isLinkLocalMulticast()`, `isLinkLocalUnicast()`,
//!   `isGlobalUnicast()` — no zones, no IPv4-mapped IPv6, no leading zeros;
//! - `isCIDR(string)`, `cidr(string)`, `string(cidr)` and `containsIP(ip|string)`,
//!   `containsCIDR(cidr|string)`, `ip()`, `masked()`, `prefixLength()`;
//! - `isQuantity(string)`, `quantity(string)` and `sign()`, `isInteger()`, `asInteger()`,
//!   `asApproximateFloat()`, `add(quantity|int)`, `sub(quantity|int)`, `isGreaterThan()`,
//!   `isLessThan()`, `compareTo()`;
//! - `isSemver(string[, normalize])`, `semver(string[, normalize])` and `major()`, `minor()`,
//!   `patch()`, `isGreaterThan()`, `isLessThan()`, `compareTo()`.
//!
//! Values of these types are opaque CEL values; two of a kind compare with `==` as kube's do
//! (quantities by value, versions by precedence).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use cel::common::types::{Type, BOOL_TYPE, INT_TYPE, STRING_TYPE};
use cel::common::value::{CowVal, Val};
use cel::objects::Opaque;
use cel::{Env, ExecutionError};
use kubox_apimachinery::quantity::Quantity;

type CelResult<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

const URL: &str = "kubernetes.URL";
const IP: &str = "net.IP";
const CIDR: &str = "net.CIDR";
const QUANTITY: &str = "kubernetes.Quantity";
const SEMVER: &str = "kubernetes.Semver";

fn ty(name: &'static str) -> Type {
    Type::new_opaque_type(name)
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/// A URL as Go's `url.URL` holds the parts the accessors return.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Url {
    scheme: String,
    host: String,
    /// The path as written (escaped), or the opaque part of `scheme:opaque`.
    escaped_path: String,
    raw_query: String,
}

impl Opaque for Url {
    fn runtime_type_name(&self) -> &str {
        URL
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Ip(IpAddr);

impl Opaque for Ip {
    fn runtime_type_name(&self) -> &str {
        IP
    }
}

/// A prefix: the address as written and its length.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Opaque for Cidr {
    fn runtime_type_name(&self) -> &str {
        CIDR
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Qty(Quantity);

impl Opaque for Qty {
    fn runtime_type_name(&self) -> &str {
        QUANTITY
    }
}

/// A version; equal when of equal precedence (build metadata does not count).
#[derive(Debug, Clone)]
struct Semver(semver::Version);

impl PartialEq for Semver {
    fn eq(&self, other: &Self) -> bool {
        self.0.cmp_precedence(&other.0) == Ordering::Equal
    }
}

impl Eq for Semver {}

impl Opaque for Semver {
    fn runtime_type_name(&self) -> &str {
        SEMVER
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// Go's `url.ParseRequestURI`: an absolute URI (`scheme:…`) or an absolute path; no fragment
/// is split off; the authority's port must be digits; escapes must be well formed.
fn parse_url(raw: &str) -> Result<Url, String> {
    let bad = |why: &str| Err(format!("parse {raw:?}: {why}"));
    if raw.is_empty() {
        return bad("empty url");
    }
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return bad("net/url: invalid control character in URL");
    }
    if raw == "*" {
        return Ok(Url {
            scheme: String::new(),
            host: String::new(),
            escaped_path: "*".into(),
            raw_query: String::new(),
        });
    }
    // The scheme: a letter, then letters, digits, '+', '-', '.', up to ':'.
    let mut scheme = "";
    let mut rest = raw;
    for (i, c) in raw.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return bad("missing protocol scheme"),
            ':' => {
                scheme = &raw[..i];
                rest = &raw[i + 1..];
                break;
            }
            _ => break,
        }
    }
    let (rest, raw_query) = match rest.split_once('?') {
        Some((r, q)) => (r, q.to_string()),
        None => (rest, String::new()),
    };
    if !rest.starts_with('/') {
        if !scheme.is_empty() {
            return Ok(Url {
                scheme: scheme.to_ascii_lowercase(),
                host: String::new(),
                escaped_path: rest.to_string(),
                raw_query,
            });
        }
        return bad("invalid URI for request");
    }
    let (host, path) = if !scheme.is_empty() && rest.starts_with("//") {
        let auth_end = rest[2..].find('/').map_or(rest.len(), |i| i + 2);
        let authority = &rest[2..auth_end];
        let host = match authority.rfind('@') {
            Some(i) => &authority[i + 1..],
            None => authority,
        };
        check_host(host).map_err(|why| format!("parse {raw:?}: {why}"))?;
        (host.to_string(), &rest[auth_end..])
    } else {
        (String::new(), rest)
    };
    check_escapes(path).map_err(|why| format!("parse {raw:?}: {why}"))?;
    Ok(Url {
        scheme: scheme.to_ascii_lowercase(),
        host,
        escaped_path: path.to_string(),
        raw_query,
    })
}

/// A URL host: `[v6]` or a name, then an optional `:digits` port.
fn check_host(host: &str) -> Result<(), String> {
    if host.starts_with('[') && !host.contains(']') {
        return Err("missing ']' in host".into());
    }
    let (_, port) = split_host(host);
    let digits = |p: &str| {
        p.strip_prefix(':')
            .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()))
    };
    if !port.is_empty() && !digits(port) {
        return Err(format!("invalid port {port:?} after host"));
    }
    Ok(())
}

/// A URL host as its name (an IPv6 address without brackets) and what follows it (`:port`, or
/// empty).
fn split_host(host: &str) -> (&str, &str) {
    match host.strip_prefix('[') {
        Some(inner) => inner.split_once(']').unwrap_or((inner, "")),
        None => match host.rfind(':') {
            Some(i) => (&host[..i], &host[i..]),
            None => (host, ""),
        },
    }
}

/// Every `%` starts two hex digits.
fn check_escapes(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok =
                b.len() > i + 2 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit();
            if !ok {
                let end = (i + 3).min(b.len());
                return Err(format!("invalid URL escape {:?}", &s[i..end]));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// kube's IP syntax: Go's `netip.ParseAddr` without zones and without IPv4-mapped IPv6.
fn parse_ip(s: &str) -> Result<IpAddr, String> {
    if s.contains('%') {
        return Err(format!("IP address with zone value is not allowed: {s}"));
    }
    let ip: IpAddr = s
        .parse()
        .map_err(|_| format!("IP Address {s:?} parse error during conversion from string"))?;
    if let IpAddr::V6(v6) = ip {
        if v6.to_ipv4_mapped().is_some() {
            return Err(format!("IPv4-mapped IPv6 address {s:?} is not allowed"));
        }
    }
    Ok(ip)
}

/// kube's CIDR syntax: Go's `netip.ParsePrefix`, no zones, no IPv4-mapped IPv6.
fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let err = || format!("network address parse error during conversion from string: {s:?}");
    let (addr, bits) = s.split_once('/').ok_or_else(err)?;
    let addr = parse_ip(addr).map_err(|_| err())?;
    if bits.is_empty() || (bits.len() > 1 && bits.starts_with('0')) {
        return Err(err());
    }
    let bits: u8 = bits.parse().map_err(|_| err())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if bits > max {
        return Err(err());
    }
    Ok(Cidr { addr, bits })
}

fn masked(addr: IpAddr, bits: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

fn contains(c: &Cidr, ip: IpAddr) -> bool {
    ip.is_ipv4() == c.addr.is_ipv4() && masked(ip, c.bits) == masked(c.addr, c.bits)
}

/// `resource.ParseQuantity`: no surrounding blanks.
fn parse_quantity(s: &str) -> Result<Quantity, String> {
    match Quantity::parse(s).filter(|_| s.trim() == s && !s.is_empty()) {
        Some(q) => Ok(q),
        None => Err("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'".into()),
    }
}

/// A semantic version (2.0.0); with `normalize`, a leading `v` and missing minor or patch
/// numbers are allowed, and leading zeros dropped (kube's `semver(s, true)`).
fn parse_semver(s: &str, normalize: bool) -> Result<semver::Version, String> {
    let err = || format!("could not parse {s:?} as version");
    if !normalize {
        return semver::Version::parse(s).map_err(|_| err());
    }
    let s2 = s.strip_prefix('v').unwrap_or(s);
    let cut = s2.find(['-', '+']).unwrap_or(s2.len());
    let (core, tail) = s2.split_at(cut);
    let mut parts: Vec<String> = core
        .split('.')
        .map(|p| {
            let t = p.trim_start_matches('0');
            if t.is_empty() && !p.is_empty() {
                "0".to_string()
            } else {
                t.to_string()
            }
        })
        .collect();
    if parts.len() > 3 {
        return Err(err());
    }
    while parts.len() < 3 {
        parts.push("0".into());
    }
    semver::Version::parse(&format!("{}{tail}", parts.join("."))).map_err(|_| err())
}

// ---------------------------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------------------------

fn owned<'b, 'v>(v: cel::Value) -> CelResult<'b, 'v> {
    let b: Box<dyn Val> = v.try_into()?;
    Ok(CowVal::Owned(b))
}

fn opaque<'b, 'v>(v: impl Opaque) -> CelResult<'b, 'v> {
    owned(cel::Value::Opaque(Arc::new(v)))
}

fn arg(args: &[CowVal<'_, '_>], i: usize, f: &str) -> Result<cel::Value, ExecutionError> {
    let v = args
        .get(i)
        .ok_or_else(|| ExecutionError::invalid_argument_count(i + 1, args.len()))?;
    cel::Value::try_from(v.as_ref()).map_err(|_| ExecutionError::function_error(f, "bad argument"))
}

fn string_arg(args: &[CowVal<'_, '_>], i: usize, f: &str) -> Result<String, ExecutionError> {
    match arg(args, i, f)? {
        cel::Value::String(s) => Ok(s.to_string()),
        other => Err(ExecutionError::function_error(
            f,
            format!("expected a string, got {}", other.type_of()),
        )),
    }
}

fn opaque_arg<T: Clone + 'static>(
    args: &[CowVal<'_, '_>],
    i: usize,
    f: &str,
) -> Result<T, ExecutionError> {
    match arg(args, i, f)? {
        cel::Value::Opaque(o) => o
            .downcast_ref::<T>()
            .cloned()
            .ok_or_else(|| ExecutionError::function_error(f, "no such overload")),
        _ => Err(ExecutionError::function_error(f, "no such overload")),
    }
}

fn fail(f: &str, e: String) -> ExecutionError {
    ExecutionError::function_error(f, e)
}

fn bool_val<'b, 'v>(b: bool) -> CelResult<'b, 'v> {
    owned(cel::Value::Bool(b))
}

fn int_val<'b, 'v>(i: i64) -> CelResult<'b, 'v> {
    owned(cel::Value::Int(i))
}

fn str_val<'b, 'v>(s: String) -> CelResult<'b, 'v> {
    owned(cel::Value::String(Arc::new(s)))
}

macro_rules! cel_fn {
    ($name:ident, |$args:ident| $body:expr) => {
        fn $name<'b, 'v>($args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
            $body
        }
    };
}

// URLs.
cel_fn!(is_url, |a| bool_val(
    parse_url(&string_arg(&a, 0, "isURL")?).is_ok()
));
cel_fn!(url, |a| opaque(
    parse_url(&string_arg(&a, 0, "url")?).map_err(|e| fail("url", e))?
));
cel_fn!(url_scheme, |a| str_val(
    opaque_arg::<Url>(&a, 0, "getScheme")?.scheme
));
cel_fn!(url_host, |a| str_val(
    opaque_arg::<Url>(&a, 0, "getHost")?.host
));
cel_fn!(url_hostname, |a| {
    let host = opaque_arg::<Url>(&a, 0, "getHostname")?.host;
    str_val(split_host(&host).0.to_string())
});
cel_fn!(url_port, |a| {
    let host = opaque_arg::<Url>(&a, 0, "getPort")?.host;
    str_val(split_host(&host).1.trim_start_matches(':').to_string())
});
cel_fn!(url_path, |a| str_val(
    opaque_arg::<Url>(&a, 0, "getEscapedPath")?.escaped_path
));
cel_fn!(url_query, |a| {
    let q = opaque_arg::<Url>(&a, 0, "getQuery")?.raw_query;
    let mut out: HashMap<String, Vec<cel::Value>> = HashMap::new();
    for pair in q.split(['&']).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(k), Some(v)) = (unescape_query(k), unescape_query(v)) else {
            continue;
        };
        out.entry(k).or_default().push(cel::Value::from(v));
    }
    let map: HashMap<String, cel::Value> = out
        .into_iter()
        .map(|(k, v)| (k, cel::Value::from(v)))
        .collect();
    owned(cel::Value::from(map))
});

/// Go's `url.QueryUnescape`: `+` is a space; a bad escape drops the pair.
fn unescape_query(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

// IPs.
cel_fn!(is_ip, |a| bool_val(
    parse_ip(&string_arg(&a, 0, "isIP")?).is_ok()
));
cel_fn!(ip, |a| opaque(Ip(
    parse_ip(&string_arg(&a, 0, "ip")?).map_err(|e| fail("ip", e))?
)));
cel_fn!(ip_is_canonical, |a| {
    let s = string_arg(&a, 0, "ip.isCanonical")?;
    let ip = parse_ip(&s).map_err(|e| fail("ip.isCanonical", e))?;
    bool_val(ip.to_string() == s)
});
cel_fn!(ip_string, |a| str_val(
    opaque_arg::<Ip>(&a, 0, "string")?.0.to_string()
));
cel_fn!(ip_family, |a| int_val(
    if opaque_arg::<Ip>(&a, 0, "family")?.0.is_ipv4() {
        4
    } else {
        6
    }
));
cel_fn!(ip_is_unspecified, |a| bool_val(
    opaque_arg::<Ip>(&a, 0, "isUnspecified")?.0.is_unspecified()
));
cel_fn!(ip_is_loopback, |a| bool_val(
    opaque_arg::<Ip>(&a, 0, "isLoopback")?.0.is_loopback()
));
cel_fn!(ip_is_link_local_multicast, |a| bool_val(
    match opaque_arg::<Ip>(&a, 0, "isLinkLocalMulticast")?.0 {
        IpAddr::V4(v) => v.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v) => v.segments()[0] & 0xff0f == 0xff02,
    }
));
cel_fn!(ip_is_link_local_unicast, |a| bool_val(link_local_unicast(
    opaque_arg::<Ip>(&a, 0, "isLinkLocalUnicast")?.0
)));
cel_fn!(ip_is_global_unicast, |a| {
    let ip = opaque_arg::<Ip>(&a, 0, "isGlobalUnicast")?.0;
    let broadcast = ip == IpAddr::V4(Ipv4Addr::BROADCAST);
    bool_val(
        !(ip.is_unspecified()
            || ip.is_loopback()
            || ip.is_multicast()
            || link_local_unicast(ip)
            || broadcast),
    )
});

fn link_local_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => v.octets()[..2] == [169, 254],
        IpAddr::V6(v) => v.segments()[0] & 0xffc0 == 0xfe80,
    }
}

// CIDRs.
cel_fn!(is_cidr, |a| bool_val(
    parse_cidr(&string_arg(&a, 0, "isCIDR")?).is_ok()
));
cel_fn!(cidr, |a| opaque(
    parse_cidr(&string_arg(&a, 0, "cidr")?).map_err(|e| fail("cidr", e))?
));
cel_fn!(cidr_string, |a| {
    let c = opaque_arg::<Cidr>(&a, 0, "string")?;
    str_val(format!("{}/{}", c.addr, c.bits))
});
cel_fn!(cidr_ip, |a| opaque(Ip(
    opaque_arg::<Cidr>(&a, 0, "ip")?.addr
)));
cel_fn!(cidr_masked, |a| {
    let c = opaque_arg::<Cidr>(&a, 0, "masked")?;
    opaque(Cidr {
        addr: masked(c.addr, c.bits),
        bits: c.bits,
    })
});
cel_fn!(cidr_prefix_length, |a| int_val(i64::from(
    opaque_arg::<Cidr>(&a, 0, "prefixLength")?.bits
)));
cel_fn!(cidr_contains_ip, |a| {
    let c = opaque_arg::<Cidr>(&a, 0, "containsIP")?;
    bool_val(contains(&c, opaque_arg::<Ip>(&a, 1, "containsIP")?.0))
});
cel_fn!(cidr_contains_ip_string, |a| {
    let c = opaque_arg::<Cidr>(&a, 0, "containsIP")?;
    let ip = parse_ip(&string_arg(&a, 1, "containsIP")?).map_err(|e| fail("containsIP", e))?;
    bool_val(contains(&c, ip))
});
cel_fn!(cidr_contains_cidr, |a| {
    let c = opaque_arg::<Cidr>(&a, 0, "containsCIDR")?;
    let other = opaque_arg::<Cidr>(&a, 1, "containsCIDR")?;
    bool_val(other.bits >= c.bits && contains(&c, other.addr))
});
cel_fn!(cidr_contains_cidr_string, |a| {
    let c = opaque_arg::<Cidr>(&a, 0, "containsCIDR")?;
    let other =
        parse_cidr(&string_arg(&a, 1, "containsCIDR")?).map_err(|e| fail("containsCIDR", e))?;
    bool_val(other.bits >= c.bits && contains(&c, other.addr))
});

// Quantities.
cel_fn!(is_quantity, |a| bool_val(
    parse_quantity(&string_arg(&a, 0, "isQuantity")?).is_ok()
));
cel_fn!(quantity, |a| opaque(Qty(parse_quantity(&string_arg(
    &a, 0, "quantity"
)?)
.map_err(|e| fail("quantity", e))?)));
cel_fn!(q_sign, |a| int_val(
    match opaque_arg::<Qty>(&a, 0, "sign")?.0.cmp(&Quantity::zero()) {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    }
));
cel_fn!(q_is_integer, |a| bool_val(
    opaque_arg::<Qty>(&a, 0, "isInteger")?.0.as_i64().is_some()
));
cel_fn!(
    q_as_integer,
    |a| match opaque_arg::<Qty>(&a, 0, "asInteger")?.0.as_i64() {
        Some(i) => int_val(i),
        None => Err(fail("asInteger", "cannot convert value to integer".into())),
    }
);
cel_fn!(q_as_float, |a| owned(cel::Value::Float(
    opaque_arg::<Qty>(&a, 0, "asApproximateFloat")?.0.as_f64()
)));
cel_fn!(q_add, |a| {
    let (x, y) = (
        opaque_arg::<Qty>(&a, 0, "add")?,
        opaque_arg::<Qty>(&a, 1, "add")?,
    );
    opaque(Qty(x
        .0
        .checked_add(&y.0)
        .ok_or_else(|| fail("add", "overflow".into()))?))
});
cel_fn!(q_add_int, |a| {
    let x = opaque_arg::<Qty>(&a, 0, "add")?;
    let cel::Value::Int(y) = arg(&a, 1, "add")? else {
        return Err(fail("add", "no such overload".into()));
    };
    opaque(Qty(x
        .0
        .checked_add(&Quantity::from_int(y))
        .ok_or_else(|| fail("add", "overflow".into()))?))
});
cel_fn!(q_sub, |a| {
    let (x, y) = (
        opaque_arg::<Qty>(&a, 0, "sub")?,
        opaque_arg::<Qty>(&a, 1, "sub")?,
    );
    opaque(Qty(x
        .0
        .checked_sub(&y.0)
        .ok_or_else(|| fail("sub", "overflow".into()))?))
});
cel_fn!(q_sub_int, |a| {
    let x = opaque_arg::<Qty>(&a, 0, "sub")?;
    let cel::Value::Int(y) = arg(&a, 1, "sub")? else {
        return Err(fail("sub", "no such overload".into()));
    };
    opaque(Qty(x
        .0
        .checked_sub(&Quantity::from_int(y))
        .ok_or_else(|| fail("sub", "overflow".into()))?))
});
cel_fn!(q_greater, |a| bool_val(
    opaque_arg::<Qty>(&a, 0, "isGreaterThan")?.0 > opaque_arg::<Qty>(&a, 1, "isGreaterThan")?.0
));
cel_fn!(q_less, |a| bool_val(
    opaque_arg::<Qty>(&a, 0, "isLessThan")?.0 < opaque_arg::<Qty>(&a, 1, "isLessThan")?.0
));
cel_fn!(q_compare, |a| int_val(ordering(
    opaque_arg::<Qty>(&a, 0, "compareTo")?
        .0
        .cmp(&opaque_arg::<Qty>(&a, 1, "compareTo")?.0)
)));

fn ordering(o: Ordering) -> i64 {
    match o {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    }
}

// Semantic versions.
fn normalize_arg(a: &[CowVal<'_, '_>], f: &str) -> Result<bool, ExecutionError> {
    match arg(a, 1, f)? {
        cel::Value::Bool(b) => Ok(b),
        _ => Err(fail(f, "no such overload".into())),
    }
}
cel_fn!(is_semver, |a| bool_val(
    parse_semver(&string_arg(&a, 0, "isSemver")?, false).is_ok()
));
cel_fn!(is_semver_n, |a| bool_val(
    parse_semver(
        &string_arg(&a, 0, "isSemver")?,
        normalize_arg(&a, "isSemver")?
    )
    .is_ok()
));
cel_fn!(semver_of, |a| opaque(Semver(
    parse_semver(&string_arg(&a, 0, "semver")?, false).map_err(|e| fail("semver", e))?
)));
cel_fn!(semver_of_n, |a| opaque(Semver(
    parse_semver(&string_arg(&a, 0, "semver")?, normalize_arg(&a, "semver")?)
        .map_err(|e| fail("semver", e))?
)));
fn version_part(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
cel_fn!(sv_major, |a| int_val(version_part(
    opaque_arg::<Semver>(&a, 0, "major")?.0.major
)));
cel_fn!(sv_minor, |a| int_val(version_part(
    opaque_arg::<Semver>(&a, 0, "minor")?.0.minor
)));
cel_fn!(sv_patch, |a| int_val(version_part(
    opaque_arg::<Semver>(&a, 0, "patch")?.0.patch
)));
fn sv_cmp(a: &[CowVal<'_, '_>], f: &str) -> Result<Ordering, ExecutionError> {
    let x = opaque_arg::<Semver>(a, 0, f)?;
    let y = opaque_arg::<Semver>(a, 1, f)?;
    Ok(x.0.cmp_precedence(&y.0))
}
cel_fn!(sv_greater, |a| bool_val(
    sv_cmp(&a, "isGreaterThan")? == Ordering::Greater
));
cel_fn!(sv_less, |a| bool_val(
    sv_cmp(&a, "isLessThan")? == Ordering::Less
));
cel_fn!(sv_compare, |a| int_val(ordering(sv_cmp(&a, "compareTo")?)));

// Sets (cel-go's ext.Sets): membership by CEL equality.
fn list_of(a: &[CowVal<'_, '_>], i: usize, f: &str) -> Result<Vec<cel::Value>, ExecutionError> {
    match arg(a, i, f)? {
        cel::Value::List(l) => Ok(l.iter().cloned().collect()),
        other => Err(fail(f, format!("expected a list, got {}", other.type_of()))),
    }
}
fn contains_all(a: &[cel::Value], b: &[cel::Value]) -> bool {
    b.iter().all(|x| a.iter().any(|y| y == x))
}
cel_fn!(sets_contains, |a| {
    let (x, y) = (
        list_of(&a, 0, "sets.contains")?,
        list_of(&a, 1, "sets.contains")?,
    );
    bool_val(contains_all(&x, &y))
});
cel_fn!(sets_equivalent, |a| {
    let (x, y) = (
        list_of(&a, 0, "sets.equivalent")?,
        list_of(&a, 1, "sets.equivalent")?,
    );
    bool_val(contains_all(&x, &y) && contains_all(&y, &x))
});
cel_fn!(sets_intersects, |a| {
    let (x, y) = (
        list_of(&a, 0, "sets.intersects")?,
        list_of(&a, 1, "sets.intersects")?,
    );
    bool_val(y.iter().any(|v| x.contains(v)))
});

// Named formats (kube's format library): `format.dns1123Label().validate(s)` is
// `optional.none()` when `s` is valid, else an optional list of the reasons.
const FORMAT: &str = "kubernetes.NamedFormat";

#[derive(Debug, Clone, PartialEq, Eq)]
struct NamedFormat(&'static str);

impl Opaque for NamedFormat {
    fn runtime_type_name(&self) -> &str {
        FORMAT
    }
}

/// Why `s` is not in format `name` (empty when it is).
fn format_errors(name: &str, s: &str) -> Vec<String> {
    use kubox_apimachinery::validation as v;
    // A generateName prefix may end in a dash (kube masks it before checking).
    let prefix = |s: &str| -> String {
        match s.strip_suffix('-') {
            Some(rest) => format!("{rest}a"),
            None => s.to_string(),
        }
    };
    let fails = |format: &str| !crate::formats::check(format, s);
    match name {
        "dns1123Label" => v::is_dns1123_label(s),
        "dns1123Subdomain" => v::is_dns1123_subdomain(s),
        "dns1035Label" => v::is_dns1035_label(s),
        "qualifiedName" => v::is_qualified_name(s),
        "dns1123LabelPrefix" => v::is_dns1123_label(&prefix(s)),
        "dns1123SubdomainPrefix" => v::is_dns1123_subdomain(&prefix(s)),
        "dns1035LabelPrefix" => v::is_dns1035_label(&prefix(s)),
        "labelValue" => v::is_valid_label_value(s),
        "uri" => parse_url(s).err().into_iter().collect(),
        "uuid" if fails("uuid") => vec!["does not match the UUID format".into()],
        "byte" if fails("byte") => vec!["invalid base64".into()],
        "date" if fails("date") => vec!["invalid date".into()],
        "datetime" if fails("date-time") => vec!["invalid datetime".into()],
        _ => Vec::new(),
    }
}

fn optional_value<'b, 'v>(v: Option<cel::Value>) -> CelResult<'b, 'v> {
    let o = match v {
        Some(v) => cel::objects::OptionalValue::of(v),
        None => cel::objects::OptionalValue::none(),
    };
    owned(cel::Value::Opaque(Arc::new(o)))
}

/// Does kube's format library name this format (`format.<name>()`)?
pub(crate) fn is_named_format(name: &str) -> bool {
    FORMAT_CTORS.iter().any(|(n, _)| *n == name)
}

cel_fn!(format_named, |a| {
    let name = string_arg(&a, 0, "format.named")?;
    match FORMAT_CTORS.iter().find(|(n, _)| *n == name) {
        Some((n, _)) => optional_value(Some(cel::Value::Opaque(Arc::new(NamedFormat(n))))),
        None => optional_value(None),
    }
});
cel_fn!(format_validate, |a| {
    let f = opaque_arg::<NamedFormat>(&a, 0, "validate")?;
    let s = string_arg(&a, 1, "validate")?;
    let errs = format_errors(f.0, &s);
    if errs.is_empty() {
        optional_value(None)
    } else {
        optional_value(Some(cel::Value::from(
            errs.into_iter().map(cel::Value::from).collect::<Vec<_>>(),
        )))
    }
});

macro_rules! format_ctor {
    ($($f:ident => $name:literal),* $(,)?) => {
        $( cel_fn!($f, |_a| opaque(NamedFormat($name))); )*
        /// The formats kube's library names, as `format.<name>()`.
        const FORMAT_CTORS: &[(&str, cel::common::functions::Function)] = &[
            $( ($name, $f), )*
        ];
    };
}
format_ctor!(
    f_dns1123_label => "dns1123Label",
    f_dns1123_subdomain => "dns1123Subdomain",
    f_dns1035_label => "dns1035Label",
    f_qualified_name => "qualifiedName",
    f_dns1123_label_prefix => "dns1123LabelPrefix",
    f_dns1123_subdomain_prefix => "dns1123SubdomainPrefix",
    f_dns1035_label_prefix => "dns1035LabelPrefix",
    f_label_value => "labelValue",
    f_uri => "uri",
    f_uuid => "uuid",
    f_byte => "byte",
    f_date => "date",
    f_datetime => "datetime",
);

// Helpers of the two-variable comprehensions (`cel_macros`).
cel_fn!(kubox_keys, |a| match arg(&a, 0, "keys")? {
    cel::Value::List(l) => owned(cel::Value::from(
        (0..l.len() as i64).map(cel::Value::Int).collect::<Vec<_>>(),
    )),
    cel::Value::Map(m) => owned(cel::Value::from(
        m.map
            .keys()
            .cloned()
            .map(cel::Value::from)
            .collect::<Vec<_>>(),
    )),
    other => Err(fail(
        "comprehension",
        format!("cannot iterate over {}", other.type_of()),
    )),
});

fn map_arg(
    a: &[CowVal<'_, '_>],
    i: usize,
) -> Result<HashMap<cel::objects::Key, cel::Value>, ExecutionError> {
    match arg(a, i, "transformMap")? {
        cel::Value::Map(m) => Ok((*m.map).clone()),
        other => Err(fail(
            "transformMap",
            format!("expected a map, got {}", other.type_of()),
        )),
    }
}

fn insert_new(
    map: &mut HashMap<cel::objects::Key, cel::Value>,
    k: cel::Value,
    v: cel::Value,
) -> Result<(), ExecutionError> {
    let key: cel::objects::Key = k.clone().try_into().map_err(|_| {
        fail(
            "transformMap",
            format!("unsupported key type {}", k.type_of()),
        )
    })?;
    if map.contains_key(&key) {
        return Err(fail(
            "transformMapEntry",
            format!("insert failed: key {k:?} already exists"),
        ));
    }
    map.insert(key, v);
    Ok(())
}

cel_fn!(kubox_map_insert, |a| {
    let mut map = map_arg(&a, 0)?;
    insert_new(
        &mut map,
        arg(&a, 1, "transformMap")?,
        arg(&a, 2, "transformMap")?,
    )?;
    owned(cel::Value::Map(cel::objects::Map { map: Arc::new(map) }))
});

cel_fn!(kubox_map_merge, |a| {
    let mut map = map_arg(&a, 0)?;
    for (k, v) in map_arg(&a, 1)? {
        insert_new(&mut map, cel::Value::from(k), v)?;
    }
    owned(cel::Value::Map(cel::objects::Map { map: Arc::new(map) }))
});

/// Declare the libraries in `env`.
pub(crate) fn register(env: &mut Env) {
    crate::cel_macros::register(env);
    for t in [URL, IP, CIDR, QUANTITY, SEMVER, FORMAT] {
        let _ = env.add_type(ty(t));
    }
    // (Registration fails only on duplicate declarations, which these are not.)
    let mut global =
        |name: &str, id: &str, args: Vec<Type>, f: cel::common::functions::Function| {
            let _ = env.add_overload(name, id, args, f);
        };
    global("isURL", "is_url_string", vec![STRING_TYPE], is_url);
    global("url", "string_to_url", vec![STRING_TYPE], url);
    global("isIP", "is_ip", vec![STRING_TYPE], is_ip);
    global("ip", "string_to_ip", vec![STRING_TYPE], ip);
    global(
        "ip.isCanonical",
        "ip_is_canonical",
        vec![STRING_TYPE],
        ip_is_canonical,
    );
    global("string", "ip_to_string", vec![ty(IP)], ip_string);
    global("isCIDR", "is_cidr", vec![STRING_TYPE], is_cidr);
    global("cidr", "string_to_cidr", vec![STRING_TYPE], cidr);
    global("string", "cidr_to_string", vec![ty(CIDR)], cidr_string);
    global(
        "isQuantity",
        "is_quantity_string",
        vec![STRING_TYPE],
        is_quantity,
    );
    global(
        "quantity",
        "string_to_quantity",
        vec![STRING_TYPE],
        quantity,
    );
    global("isSemver", "is_semver_string", vec![STRING_TYPE], is_semver);
    global(
        "isSemver",
        "is_semver_string_bool",
        vec![STRING_TYPE, BOOL_TYPE],
        is_semver_n,
    );
    global("semver", "string_to_semver", vec![STRING_TYPE], semver_of);
    global(
        "semver",
        "string_bool_to_semver",
        vec![STRING_TYPE, BOOL_TYPE],
        semver_of_n,
    );
    let list = || cel::common::types::LIST_TYPE;
    global(
        "sets.contains",
        "list_sets_contains_list",
        vec![list(), list()],
        sets_contains,
    );
    global(
        "sets.equivalent",
        "list_sets_equivalent_list",
        vec![list(), list()],
        sets_equivalent,
    );
    global(
        "sets.intersects",
        "list_sets_intersects_list",
        vec![list(), list()],
        sets_intersects,
    );
    global(
        "format.named",
        "format_named",
        vec![STRING_TYPE],
        format_named,
    );
    for (name, f) in FORMAT_CTORS {
        global(
            &format!("format.{name}"),
            &format!("format_{name}"),
            vec![],
            *f,
        );
    }
    let dyn_t = || cel::common::types::DYN_TYPE;
    global(
        crate::cel_macros::KEYS,
        "kubox_keys",
        vec![dyn_t()],
        kubox_keys,
    );
    global(
        crate::cel_macros::MAP_INSERT,
        "kubox_map_insert",
        vec![dyn_t(), dyn_t(), dyn_t()],
        kubox_map_insert,
    );
    global(
        crate::cel_macros::MAP_MERGE,
        "kubox_map_merge",
        vec![dyn_t(), dyn_t()],
        kubox_map_merge,
    );
    let mut member = |name: &str,
                      id: &str,
                      on: &'static str,
                      args: Vec<Type>,
                      f: cel::common::functions::Function| {
        let _ = env.add_member_overload(name, id, ty(on), args, f);
    };
    member("getScheme", "url_get_scheme", URL, vec![], url_scheme);
    member("getHost", "url_get_host", URL, vec![], url_host);
    member("getHostname", "url_get_hostname", URL, vec![], url_hostname);
    member("getPort", "url_get_port", URL, vec![], url_port);
    member(
        "getEscapedPath",
        "url_get_escaped_path",
        URL,
        vec![],
        url_path,
    );
    member("getQuery", "url_get_query", URL, vec![], url_query);
    member("family", "ip_family", IP, vec![], ip_family);
    member(
        "isUnspecified",
        "ip_is_unspecified",
        IP,
        vec![],
        ip_is_unspecified,
    );
    member("isLoopback", "ip_is_loopback", IP, vec![], ip_is_loopback);
    member(
        "isLinkLocalMulticast",
        "ip_is_link_local_multicast",
        IP,
        vec![],
        ip_is_link_local_multicast,
    );
    member(
        "isLinkLocalUnicast",
        "ip_is_link_local_unicast",
        IP,
        vec![],
        ip_is_link_local_unicast,
    );
    member(
        "isGlobalUnicast",
        "ip_is_global_unicast",
        IP,
        vec![],
        ip_is_global_unicast,
    );
    member("ip", "cidr_ip", CIDR, vec![], cidr_ip);
    member("masked", "cidr_masked", CIDR, vec![], cidr_masked);
    member(
        "prefixLength",
        "cidr_prefix_length",
        CIDR,
        vec![],
        cidr_prefix_length,
    );
    member(
        "containsIP",
        "cidr_contains_ip_ip",
        CIDR,
        vec![ty(IP)],
        cidr_contains_ip,
    );
    member(
        "containsIP",
        "cidr_contains_ip_string",
        CIDR,
        vec![STRING_TYPE],
        cidr_contains_ip_string,
    );
    member(
        "containsCIDR",
        "cidr_contains_cidr",
        CIDR,
        vec![ty(CIDR)],
        cidr_contains_cidr,
    );
    member(
        "containsCIDR",
        "cidr_contains_cidr_string",
        CIDR,
        vec![STRING_TYPE],
        cidr_contains_cidr_string,
    );
    member("sign", "quantity_sign", QUANTITY, vec![], q_sign);
    member(
        "isInteger",
        "quantity_is_integer",
        QUANTITY,
        vec![],
        q_is_integer,
    );
    member(
        "asInteger",
        "quantity_get_integer",
        QUANTITY,
        vec![],
        q_as_integer,
    );
    member(
        "asApproximateFloat",
        "quantity_get_float",
        QUANTITY,
        vec![],
        q_as_float,
    );
    member("add", "quantity_add", QUANTITY, vec![ty(QUANTITY)], q_add);
    member(
        "add",
        "quantity_add_int",
        QUANTITY,
        vec![INT_TYPE],
        q_add_int,
    );
    member("sub", "quantity_sub", QUANTITY, vec![ty(QUANTITY)], q_sub);
    member(
        "sub",
        "quantity_sub_int",
        QUANTITY,
        vec![INT_TYPE],
        q_sub_int,
    );
    member(
        "isGreaterThan",
        "quantity_is_greater_than",
        QUANTITY,
        vec![ty(QUANTITY)],
        q_greater,
    );
    member(
        "isLessThan",
        "quantity_is_less_than",
        QUANTITY,
        vec![ty(QUANTITY)],
        q_less,
    );
    member(
        "compareTo",
        "quantity_compare_to",
        QUANTITY,
        vec![ty(QUANTITY)],
        q_compare,
    );
    member(
        "validate",
        "format_validate",
        FORMAT,
        vec![STRING_TYPE],
        format_validate,
    );
    member("major", "semver_major", SEMVER, vec![], sv_major);
    member("minor", "semver_minor", SEMVER, vec![], sv_minor);
    member("patch", "semver_patch", SEMVER, vec![], sv_patch);
    member(
        "isGreaterThan",
        "semver_is_greater_than",
        SEMVER,
        vec![ty(SEMVER)],
        sv_greater,
    );
    member(
        "isLessThan",
        "semver_is_less_than",
        SEMVER,
        vec![ty(SEMVER)],
        sv_less,
    );
    member(
        "compareTo",
        "semver_compare_to",
        SEMVER,
        vec![ty(SEMVER)],
        sv_compare,
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_as_go_parses_request_uris() {
        for ok in [
            "https://example.com:80/path?query=val#fragment",
            "/absolute-path",
            "https://[::1]:80/path",
            "mailto:someone@example.com",
            "*",
        ] {
            assert!(parse_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "relative-path",
            "example.com",
            ":no-scheme",
            "https://x:port/",
            "/a%zz",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        let u = parse_url("HTTPS://user@[::1]:8080/p%20q?a=1&a=2&b").unwrap();
        assert_eq!(u.scheme, "https");
        assert_eq!(u.host, "[::1]:8080");
        assert_eq!(u.escaped_path, "/p%20q");
        assert_eq!(u.raw_query, "a=1&a=2&b");
    }

    #[test]
    fn ips_and_cidrs_follow_kubes_rules() {
        assert!(parse_ip("127.0.0.1").is_ok());
        assert!(parse_ip("fe80::1%eth0").is_err());
        assert!(parse_ip("::ffff:1.2.3.4").is_err());
        assert!(parse_ip("127.0.0.01").is_err());
        assert!(parse_cidr("192.168.0.0/16").is_ok());
        assert!(parse_cidr("192.168.0.0/33").is_err());
        assert!(parse_cidr("192.168.0.0").is_err());
        let c = parse_cidr("192.168.1.5/24").unwrap();
        assert_eq!(masked(c.addr, c.bits).to_string(), "192.168.1.0");
        assert!(contains(&c, "192.168.1.200".parse().unwrap()));
        assert!(!contains(&c, "192.168.2.1".parse().unwrap()));
        assert!(!contains(&c, "::1".parse().unwrap()));
    }

    #[test]
    fn semvers_are_strict_unless_normalized() {
        assert!(parse_semver("1.2.3-alpha.1+build", false).is_ok());
        for bad in ["v1.2.3", "1.2", "01.2.3"] {
            assert!(parse_semver(bad, false).is_err(), "{bad}");
        }
        assert_eq!(parse_semver("v1.2", true).unwrap().to_string(), "1.2.0");
        assert_eq!(
            parse_semver("v01.02.03", true).unwrap().to_string(),
            "1.2.3"
        );
        assert!(
            Semver(parse_semver("1.0.0+a", false).unwrap())
                == Semver(parse_semver("1.0.0+b", false).unwrap())
        );
    }
}
