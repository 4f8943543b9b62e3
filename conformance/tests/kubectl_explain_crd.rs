//! `kubectl explain` for a custom resource (its CRD's schema, published in `/openapi/v3`
//! and `/openapi/v2`), and server-side field validation of custom resources through kubectl.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubox_conformance::{kubectl_binaries, Backend, Kubectl, Target};

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames: [ct]
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        description: CronTab runs a command on a schedule.
        properties:
          spec:
            type: object
            description: The desired schedule and command.
            required: [cronSpec]
            properties:
              cronSpec:
                type: string
                description: When to run, in cron syntax.
              image:
                type: string
                description: The container image that runs the command.
              retry:
                type: object
                description: How failed runs are retried.
                properties:
                  limit:
                    type: integer
                    description: Retries before giving up.
                  backoff:
                    type: string
                    description: Delay between retries.
          status:
            type: object
            properties:
              lastRun: {type: string}
"#;

fn crontab(extra_spec: &str) -> String {
    format!(
        "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata:\n  name: nightly\nspec:\n  cronSpec: \"0 3 * * *\"\n{extra_spec}"
    )
}

/// `kubectl explain` with the given extra flags (none: OpenAPI v3; `--output
/// plaintext-openapiv2`: v2) shows the CRD's descriptions.
fn explain(k: &Kubectl, extra: &[&str]) {
    let args = |path: &str, more: &[&'static str]| -> Vec<String> {
        let mut v = vec!["explain".to_string(), path.to_string()];
        v.extend(more.iter().map(|s| s.to_string()));
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        k.run(&a).success().stdout
    };
    let out = run(args("crontabs", &[]));
    assert!(out.contains("KIND:") && out.contains("CronTab"), "{out}");
    assert!(out.contains("stable.example.com"), "{out}");
    assert!(
        out.contains("CronTab runs a command on a schedule."),
        "{out}"
    );
    // The v3 printer names the referenced type, the v2 printer says Object.
    let meta = if extra.is_empty() {
        "metadata\t<ObjectMeta>"
    } else {
        "metadata\t<Object>"
    };
    assert!(out.contains(meta), "{out}");
    assert!(out.contains("Standard object's metadata."), "{out}");
    assert!(
        out.contains("APIVersion defines the versioned schema"),
        "{out}"
    );
    let out = run(args("crontabs.spec", &[]));
    assert!(out.contains("The desired schedule and command."), "{out}");
    assert!(out.contains("cronSpec\t<string> -required-"), "{out}");
    assert!(out.contains("When to run, in cron syntax."), "{out}");
    assert!(out.contains("retry\t<Object>"), "{out}");
    let out = run(args("ct.spec.retry", &["--recursive"]));
    assert!(out.contains("How failed runs are retried."), "{out}");
    assert!(out.contains("limit\t<integer>"), "{out}");
    assert!(out.contains("backoff\t<string>"), "{out}");
    let out = run(args("crontabs.metadata.name", &[]));
    assert!(
        out.contains("Name must be unique within a namespace."),
        "{out}"
    );
    let a = args("crontabs.spec.bogus", &[]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let err = k.run(&a).failure().stderr;
    assert!(err.contains("field \"bogus\" does not exist"), "{err}");
}

fn scenario(k: &Kubectl, ns: &str, v2: bool) {
    k.run_stdin(
        &["create", "-f", "-"],
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
    )
    .success();
    k.run_stdin(&["apply", "-f", "-"], CRD).success();
    k.run(&[
        "wait",
        "--for=condition=Established",
        "crd/crontabs.stable.example.com",
        "--timeout=20s",
    ])
    .success();
    explain(k, &[]);
    if v2 {
        explain(k, &["--output", "plaintext-openapiv2"]);
        // Built-in kinds are in the v2 document too.
        let out = k
            .run(&[
                "explain",
                "deployment.spec.replicas",
                "--output",
                "plaintext-openapiv2",
            ])
            .success()
            .stdout;
        assert!(out.contains("Number of desired pods."), "{out}");
    }

    // kubectl sends fieldValidation=Strict: an unknown field is refused, naming it.
    let err = k
        .run_stdin(&["apply", "-n", ns, "-f", "-"], &crontab("  bogus: true\n"))
        .failure()
        .stderr;
    assert!(err.contains(r#"unknown field "spec.bogus""#), "{err}");
    k.run(&["get", "crontab", "nightly", "-n", ns]).failure();
    k.run_stdin(
        &["apply", "-n", ns, "-f", "-"],
        &crontab("  retry:\n    limit: 3\n"),
    )
    .success();
    let err = k
        .run_stdin(
            &["apply", "-n", ns, "-f", "-"],
            &crontab("  retry:\n    limit: 3\n    jitter: 1s\n"),
        )
        .failure()
        .stderr;
    assert!(
        err.contains(r#"unknown field "spec.retry.jitter""#),
        "{err}"
    );

    // A changed schema reaches kubectl's cached document.
    k.run_stdin(
        &["apply", "-f", "-"],
        &CRD.replace(
            "When to run, in cron syntax.",
            "The schedule, in cron syntax.",
        ),
    )
    .success();
    let formats: &[&[&str]] = if v2 {
        &[&[], &["--output", "plaintext-openapiv2"]]
    } else {
        &[&[]]
    };
    for extra in formats {
        let mut args = vec!["explain", "crontabs.spec.cronSpec"];
        args.extend_from_slice(extra);
        let out = k.run(&args).success().stdout;
        assert!(out.contains("The schedule, in cron syntax."), "{out}");
    }
}

fn run(version: &str, v2: bool) {
    let (_, bin) = kubectl_binaries()
        .into_iter()
        .find(|(v, _)| v == version)
        .unwrap_or_else(|| {
            panic!("kubectl {version} is not installed (run scripts/install-tools)")
        });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = rt.block_on(Target::start(Backend::Memory));
    scenario(&Kubectl::new(version, &bin, &target), &target.namespace, v2);
    rt.block_on(target.stop());
}

#[test]
fn kubectl_1_35_explains_a_custom_resource_and_validates_its_fields() {
    run("1.35", true);
}

#[test]
fn kubectl_1_27_explains_a_custom_resource_and_validates_its_fields() {
    run("1.27", true);
}
