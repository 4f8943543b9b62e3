//! The secure handler chain end to end through kubectl: one Role and one ClusterRole, bound to
//! four identities that reach the server in four ways — a static bearer token, a client
//! certificate minted from the server's CA, a ServiceAccount token from `kubectl create token`,
//! and impersonation (`--as` / `--as-group`) from the admin kubeconfig. Every verb class is tried
//! allowed and forbidden as each identity; a forbidden request must carry kube-apiserver's
//! message. Then `kubectl auth can-i --list`, who-am-I, anonymous requests and a bad token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use kubox::authn::UserInfo;
use kubox_conformance::{kubectl_binaries, Backend, Kubectl, Run, Target};

const ALICE_TOKEN: &str = "alice-static-token-0123456789";

/// The Target's kubeconfig with its user's credentials replaced by `user` (the CA is kept).
fn kubeconfig_with_user(
    target: &Target,
    user: serde_yaml::Mapping,
    dir: &Path,
    name: &str,
) -> PathBuf {
    let mut kc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&target.kubeconfig).unwrap()).unwrap();
    for u in kc["users"].as_sequence_mut().unwrap() {
        u["user"] = serde_yaml::Value::Mapping(user.clone());
    }
    let path = dir.join(name);
    std::fs::write(&path, serde_yaml::to_string(&kc).unwrap()).unwrap();
    path
}

fn token_user(token: &str) -> serde_yaml::Mapping {
    let mut u = serde_yaml::Mapping::new();
    u.insert("token".into(), token.into());
    u
}

fn minor(version: &str) -> u32 {
    version.trim_start_matches("1.").parse().unwrap()
}

/// One identity: how kubectl reaches the server as it, and the name RBAC sees.
struct Identity {
    kubectl: Kubectl,
    /// Extra flags on every command (`--as=…`).
    flags: Vec<String>,
    username: String,
    groups: Vec<String>,
    /// The object names this identity works on, so identities do not step on each other.
    tag: String,
}

impl Identity {
    fn run(&self, args: &[&str]) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(self.flags.iter().map(String::as_str));
        self.kubectl.run(&all)
    }

    fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(self.flags.iter().map(String::as_str));
        self.kubectl.run_stdin(&all, stdin)
    }

    /// The command must fail with kube-apiserver's 403 message for this user.
    #[track_caller]
    fn forbidden(&self, run: Run, what: &str) {
        let r = run.failure();
        let want = format!("User {:?} cannot {what}", self.username);
        assert!(
            r.stderr.contains(&want) && r.stderr.to_lowercase().contains("forbidden"),
            "`{}`: want {want:?} in stderr:\n{}",
            r.cmdline,
            r.stderr
        );
    }
}

