//! A CRD whose validation rules use Kubernetes' CEL libraries (URLs, IPs, CIDRs, quantities,
//! semantic versions), as operators ship them: applied by kubectl server-side and client-side,
//! Established, a valid object accepted and an invalid one refused with the rules' messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubox_conformance::{with_kubectl, Kubectl};

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: backends.libs.kubox.dev
spec:
  group: libs.kubox.dev
  scope: Namespaced
  names: {plural: backends, singular: backend, kind: Backend}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: "!has(self.address) || !has(self.network) || cidr(self.network).containsIP(self.address)"
              message: address must be inside network
            properties:
              endpoint:
                type: string
                maxLength: 2048
                x-kubernetes-validations:
                - rule: isURL(self) && url(self).getScheme() in ['http', 'https']
                  message: endpoint must be an http(s) URL
              address:
                type: string
                maxLength: 64
                x-kubernetes-validations:
                - rule: isIP(self) && ip.isCanonical(self)
                  message: address must be a canonical IP
              network:
                type: string
                maxLength: 64
                x-kubernetes-validations:
                - rule: isCIDR(self) && cidr(self).prefixLength() >= 8
                  message: network must be a CIDR of /8 or longer
              memory:
                type: string
                maxLength: 32
                x-kubernetes-validations:
                - rule: isQuantity(self) && quantity(self).isLessThan(quantity('64Gi'))
                  message: memory must be a quantity under 64Gi
              minVersion:
                type: string
                maxLength: 64
                x-kubernetes-validations:
                - rule: isSemver(self, true) && semver(self, true).isGreaterThan(semver('1.0.0'))
                  message: minVersion must be a version above 1.0.0
              zone:
                type: string
                maxLength: 63
                x-kubernetes-validations:
                - rule: "!format.dns1123Label().validate(self).hasValue()"
                  messageExpression: "'zone: ' + format.dns1123Label().validate(self).value()[0]"
              tiers:
                type: array
                maxItems: 8
                items: {type: string, maxLength: 16}
                x-kubernetes-validations:
                - rule: sets.contains(['gold', 'silver', 'bronze'], self)
                  message: tiers must be gold, silver or bronze
"#;

/// A Backend: endpoint, address, network, memory, minVersion, zone and tier.
fn backend(
    ns: &str,
    [endpoint, address, network, memory, version, zone, tier]: [&str; 7],
) -> String {
    format!(
        "apiVersion: libs.kubox.dev/v1\nkind: Backend\nmetadata:\n  name: b1\n  namespace: {ns}\nspec:\n  endpoint: {endpoint:?}\n  address: {address:?}\n  network: {network:?}\n  memory: {memory:?}\n  minVersion: {version:?}\n  zone: {zone:?}\n  tiers: [{tier:?}]\n"
    )
}

fn scenario(k: &Kubectl, ns: &str, server_side: bool) {
    k.run(&["create", "namespace", ns]).success();
    let mut apply = vec!["apply", "-f", "-"];
    if server_side {
        apply.push("--server-side");
    }
    k.run_stdin(&apply, CRD).success();
    k.run(&[
        "wait",
        "--for=condition=Established",
        "crd/backends.libs.kubox.dev",
        "--timeout=20s",
    ])
    .success();
    k.run_stdin(
        &apply,
        &backend(
            ns,
            [
                "https://api.example.com:8443/v1",
                "10.1.2.3",
                "10.0.0.0/8",
                "2Gi",
                "v1.4",
                "eu-west-1",
                "gold",
            ],
        ),
    )
    .success();
    let bad = k
        .run_stdin(
            &apply,
            &backend(
                ns,
                [
                    "ftp://example.com/",
                    "2001:DB8::1",
                    "10.0.0.0/4",
                    "128Gi",
                    "0.9.0",
                    "EU_West",
                    "platinum",
                ],
            ),
        )
        .failure();
    for message in [
        "endpoint must be an http(s) URL",
        "address must be a canonical IP",
        "network must be a CIDR of /8 or longer",
        "memory must be a quantity under 64Gi",
        "minVersion must be a version above 1.0.0",
        "zone: a lowercase RFC 1123 label must consist of",
        "tiers must be gold, silver or bronze",
    ] {
        assert!(bad.stderr.contains(message), "{message}: {}", bad.stderr);
    }
    let outside = k
        .run_stdin(
            &apply,
            &backend(
                ns,
                [
                    "https://x/",
                    "192.168.1.1",
                    "10.0.0.0/8",
                    "1Gi",
                    "2.0.0",
                    "z",
                    "silver",
                ],
            ),
        )
        .failure();
    assert!(
        outside.stderr.contains("address must be inside network"),
        "{}",
        outside.stderr
    );
    k.run(&["delete", "crd", "backends.libs.kubox.dev"])
        .success();
}

#[test]
fn kubectl_1_35_applies_a_crd_using_kubernetes_cel_libraries_server_side() {
    with_kubectl("1.35", |k, ns| scenario(k, ns, true));
}

#[test]
fn kubectl_1_35_applies_a_crd_using_kubernetes_cel_libraries_client_side() {
    with_kubectl("1.35", |k, ns| scenario(k, ns, false));
}
