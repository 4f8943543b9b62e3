//! Helpers shared by the printers: reading fields out of JSON objects, timestamps and ages,
//! quantities, label and selector formatting.

use serde_json::Value;
use std::collections::BTreeSet;

/// Nanoseconds since the Unix epoch; the unit every timestamp is handled in.
pub(crate) type Nanos = i128;

const NANOS_PER_SEC: i128 = 1_000_000_000;

// ---------------------------------------------------------------------------------------------
// JSON access
// ---------------------------------------------------------------------------------------------

/// The value at `path`, treating `null` like a missing field.
pub(crate) fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    if cur.is_null() {
        None
    } else {
        Some(cur)
    }
}

/// The string at `path`, or "" when missing or not a string.
pub(crate) fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    get(v, path).and_then(Value::as_str).unwrap_or("")
}

/// The string at `path` when present (even if empty).
pub(crate) fn opt_s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path).and_then(Value::as_str)
}

/// The integer at `path`.
pub(crate) fn opt_i(v: &Value, path: &[&str]) -> Option<i64> {
    let x = get(v, path)?;
    x.as_i64()
        .or_else(|| x.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
        .or_else(|| x.as_f64().map(|f| f as i64))
}

/// The integer at `path`, or 0.
pub(crate) fn i(v: &Value, path: &[&str]) -> i64 {
    opt_i(v, path).unwrap_or(0)
}

/// The boolean at `path`.
pub(crate) fn opt_b(v: &Value, path: &[&str]) -> Option<bool> {
    get(v, path).and_then(Value::as_bool)
}

/// The array at `path`, or an empty slice.
pub(crate) fn arr<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    get(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The number of entries of the map (or array) at `path`.
pub(crate) fn len_at(v: &Value, path: &[&str]) -> usize {
    match get(v, path) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

/// The string-to-string map at `path` as sorted pairs (non-string values are skipped).
pub(crate) fn string_map<'a>(v: &'a Value, path: &[&str]) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = match get(v, path) {
        Some(Value::Object(m)) => m
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
            .collect(),
        _ => Vec::new(),
    };
    out.sort();
    out
}

/// The object's metadata.name.
pub(crate) fn name(obj: &Value) -> &str {
    s(obj, &["metadata", "name"])
}

/// Whether metadata.deletionTimestamp is set.
pub(crate) fn deleting(obj: &Value) -> bool {
    get(obj, &["metadata", "deletionTimestamp"]).is_some()
}

/// A string cell.
pub(crate) fn cell(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

/// An integer cell.
pub(crate) fn int_cell(n: i64) -> Value {
    Value::from(n)
}

/// A boolean cell.
pub(crate) fn bool_cell(b: bool) -> Value {
    Value::Bool(b)
}

/// Go's `IntOrString.String()`: a number prints as a decimal, a string as is.
pub(crate) fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The Unix time of Go's zero `time.Time` (0001-01-01T00:00:00Z), which `metav1.Time` treats as
/// "unset".
fn go_zero_time() -> Nanos {
    i128::from(days_from_civil(1, 1, 1)) * 86_400 * NANOS_PER_SEC
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: i64 = 0;
    for c in b {
        n = n.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
    }
    Some(n)
}

/// Parses an RFC 3339 timestamp (with optional fractional seconds and any offset) into
/// nanoseconds since the Unix epoch.
pub(crate) fn parse_rfc3339(text: &str) -> Option<Nanos> {
    let b = text.trim().as_bytes();
    if b.len() < 20 {
        return None;
    }
    let (sep1, sep2, t, c1, c2) = (b[4], b[7], b[10], b[13], b[16]);
    if sep1 != b'-' || sep2 != b'-' || !matches!(t, b'T' | b't' | b' ') || c1 != b':' || c2 != b':'
    {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let min = digits(&b[14..16])?;
    let sec = digits(&b[17..19])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut frac: i128 = 0;
    if let Some(after_dot) = rest.strip_prefix(b".") {
        let n = after_dot.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let mut scale = NANOS_PER_SEC;
        for c in &after_dot[..n] {
            scale /= 10;
            frac += i128::from(c - b'0') * scale;
        }
        rest = &after_dot[n..];
    }
    let offset_secs: i64 = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = digits(&[*h1, *h2])?;
            let om = digits(&[*m1, *m2])?;
            let off = oh * 3600 + om * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    Some(i128::from(secs) * NANOS_PER_SEC + frac)
}

/// The timestamp at `path` when it is set (Go's `IsZero` is false).
pub(crate) fn time_at(v: &Value, path: &[&str]) -> Option<Nanos> {
    let t = parse_rfc3339(get(v, path)?.as_str()?)?;
    if t == go_zero_time() {
        None
    } else {
        Some(t)
    }
}

/// Formats a timestamp as Go's `Time.UTC().Format(time.RFC3339)` does (whole seconds, "Z").
pub(crate) fn format_rfc3339_utc(t: Nanos) -> String {
    let secs = i64::try_from(t.div_euclid(NANOS_PER_SEC)).unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        y,
        m,
        d,
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Nanoseconds since the Unix epoch of a `SystemTime`.
pub(crate) fn system_time_nanos(t: std::time::SystemTime) -> Nanos {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(i128::MAX),
    }
}

/// Go's `duration.HumanDuration` over a signed nanosecond count (Go's `time.Duration`).
pub(crate) fn human_duration_nanos(d: i128) -> String {
    // time.Duration is an int64: saturate like time.Since does.
    let d = d.clamp(i128::from(i64::MIN), i128::from(i64::MAX));
    let seconds = d / NANOS_PER_SEC;
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d / (60 * NANOS_PER_SEC);
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d / (3600 * NANOS_PER_SEC);
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        format!("{hours}h{m}m")
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        format!("{}d{}h", hours / 24, h)
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        format!("{}y{}d", hours / 24 / 365, dy)
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// kube-apiserver's `translateTimestampSince`: the age of a timestamp, "<unknown>" when unset.
pub(crate) fn since(t: Option<Nanos>, now: Nanos) -> String {
    match t {
        Some(t) => human_duration_nanos(now - t),
        None => "<unknown>".to_string(),
    }
}

/// The age of the timestamp at `path`.
pub(crate) fn age_at(v: &Value, path: &[&str], now: Nanos) -> String {
    since(time_at(v, path), now)
}

/// The age of the object (metadata.creationTimestamp).
pub(crate) fn age(obj: &Value, now: Nanos) -> String {
    age_at(obj, &["metadata", "creationTimestamp"], now)
}

// ---------------------------------------------------------------------------------------------
// Labels and selectors
// ---------------------------------------------------------------------------------------------

/// Go's `labels.FormatLabels`: sorted "k=v" pairs joined by ",", "<none>" when empty.
pub(crate) fn format_labels(v: &Value, path: &[&str]) -> String {
    let pairs = string_map(v, path);
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The string form of `metav1.LabelSelectorAsSelector(sel)`; `None` when the selector is
/// invalid (an unknown operator, or a value count the operator does not allow).
pub(crate) fn selector_string(sel: Option<&Value>) -> Option<String> {
    let Some(sel) = sel else {
        // A nil selector selects nothing, which prints as "".
        return Some(String::new());
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in string_map(sel, &["matchLabels"]) {
        reqs.push((k.to_string(), format!("{k}={v}")));
    }
    for expr in arr(sel, &["matchExpressions"]) {
        let key = s(expr, &["key"]);
        let mut values: Vec<&str> = arr(expr, &["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        let text = match s(expr, &["operator"]) {
            "In" | "NotIn" if values.is_empty() => return None,
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" | "DoesNotExist" if !values.is_empty() => return None,
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return None,
        };
        reqs.push((key.to_string(), text));
    }
    // Selector.Add sorts the requirements by key.
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Some(
        reqs.into_iter()
            .map(|(_, t)| t)
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// Go's `metav1.FormatLabelSelector`: "<none>" when empty, "<error>" when invalid.
pub(crate) fn format_label_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        None => "<error>".to_string(),
        Some(s) if s.is_empty() => "<none>".to_string(),
        Some(s) => s,
    }
}

/// The gogo-protobuf `String()` of a `metav1.LabelSelector`, as the admission policy binding
/// printers show a param selector.
pub(crate) fn label_selector_go_string(sel: &Value) -> String {
    let mut exprs = String::from("[]LabelSelectorRequirement{");
    for e in arr(sel, &["matchExpressions"]) {
        let values: Vec<&str> = arr(e, &["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        exprs.push_str(&format!(
            "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
            s(e, &["key"]),
            s(e, &["operator"]),
            values.join(" ")
        ));
    }
    exprs.push('}');
    let mut labels = String::from("map[string]string{");
    for (k, v) in string_map(sel, &["matchLabels"]) {
        labels.push_str(&format!("{k}: {v},"));
    }
    labels.push('}');
    format!("&LabelSelector{{MatchLabels:{labels},MatchExpressions:{exprs},}}")
}

/// Sorted, de-duplicated strings.
pub(crate) fn sorted_set<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    items
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Quantities
// ---------------------------------------------------------------------------------------------

/// Go's `resource.Quantity.String()`: the canonical form of a quantity ("1536Mi" for "1.5Gi",
/// "500m" for "0.5"). Text that does not parse is returned unchanged.
pub(crate) fn canonical_quantity(text: &str) -> String {
    crate::quantity::Quantity::parse(text).map_or_else(|| text.to_string(), |q| q.to_string())
}

/// The canonical form of the quantity stored at `path` (a string, or a bare JSON number);
/// "0" when missing, like a zero `resource.Quantity`.
pub(crate) fn quantity_at(v: &Value, path: &[&str]) -> String {
    match get(v, path) {
        Some(Value::String(s)) => canonical_quantity(s),
        Some(Value::Number(n)) => canonical_quantity(&n.to_string()),
        _ => "0".to_string(),
    }
}

/// Like [`quantity_at`] for a `*resource.Quantity`: "<nil>" when missing.
pub(crate) fn quantity_ptr_at(v: &Value, path: &[&str]) -> String {
    if get(v, path).is_none() {
        "<nil>".to_string()
    } else {
        quantity_at(v, path)
    }
}

// ---------------------------------------------------------------------------------------------
// Misc
// ---------------------------------------------------------------------------------------------

/// Go's `net.JoinHostPort`.
pub(crate) fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Joins the first `max` items with ",", adding " + N more..." when there are more, and
/// "<unset>" when there are none (the printers' `listWithMoreString`).
pub(crate) fn list_with_more(items: &[String], max: usize) -> String {
    let shown: Vec<&str> = items.iter().take(max).map(String::as_str).collect();
    let ret = shown.join(",");
    if items.len() > max {
        return format!("{ret} + {} more...", items.len() - max);
    }
    if ret.is_empty() {
        return "<unset>".to_string();
    }
    ret
}

/// The container names and images of a pod spec, each joined by "," (`layoutContainerCells`).
pub(crate) fn container_cells(pod_spec: Option<&Value>) -> (String, String) {
    let containers = pod_spec.map(|p| arr(p, &["containers"])).unwrap_or(&[]);
    let names: Vec<&str> = containers.iter().map(|c| s(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| s(c, &["image"])).collect();
    (names.join(","), images.join(","))
}

/// Go's `printBoolPtr`: "True", "False" or "<unset>".
pub(crate) fn bool_ptr(b: Option<bool>) -> String {
    match b {
        Some(true) => "True".to_string(),
        Some(false) => "False".to_string(),
        None => "<unset>".to_string(),
    }
}
