//! `/version`: kubox reports the Kubernetes version whose API it serves.

/// The Kubernetes minor version served.
pub const KUBERNETES_MINOR: &str = "35";

/// The version document (k8s.io/apimachinery's `version.Info`, fields in its order).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    major: &'static str,
    minor: &'static str,
    emulation_major: &'static str,
    emulation_minor: &'static str,
    min_compatibility_major: &'static str,
    min_compatibility_minor: &'static str,
    git_version: String,
    git_commit: &'static str,
    git_tree_state: &'static str,
    build_date: &'static str,
    go_version: &'static str,
    compiler: &'static str,
    platform: String,
}

/// The version document.
pub fn info() -> Info {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    Info {
        major: "1",
        minor: KUBERNETES_MINOR,
        emulation_major: "1",
        emulation_minor: KUBERNETES_MINOR,
        min_compatibility_major: "1",
        min_compatibility_minor: "34",
        git_version: format!(
            "v1.{KUBERNETES_MINOR}.0-kubox.{}",
            env!("CARGO_PKG_VERSION")
        ),
        git_commit: "",
        git_tree_state: "clean",
        build_date: "1970-01-01T00:00:00Z",
        go_version: "go1.25.0",
        compiler: "gc",
        platform: format!("{}/{arch}", std::env::consts::OS),
    }
}

/// `/version` as kube-apiserver writes it: indented, in the struct's field order.
pub fn response() -> http::Response<crate::body::Body> {
    crate::body::bytes_response(
        http::StatusCode::OK,
        "application/json",
        serde_json::to_vec_pretty(&info()).unwrap_or_default(),
    )
}
