//! Authentication through kubectl: HTTPS with the kubeconfig kubox writes (CA + admin client
//! certificate), `kubectl auth whoami`, `kubectl create token` and the token it prints,
//! impersonation with `--as` / `--as-group`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubox_conformance::{kubectl_binaries, Backend, Kubectl, Target};

const SSR: &str = "apiVersion: authentication.k8s.io/v1
kind: SelfSubjectReview
";

/// The Target's kubeconfig with its user replaced by `token` (the CA is kept).
fn token_kubeconfig(target: &Target, token: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let mut kc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&target.kubeconfig).unwrap()).unwrap();
    for user in kc["users"].as_sequence_mut().unwrap() {
        let mut u = serde_yaml::Mapping::new();
        u.insert("token".into(), token.into());
        user["user"] = serde_yaml::Value::Mapping(u);
    }
    let path = dir.join("token-kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&kc).unwrap()).unwrap();
    path
}

/// Who the server says we are, through a SelfSubjectReview any kubectl can create.
/// `--validate=false`: kubectl 1.27 validates a create client-side first and, not finding the
/// kind's fieldValidation support in /openapi/v2, lists CRDs, which a user without rights on
/// them may not.
fn username(k: &Kubectl, extra: &[&str]) -> String {
    let mut args = vec![
        "create",
        "--validate=false",
        "-f",
        "-",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ];
    args.extend_from_slice(extra);
    k.run_stdin(&args, SSR).success().stdout
}

fn minor(version: &str) -> u32 {
    version.trim_start_matches("1.").parse().unwrap()
}

async fn scenario(version: &str, bin: &std::path::Path) {
    let target = Target::start(Backend::Memory).await;
    let k = Kubectl::new(version, bin, &target);
    let ns = target.namespace.as_str();

    // HTTPS with the written kubeconfig: everyday commands work, as the kubeadm-style admin.
    let yaml = std::fs::read_to_string(&target.kubeconfig).unwrap();
    assert!(yaml.contains("server: https://"), "{yaml}");
    k.run(&["create", "namespace", ns]).success();
    k.run_stdin(
        &["apply", "-n", ns, "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tls\ndata:\n  k: v\n",
    )
    .success();
    let got = k
        .run(&["get", "cm", "tls", "-n", ns, "-o", "jsonpath={.data.k}"])
        .success();
    assert_eq!(got.stdout, "v");
    assert_eq!(username(&k, &[]), "kubernetes-admin");

    // `kubectl auth whoami`: the v1 SelfSubjectReview from 1.28 on (1.27 only knows the alpha
    // and beta APIs, which a 1.35 server no longer serves).
    let whoami = k.run(&["auth", "whoami", "-o", "json"]);
    if minor(version) >= 28 {
        let v = whoami.success().json();
        assert_eq!(v["status"]["userInfo"]["username"], "kubernetes-admin");
        assert_eq!(
            v["status"]["userInfo"]["groups"],
            serde_json::json!(["system:masters", "system:authenticated"])
        );
        let jane = k
            .run(&[
                "auth",
                "whoami",
                "--as=jane",
                "--as-group=dev",
                "-o",
                "json",
            ])
            .success()
            .json();
        assert_eq!(jane["status"]["userInfo"]["username"], "jane");
        assert_eq!(
            jane["status"]["userInfo"]["groups"],
            serde_json::json!(["dev", "system:authenticated"])
        );
    } else {
        let r = whoami.failure();
        assert!(r.stderr.contains("selfsubjectreviews"), "{}", r.stderr);
    }
    // Impersonation, any version. Under RBAC jane may create SelfSubjectReviews
    // (system:basic-user) and, once bound to `view` here, list pods.
    assert_eq!(username(&k, &["--as=jane"]), "jane");
    k.run(&["get", "pods", "-n", ns, "--as=jane"]).failure();
    k.run(&[
        "create",
        "rolebinding",
        "jane-view",
        "--clusterrole=view",
        "--user=jane",
        "-n",
        ns,
    ])
    .success();
    k.run(&["get", "pods", "-n", ns, "--as=jane"]).success();

    // `kubectl create token` (1.24+): a JWT that authenticates as the ServiceAccount.
    let token = k
        .run(&["create", "token", "default", "-n", "default"])
        .success()
        .stdout
        .trim()
        .to_string();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let dir = tempfile::tempdir().unwrap();
    let as_token =
        Kubectl::with_kubeconfig(version, bin, &token_kubeconfig(&target, &token, dir.path()));
    assert_eq!(
        username(&as_token, &[]),
        "system:serviceaccount:default:default"
    );
    // With --token on the command line too (the kubeconfig's user has only a token).
    let other = k
        .run(&[
            "create",
            "token",
            "default",
            "-n",
            "default",
            "--duration=15m",
        ])
        .success()
        .stdout;
    let flag = format!("--token={}", other.trim());
    assert_eq!(
        username(&as_token, &[&flag]),
        "system:serviceaccount:default:default"
    );
    // A token for another audience does not authenticate to the API (401; kubectl words it
    // differently across versions).
    let vault = k
        .run(&[
            "create",
            "token",
            "default",
            "-n",
            "default",
            "--audience=vault",
        ])
        .success()
        .stdout;
    let flag = format!("--token={}", vault.trim());
    let r = as_token
        .run_stdin(&["create", "-f", "-", &flag], SSR)
        .failure();
    assert!(
        r.stderr.contains("provide credentials") || r.stderr.contains("Unauthorized"),
        "{}",
        r.stderr
    );

    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_authenticates_over_https_creates_tokens_and_impersonates() {
    let bins = kubectl_binaries();
    assert!(!bins.is_empty(), "no kubectl installed");
    for (version, bin) in bins
        .iter()
        .filter(|(v, _)| matches!(v.as_str(), "1.27" | "1.28" | "1.35"))
    {
        scenario(version, bin).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_reads_the_kubeconfig_and_talks_tls() {
    use k8s_openapi::api::core::v1::Namespace;
    let target = Target::start(Backend::Sled).await;
    let client = target.client().await;
    let nss: kube::Api<Namespace> = kube::Api::all(client.clone());
    let names: Vec<String> = nss
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"default".to_string()), "{names:?}");
    let info = client.apiserver_version().await.unwrap();
    assert_eq!(info.minor, "35");
    target.stop().await;
}
