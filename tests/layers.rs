//! The layers of ARCHITECTURE.md, checked: the registry store, admission, authentication,
//! authorization and the controllers never reach up into the endpoints (`handlers`, requests),
//! and only the server wiring starts controllers, so no module cycle joins them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Lines of code (comments left out) of the files under `src/<module>` (a directory, or
/// `<module>.rs`).
fn code_of(module: &str) -> Vec<(PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let dir = src.join(module);
    if dir.is_dir() {
        rust_files(&dir, &mut files);
    } else {
        files.push(src.join(format!("{module}.rs")));
    }
    files
        .into_iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            text.lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .map(|l| (f.clone(), l.to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn lower_layers_do_not_reach_into_the_endpoints_or_the_controllers() {
    let endpoints = [
        "crate::handlers",
        "handlers::",
        "crate::patch",
        "crate::subresources",
    ];
    let mut found = Vec::new();
    for module in [
        "registry",
        "admission",
        "authn",
        "authz",
        "controllers",
        "informer",
        "chain",
    ] {
        for (file, line) in code_of(module) {
            let mut forbidden: Vec<&str> = endpoints.to_vec();
            if module != "controllers" {
                forbidden.push("crate::controllers");
            }
            if let Some(f) = forbidden.iter().find(|f| line.contains(**f)) {
                found.push(format!("{}: uses {f}: {}", file.display(), line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "layering broken:\n{}", found.join("\n"));
}

#[test]
fn only_the_endpoints_hold_the_api_state() {
    // Below the endpoints, code is given the registry layer's `Backend` (or less), never the
    // HTTP side's `ApiState` with its authentication, audit and metrics.
    let mut found = Vec::new();
    for module in [
        "registry",
        "admission",
        "authn",
        "authz",
        "controllers",
        "informer",
        "crd",
        "bootstrap",
        "allocators",
        "webhook",
        "conversion",
    ] {
        for (file, line) in code_of(module) {
            if let Some(f) = ["ApiState", "crate::api"]
                .iter()
                .find(|f| line.contains(**f))
            {
                found.push(format!("{}: uses {f}: {}", file.display(), line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "layering broken:\n{}", found.join("\n"));
}
