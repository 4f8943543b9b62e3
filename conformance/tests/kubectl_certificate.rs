//! `kubectl certificate approve` and `deny`: the conditions go through
//! `certificatesigningrequests/approval`, the only way to change them, stamped as kube stamps
//! them; the spec records who asked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubox_conformance::{with_kubectl, Kubectl};

/// A CSR whose `spec.request` is a real PKCS#10 request (kube checks its signature).
fn csr(name: &str) -> String {
    format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: {name}\nspec:\n  request: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KTUlIUU1IY0NBUUF3RlRFVE1CRUdBMVVFQXd3S2EzVmliM2d0ZEdWemREQlpNQk1HQnlxR1NNNDlBZ0VHQ0NxRwpTTTQ5QXdFSEEwSUFCSmVUczJPTG9ZNFh6aHlTcWd6c1kwSlZmZ25oU21WOFF0WkZiY2Y0NVgyWnBRR1k4dnFnCm5wUUpZV2FKQlljUzNyUnR5RFpNcENUTGJhbDNYZzN6OC9HZ0FEQUtCZ2dxaGtqT1BRUURBZ05KQURCR0FpRUEKOG5RTzBoKzlJLytueEc0OUhub2YzM2RCSG80TDhEcytrNnFOSEVjVlJNZ0NJUURFbFdKclpMTk1NOEh3UzF3cApvZkVEQ0N2NEFBUlBTVVBDUnJTbUlBbm41QT09Ci0tLS0tRU5EIENFUlRJRklDQVRFIFJFUVVFU1QtLS0tLQo=\n  signerName: example.com/signer\n  usages: [client auth]\n"
    )
}

fn scenario(k: &Kubectl, ns: &str) {
    let approve = format!("{ns}-a");
    let deny = format!("{ns}-d");
    for name in [&approve, &deny] {
        k.run_stdin(&["create", "-f", "-"], &csr(name)).success();
    }
    k.run(&["certificate", "approve", &approve]).success();
    k.run(&["certificate", "deny", &deny]).success();
    let got = |name: &str| k.run(&["get", "csr", name, "-o", "json"]).success().json();
    let a = got(&approve);
    let cond = &a["status"]["conditions"][0];
    assert_eq!(cond["type"], "Approved", "{a}");
    assert_eq!(cond["status"], "True", "{a}");
    assert_eq!(cond["reason"], "KubectlApprove", "{a}");
    assert!(cond["lastUpdateTime"].is_string(), "{a}");
    assert!(a["spec"]["username"].is_string(), "{a}");
    let d = got(&deny);
    assert_eq!(d["status"]["conditions"][0]["type"], "Denied", "{d}");
    let table = k.run(&["get", "csr", &approve]).success().stdout;
    assert!(table.contains("Approved"), "{table}");
    for name in [&approve, &deny] {
        k.run(&["delete", "csr", name]).success();
    }
}

#[test]
fn kubectl_1_35_approves_and_denies_certificate_signing_requests() {
    with_kubectl("1.35", scenario);
}

#[test]
fn kubectl_1_27_approves_and_denies_certificate_signing_requests() {
    with_kubectl("1.27", scenario);
}
