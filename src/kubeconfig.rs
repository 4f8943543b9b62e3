//! The kubeconfig kubox writes: one cluster, one user, one context, all named `kubox`.

/// Render a kubeconfig for a server URL.
pub fn render(server: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kubox
  cluster:
    server: {server}
users:
- name: kubox
  user: {{}}
contexts:
- name: kubox
  context:
    cluster: kubox
    user: kubox
    namespace: default
current-context: kubox
preferences: {{}}
"
    )
}