fn role(ns: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: team-member
  namespace: {ns}
rules:
- apiGroups: [\"\"]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [\"\"]
  resources: [configmaps]
  verbs: [create, get]
- apiGroups: [\"\"]
  resources: [configmaps]
  resourceNames: [shared]
  verbs: [update, patch]
- apiGroups: [apps]
  resources: [deployments/scale]
  verbs: [get]
- apiGroups: [\"\"]
  resources: [secrets]
  verbs: [delete]
- apiGroups: [\"\"]
  resources: [events]
  verbs: [deletecollection]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: team-members
  namespace: {ns}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: team-member
subjects:
- kind: User
  apiGroup: rbac.authorization.k8s.io
  name: alice
- kind: User
  apiGroup: rbac.authorization.k8s.io
  name: bob
- kind: User
  apiGroup: rbac.authorization.k8s.io
  name: jane
- kind: ServiceAccount
  name: robot
  namespace: {ns}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {ns}-health-checks
rules:
- nonResourceURLs: [\"/healthz/*\"]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {ns}-health-checks
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {ns}-health-checks
subjects:
- kind: Group
  apiGroup: rbac.authorization.k8s.io
  name: devs
- kind: ServiceAccount
  name: robot
  namespace: {ns}
"
    )
}

fn configmap(ns: &str, name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\ndata:\n  k: {value}\n"
    )
}

/// Every verb class, allowed and forbidden, as one identity.
fn matrix(id: &Identity, admin: &Kubectl, ns: &str) {
    let t = id.tag.as_str();
    let in_ns = |what: &str| format!("{what} in the namespace \"{ns}\"");

    // get, list, watch: allowed on pods, forbidden on secrets.
    id.run(&["get", "pod", "web", "-n", ns, "-o", "name"])
        .success();
    let pods = id.run(&["get", "pods", "-n", ns, "-o", "name"]).success();
    assert!(pods.stdout.contains("pod/web"), "{}", pods.stdout);
    let watch = format!("/api/v1/namespaces/{ns}/pods?watch=1&timeoutSeconds=1");
    let events = id.run(&["get", "--raw", &watch]).success();
    assert!(events.stdout.contains("\"ADDED\""), "{}", events.stdout);
    id.forbidden(
        id.run(&["get", "secret", "s-keep", "-n", ns]),
        &in_ns("get resource \"secrets\" in API group \"\""),
    );
    id.forbidden(
        id.run(&["get", "secrets", "-n", ns]),
        &in_ns("list resource \"secrets\" in API group \"\""),
    );
    let watch_secrets = format!("/api/v1/namespaces/{ns}/secrets?watch=1&timeoutSeconds=1");
    id.forbidden(
        id.run(&["get", "--raw", &watch_secrets]),
        &in_ns("watch resource \"secrets\" in API group \"\""),
    );
    // Cluster-scoped: nothing granted.
    id.forbidden(
        id.run(&["get", "nodes"]),
        "list resource \"nodes\" in API group \"\" at the cluster scope",
    );

    // create: configmaps yes, secrets no.
    id.run(&[
        "create",
        "configmap",
        &format!("made-by-{t}"),
        "-n",
        ns,
        "--from-literal=k=v",
    ])
    .success();
    id.forbidden(
        id.run(&[
            "create",
            "secret",
            "generic",
            &format!("made-by-{t}"),
            "-n",
            ns,
            "--from-literal=k=v",
        ]),
        &in_ns("create resource \"secrets\" in API group \"\""),
    );

    // update and patch: only the configmap the rule names.
    id.run_stdin(&["replace", "-f", "-"], &configmap(ns, "shared", t))
        .success();
    let got = id
        .run(&["get", "cm", "shared", "-n", ns, "-o", "jsonpath={.data.k}"])
        .success();
    assert_eq!(got.stdout, t);
    id.run(&[
        "patch",
        "configmap",
        "shared",
        "-n",
        ns,
        "--type=merge",
        &format!("-p={{\"data\":{{\"patched\":\"{t}\"}}}}"),
    ])
    .success();
    id.forbidden(
        id.run_stdin(&["replace", "-f", "-"], &configmap(ns, "private", t)),
        &in_ns("update resource \"configmaps\" in API group \"\""),
    );
    id.forbidden(
        id.run(&[
            "patch",
            "configmap",
            "private",
            "-n",
            ns,
            "--type=merge",
            "-p={\"data\":{\"x\":\"y\"}}",
        ]),
        &in_ns("patch resource \"configmaps\" in API group \"\""),
    );
    id.forbidden(
        id.run(&["get", "cm", "-n", ns]),
        &in_ns("list resource \"configmaps\" in API group \"\""),
    );

    // delete: secrets yes (by name), configmaps no.
    id.run(&["delete", "secret", &format!("s-{t}"), "-n", ns])
        .success();
    id.forbidden(
        id.run(&["delete", "configmap", "private", "-n", ns]),
        &in_ns("delete resource \"configmaps\" in API group \"\""),
    );

    // deletecollection: events yes, pods no.
    id.run(&[
        "delete",
        "--raw",
        &format!("/api/v1/namespaces/{ns}/events"),
    ])
    .success();
    id.forbidden(
        id.run(&["delete", "--raw", &format!("/api/v1/namespaces/{ns}/pods")]),
        &in_ns("deletecollection resource \"pods\" in API group \"\""),
    );

    // A subresource: deployments/scale may be read, deployments/status may not.
    let scale = id
        .run(&[
            "get",
            "--raw",
            &format!("/apis/apps/v1/namespaces/{ns}/deployments/web/scale"),
        ])
        .success();
    assert!(scale.stdout.contains("\"Scale\""), "{}", scale.stdout);
    id.forbidden(
        id.run(&[
            "get",
            "--raw",
            &format!("/apis/apps/v1/namespaces/{ns}/deployments/web/status"),
        ]),
        &in_ns("get resource \"deployments/status\" in API group \"apps\""),
    );

    // A non-resource URL: /healthz/* through the ClusterRole, /livez/* not.
    let ping = id.run(&["get", "--raw", "/healthz/ping"]).success();
    assert_eq!(ping.stdout.trim(), "ok");
    id.forbidden(
        id.run(&["get", "--raw", "/livez/ping"]),
        "get path \"/livez/ping\"",
    );

    // `kubectl auth can-i`, one question and the whole list.
    let yes = id
        .run(&["auth", "can-i", "watch", "pods", "-n", ns])
        .success();
    assert_eq!(yes.stdout.trim(), "yes");
    let no = id.run(&["auth", "can-i", "list", "secrets", "-n", ns]);
    assert_eq!(no.stdout.trim(), "no", "{no:?}");
    let list = id.run(&["auth", "can-i", "--list", "-n", ns]).success();
    let line = |resource: &str| {
        list.stdout
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(resource))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
    };
    assert!(
        line("pods").contains(&"pods [] [] [get list watch]".to_string()),
        "{}",
        list.stdout
    );
    assert!(
        line("configmaps").contains(&"configmaps [] [shared] [update patch]".to_string()),
        "{}",
        list.stdout
    );
    assert!(
        line("configmaps").contains(&"configmaps [] [] [create get]".to_string()),
        "{}",
        list.stdout
    );
    assert!(
        line("deployments.apps/scale").contains(&"deployments.apps/scale [] [] [get]".to_string()),
        "{}",
        list.stdout
    );
    assert!(
        list.stdout.contains("[/healthz/*]"),
        "group-bound non-resource rule missing:\n{}",
        list.stdout
    );
    assert!(
        !list.stdout.contains("secrets [] [] [get"),
        "{}",
        list.stdout
    );

    // Who am I.
    let review = if minor(&id.kubectl.version) >= 28 {
        id.run(&["auth", "whoami", "-o", "json"]).success().json()
    } else {
        // 1.27's `alpha auth whoami` asks for v1alpha1, which a 1.35 server does not serve;
        // the v1 SelfSubjectReview it would have sent answers the same question.
        // (--validate=false: 1.27 asks for the CRD list when it cannot verify the
        // fieldValidation parameter, which these users may not read.)
        id.run_stdin(
            &["create", "-f", "-", "-o", "json", "--validate=false"],
            "apiVersion: authentication.k8s.io/v1\nkind: SelfSubjectReview\n",
        )
        .success()
        .json()
    };
    assert_eq!(
        review["status"]["userInfo"]["username"],
        id.username.as_str()
    );
    assert_eq!(
        review["status"]["userInfo"]["groups"],
        serde_json::json!(id.groups),
        "{review}"
    );

    // What the identity did is visible to the admin.
    admin
        .run(&["get", "cm", &format!("made-by-{t}"), "-n", ns])
        .success();
    admin
        .run(&["get", "secret", &format!("s-{t}"), "-n", ns])
        .failure();
}

async fn scenario(version: &str) {
    let (_, bin) = kubectl_binaries()
        .into_iter()
        .find(|(v, _)| v == version)
        .unwrap_or_else(|| panic!("kubectl {version} missing"));
    let alice = UserInfo {
        username: "alice".to_string(),
        uid: "alice-uid".to_string(),
        groups: vec!["devs".to_string()],
        ..Default::default()
    };
    let target = Target::start_with(Backend::Memory, |b| {
        b.static_tokens([(ALICE_TOKEN.to_string(), alice)])
    })
    .await;
    let Some(server) = target.server() else {
        eprintln!("the RBAC matrix needs its own kubox (static tokens, client certificates)");
        return;
    };
    let ns = target.namespace.clone();
    let admin = Kubectl::new(version, &bin, &target);
    let dir = tempfile::tempdir().unwrap();

    admin.run(&["create", "namespace", &ns]).success();
    admin.run(&["create", "sa", "robot", "-n", &ns]).success();
    admin.run_stdin(&["apply", "-f", "-"], &role(&ns)).success();
    admin
        .run(&["run", "web", "-n", &ns, "--image=nginx", "--restart=Never"])
        .success();
    admin
        .run(&["create", "deployment", "web", "-n", &ns, "--image=nginx"])
        .success();
    for name in ["shared", "private"] {
        admin
            .run_stdin(&["apply", "-f", "-"], &configmap(&ns, name, "initial"))
            .success();
    }
    admin
        .run(&[
            "create",
            "secret",
            "generic",
            "s-keep",
            "-n",
            &ns,
            "--from-literal=k=v",
        ])
        .success();
    for tag in ["token", "cert", "sa", "as"] {
        admin
            .run(&[
                "create",
                "secret",
                "generic",
                &format!("s-{tag}"),
                "-n",
                &ns,
                "--from-literal=k=v",
            ])
            .success();
    }

    // 1. A static bearer token.
    let alice_kc = kubeconfig_with_user(&target, token_user(ALICE_TOKEN), dir.path(), "alice");
    // 2. A client certificate signed by the server's CA (CN=bob, O=devs).
    let bob_kc = dir.path().join("bob");
    std::fs::write(&bob_kc, server.kubeconfig_for("bob", &["devs"]).unwrap()).unwrap();
    // 3. A ServiceAccount token from `kubectl create token`.
    let sa_token = admin
        .run(&["create", "token", "robot", "-n", &ns])
        .success()
        .stdout
        .trim()
        .to_string();
    let robot_kc = kubeconfig_with_user(&target, token_user(&sa_token), dir.path(), "robot");

    let identities = [
        Identity {
            kubectl: Kubectl::with_kubeconfig(version, &bin, &alice_kc),
            flags: vec![],
            username: "alice".to_string(),
            groups: vec!["devs".to_string(), "system:authenticated".to_string()],
            tag: "token".to_string(),
        },
        Identity {
            kubectl: Kubectl::with_kubeconfig(version, &bin, &bob_kc),
            flags: vec![],
            username: "bob".to_string(),
            groups: vec!["devs".to_string(), "system:authenticated".to_string()],
            tag: "cert".to_string(),
        },
        Identity {
            kubectl: Kubectl::with_kubeconfig(version, &bin, &robot_kc),
            flags: vec![],
            username: format!("system:serviceaccount:{ns}:robot"),
            groups: vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".to_string(),
            ],
            tag: "sa".to_string(),
        },
        // 4. Impersonation from the admin kubeconfig.
        Identity {
            kubectl: Kubectl::new(version, &bin, &target),
            flags: vec!["--as=jane".to_string(), "--as-group=devs".to_string()],
            username: "jane".to_string(),
            groups: vec!["devs".to_string(), "system:authenticated".to_string()],
            tag: "as".to_string(),
        },
    ];
    for id in &identities {
        matrix(id, &admin, &ns);
    }
    // The one untouched secret is still there: every delete above hit only its own.
    admin.run(&["get", "secret", "s-keep", "-n", &ns]).success();

    // Impersonation itself is authorized: alice may not pose as someone else.
    let alice = &identities[0];
    alice.forbidden(
        alice.run(&["get", "pods", "-n", &ns, "--as=bob"]),
        "impersonate resource \"users\" in API group \"\" at the cluster scope",
    );

    // Anonymous: public info yes, pods no. kubectl prompts for a user name when a TLS
    // kubeconfig names no credentials at all, so this one carries basic-auth credentials: no
    // authenticator accepts that scheme (kube-apiserver has none since 1.19), and the request
    // proceeds as system:anonymous.
    let mut basic = serde_yaml::Mapping::new();
    basic.insert("username".into(), "nobody".into());
    basic.insert("password".into(), "nothing".into());
    let anon = Kubectl::with_kubeconfig(
        version,
        &bin,
        &kubeconfig_with_user(&target, basic, dir.path(), "anon"),
    );
    let v = anon.run(&["get", "--raw", "/version"]).success().json();
    assert_eq!(v["minor"], "35");
    assert_eq!(
        anon.run(&["get", "--raw", "/healthz"]).success().stdout,
        "ok"
    );
    // (`kubectl get pods` would stop at discovery, which anonymous users may not read either:
    // kubectl then prints "Error from server (Forbidden): unknown", as against kube-apiserver.)
    let r = anon
        .run(&["get", "--raw", &format!("/api/v1/namespaces/{ns}/pods")])
        .failure();
    assert!(
        r.stderr.contains(&format!(
            "User \"system:anonymous\" cannot list resource \"pods\" in API group \"\" in the namespace \"{ns}\""
        )),
        "{}",
        r.stderr
    );

    // A token nobody issued: 401 Unauthorized.
    let bad = Kubectl::with_kubeconfig(
        version,
        &bin,
        &kubeconfig_with_user(&target, token_user("not-a-token"), dir.path(), "bad"),
    );
    // Through discovery kubectl words the 401 itself; --raw shows the Status' message.
    let r = bad.run(&["get", "pods", "-n", &ns]).failure();
    assert!(
        r.stderr.contains("You must be logged in to the server"),
        "{}",
        r.stderr
    );
    let r = bad.run(&["get", "--raw", "/version"]).failure();
    assert!(r.stderr.contains("Unauthorized"), "{}", r.stderr);

    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_27_rbac_matrix_over_tokens_certificates_service_accounts_and_impersonation() {
    scenario("1.27").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_35_rbac_matrix_over_tokens_certificates_service_accounts_and_impersonation() {
    scenario("1.35").await;
}
