//! Resource quantities (`100m`, `1Gi`, `2e3`) compared and added exactly, as
//! k8s.io/apimachinery/pkg/api/resource does for LimitRange and quota checks
//! ([`kubox_apimachinery::quantity`]).

pub use kubox_apimachinery::quantity::Quantity;

/// The quantity `q` denotes, None if it does not parse.
pub fn parse(q: &str) -> Option<Quantity> {
    Quantity::parse(q)
}
