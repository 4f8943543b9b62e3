//! Namespace deletion, API side. Deleting a namespace (in `registry::store::delete`, following
//! kube's namespace REST) sets its deletionTimestamp and phase Terminating; from then on new
//! content is refused (the `NamespaceLifecycle` admission plugin). The namespace controller
//! (`controllers::namespace`) deletes the content, reports progress in the namespace's
//! conditions and removes the `kubernetes` finalizer; the namespace goes with its last finalizer.

/// Namespaces that can never be deleted (kube-apiserver's NamespaceLifecycle admission).
pub const IMMORTAL: &[&str] = &["default", "kube-system", "kube-public"];
