//! Writes `assets/structural.packed.z`: the built-in schemas as built from
//! `assets/structural.json.z`, packed (see `kubox_openapi`'s `packed` module), which is what a
//! server loads at start-up. Run after the structural asset or the schema builder changed (a
//! test fails until then):
//!
//! ```text
//! cargo run -p kubox-openapi --bin pack-schemas
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/structural.packed.z");
    let packed = match kubox_openapi::Schemas::pack_builtin() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot build the schemas from the structural asset: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::write(&path, &packed) {
        eprintln!("cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {} ({} bytes)", path.display(), packed.len());
    ExitCode::SUCCESS
}
