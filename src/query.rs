//! Query-string options of resource requests (metav1.ListOptions, GetOptions, CreateOptions, ...).

use std::collections::HashMap;

use kubox_apimachinery::validation::FieldError;

use crate::status::{ApiError, ApiResult};

/// Decoded query parameters (the first value of each key).
#[derive(Debug, Default, Clone)]
pub struct Query {
    params: HashMap<String, String>,
}

impl Query {
    /// Parse a raw query string.
    pub fn parse(raw: &str) -> Query {
        let mut params = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            params
                .entry(k.into_owned())
                .or_insert_with(|| v.into_owned());
        }
        Query { params }
    }

    /// A parameter, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// A parameter, empty when absent.
    pub fn str(&self, key: &str) -> &str {
        self.get(key).unwrap_or_default()
    }

    /// A boolean parameter, decoded as kube-apiserver decodes it: present and not `0` or
    /// `false` (in any case).
    pub fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(crate::request_info::kube_bool)
    }

    /// An integer parameter; a malformed one is a 400.
    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value for {key}: {v:?} is not an integer"))
            }),
        }
    }

    /// `dryRun=All`? Any other value is a 422 naming the request's options kind
    /// (`CreateOptions`, `DeleteOptions`…), as kube-apiserver's options validation answers.
    pub fn dry_run(&self, options_kind: &str) -> ApiResult<bool> {
        match self.dry_run_error() {
            Some(e) => Err(options_invalid(options_kind, &[e])),
            None => Ok(self.str("dryRun") == "All"),
        }
    }

    fn dry_run_error(&self) -> Option<FieldError> {
        match self.get("dryRun") {
            None | Some("") | Some("All") => None,
            Some(v) => Some(FieldError::not_supported_rendered(
                "dryRun",
                serde_json::json!([v]).to_string(),
                &["All"],
            )),
        }
    }

    /// kube's `ValidateCreateOptions`, `ValidateUpdateOptions` and `ValidatePatchOptions` (but
    /// `fieldValidation`, see `field_validation::directive`): `fieldManager` at most 128 bytes
    /// of printable characters, `dryRun` only `All`. 422 naming `options_kind`.
    /// For a patch, `apply` says whether it is a server-side apply (which needs a
    /// `fieldManager`; only it may `force`).
    pub fn validate_write_options(&self, options_kind: &str, apply: Option<bool>) -> ApiResult<()> {
        let mut errs = Vec::new();
        match apply {
            Some(true) if self.str("fieldManager").is_empty() => errs.push(FieldError::required(
                "fieldManager",
                "is required for apply patch",
            )),
            Some(false) if self.get("force").is_some() => errs.push(FieldError::forbidden(
                "force",
                "may not be specified for non-apply patch",
            )),
            _ => {}
        }
        errs.extend(field_manager_errors(self.str("fieldManager")));
        errs.extend(self.dry_run_error());
        if errs.is_empty() {
            Ok(())
        } else {
            Err(options_invalid(options_kind, &errs))
        }
    }
}

/// The longest `fieldManager` kube accepts, in bytes.
pub const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// kube's `ValidateFieldManager`.
fn field_manager_errors(manager: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if manager.len() > FIELD_MANAGER_MAX_LENGTH {
        errs.push(FieldError::too_long(
            "fieldManager",
            FIELD_MANAGER_MAX_LENGTH,
        ));
    }
    for (i, c) in manager.char_indices() {
        if !is_print(c) {
            errs.push(FieldError::invalid(
                "fieldManager",
                manager,
                format!("invalid character {} (at position {i})", go_sharp_u(c)),
            ));
        }
    }
    errs
}

/// Go's `unicode.IsPrint`: graphic characters and the ASCII space; not control, format or
/// other space characters.
fn is_print(c: char) -> bool {
    c == ' '
        || !(c.is_control()
            || c.is_whitespace()
            || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}'))
}

/// Go's `%#U`: `U+0078 'x'`, or only `U+0007` for a character it cannot print.
fn go_sharp_u(c: char) -> String {
    if is_print(c) {
        format!("U+{:04X} '{c}'", c as u32)
    } else {
        format!("U+{:04X}", c as u32)
    }
}

fn options_invalid(options_kind: &str, errs: &[FieldError]) -> ApiError {
    ApiError::invalid(options_kind, "meta.k8s.io", "", errs)
}

/// Parse a resourceVersion parameter: "" → None, "N" → Some(N); anything else is a 400.
pub fn parse_resource_version(rv: &str) -> ApiResult<Option<i64>> {
    if rv.is_empty() {
        return Ok(None);
    }
    match rv.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(Some(n)),
        _ => Err(ApiError::bad_request(format!(
            "invalid resource version: {rv:?}"
        ))),
    }
}

/// Parse a Go-style duration (`1h`, `30m`, `1h0m0s`, `90s`, `500ms`), as kube flags take them.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("invalid duration {s:?} (use e.g. 1h, 30m, 1h30m, 90s, 500ms)");
    let s = s.trim();
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(bad()),
        };
        total += value * secs;
        rest = &rest[unit_len..];
    }
    std::time::Duration::try_from_secs_f64(total).map_err(|_| bad())
}
