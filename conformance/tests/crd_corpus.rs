//! A corpus of CRDs in the shapes operators ship: label and annotation maps with regex rules,
//! rules inside arrays of arrays, every CEL library Kubernetes offers, transition rules, printer
//! columns with escaped keys, several versions whose defaults changed, embedded resources,
//! multi-megabyte and deeply nested schemas. Each is applied by kubectl 1.35 server-side and
//! client-side, becomes Established, is served and explained, accepts a valid object and refuses
//! an invalid one with kube's message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubox_conformance::{with_kubectl, Kubectl};
use serde_json::{json, Value};

const GROUP: &str = "corpus.kubox.dev";

/// One CRD of the corpus.
struct Case {
    /// The plural name; the kind is the same, capitalized, without the final `s`.
    plural: &'static str,
    /// The schema of `spec`.
    spec: Value,
    /// A spec the CRD accepts.
    valid: Value,
    /// A spec it refuses (on create, or on update of the valid object when `update`).
    invalid: Value,
    update: bool,
    /// What the refusal says.
    messages: &'static [&'static str],
    /// Changes to the generated CRD (more versions, columns, scope…).
    tweak: fn(&mut Value),
}

fn kind(plural: &str) -> String {
    let singular = plural.strip_suffix('s').unwrap_or(plural);
    let mut c = singular.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

fn crd(case: &Case) -> Value {
    let mut crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{}.{GROUP}", case.plural)},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": case.plural, "kind": kind(case.plural)},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": case.spec,
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]
        }
    });
    (case.tweak)(&mut crd);
    crd
}

fn object(case: &Case, ns: &str, name: &str, spec: &Value) -> String {
    json!({
        "apiVersion": format!("{GROUP}/v1"),
        "kind": kind(case.plural),
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
    .to_string()
}

fn none(_: &mut Value) {}

fn string(max: i64) -> Value {
    json!({"type": "string", "maxLength": max})
}

fn rule(mut schema: Value, rules: Value) -> Value {
    schema["x-kubernetes-validations"] = rules;
    schema
}

fn obj(props: Value) -> Value {
    json!({"type": "object", "properties": props})
}

/// A long description, for the multi-megabyte schema.
fn description(i: usize) -> String {
    format!("Field {i} of the generated settings block. ").repeat(24)
}

fn big_schema(fields: usize) -> Value {
    let mut props = serde_json::Map::new();
    for i in 0..fields {
        props.insert(
            format!("setting{i:04}"),
            json!({"type": "string", "maxLength": 64, "description": description(i)}),
        );
    }
    rule(
        json!({"type": "object", "properties": props}),
        json!([{"rule": "!has(self.setting0000) || self.setting0000 != 'forbidden'",
                "message": "setting0000 may not be forbidden"}]),
    )
}

fn deep_schema(depth: usize) -> Value {
    let mut s = rule(
        obj(json!({"leaf": string(16)})),
        json!([{"rule": "self.leaf != 'bad'", "message": "the leaf may not be bad"}]),
    );
    for _ in 0..depth {
        s = obj(json!({"next": s}));
    }
    s
}

fn deep_value(depth: usize, leaf: &str) -> Value {
    let mut v = json!({"leaf": leaf});
    for _ in 0..depth {
        v = json!({"next": v});
    }
    v
}

fn cases() -> Vec<Case> {
    let label_map = json!({"type": "object", "additionalProperties": string(63)});
    vec![
        Case {
            plural: "labelselectors",
            spec: obj(json!({"matchLabels": rule(label_map.clone(), json!([{
                "rule": "self.all(k, k.matches('^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$'))",
                "message": "label keys must be qualified names"}]))})),
            valid: json!({"matchLabels": {"app.kubernetes.io/name": "web", "tier": "front"}}),
            invalid: json!({"matchLabels": {"Bad Key!": "x"}}),
            update: false,
            messages: &["spec.matchLabels: Invalid value: label keys must be qualified names"],
            tweak: none,
        },
        Case {
            plural: "annotationsets",
            spec: obj(json!({"annotations": rule(json!({"type": "object",
                "additionalProperties": {"type": "string", "maxLength": 1024}}), json!([{
                "rule": "self.all(k, !k.startsWith('kubernetes.io/') && self[k].size() <= 256)",
                "message": "annotations may not use kubernetes.io/ and values stay under 256 characters"}]))})),
            valid: json!({"annotations": {"example.com/owner": "team-a"}}),
            invalid: json!({"annotations": {"kubernetes.io/owner": "x"}}),
            update: false,
            messages: &["annotations may not use kubernetes.io/"],
            tweak: none,
        },
        Case {
            plural: "routetables",
            spec: obj(json!({"groups": {"type": "array", "maxItems": 16, "items": obj(json!({
                "name": string(63),
                "rules": {"type": "array", "maxItems": 32, "items": obj(json!({
                    "paths": {"type": "array", "maxItems": 16, "items": rule(string(256), json!([{
                        "rule": "self.startsWith('/')", "message": "paths must be absolute"}]))}}))}}))}})),
            valid: json!({"groups": [{"name": "a", "rules": [{"paths": ["/x", "/y"]}]}]}),
            invalid: json!({"groups": [{"name": "a", "rules": [{"paths": ["/x", "relative"]}]}]}),
            update: false,
            messages: &["spec.groups[0].rules[0].paths[1]: Invalid value: \"relative\": paths must be absolute"],
            tweak: none,
        },
        Case {
            plural: "matrices",
            spec: obj(json!({"rows": rule(json!({"type": "array", "maxItems": 32,
                "items": {"type": "array", "maxItems": 32, "items": {"type": "integer"}}}), json!([{
                "rule": "self.all(r, r.size() == self[0].size())", "message": "rows must have the same length"}]))})),
            valid: json!({"rows": [[1, 2], [3, 4]]}),
            invalid: json!({"rows": [[1, 2], [3]]}),
            update: false,
            messages: &["spec.rows: Invalid value: rows must have the same length"],
            tweak: none,
        },
        Case {
            plural: "listeners",
            spec: obj(json!({"ports": rule(json!({"type": "array", "maxItems": 64,
                "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "required": ["name", "port"], "properties": {
                    "name": string(15), "port": {"type": "integer", "minimum": 1, "maximum": 65535}}}}),
                json!([{"rule": "self.all(p, self.exists_one(q, q.port == p.port))",
                        "message": "ports must be unique"}]))})),
            valid: json!({"ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}),
            invalid: json!({"ports": [{"name": "http", "port": 80}, {"name": "alt", "port": 80}]}),
            update: false,
            messages: &["spec.ports: Invalid value: ports must be unique"],
            tweak: none,
        },
        Case {
            plural: "webhookendpoints",
            spec: obj(json!({"url": rule(string(2048), json!([{
                "rule": "isURL(self) && url(self).getScheme() == 'https' && url(self).getHostname() != 'localhost'",
                "message": "url must be https and not localhost"}]))})),
            valid: json!({"url": "https://hooks.example.com/v1"}),
            invalid: json!({"url": "http://localhost:8080/"}),
            update: false,
            messages: &["spec.url: Invalid value: \"http://localhost:8080/\": url must be https and not localhost"],
            tweak: none,
        },
        Case {
            plural: "staticaddresses",
            spec: obj(json!({"address": rule(string(45), json!([{
                "rule": "isIP(self) && ip(self).family() == 4 && !ip(self).isLoopback()",
                "message": "address must be a non-loopback IPv4 address"}]))})),
            valid: json!({"address": "192.0.2.10"}),
            invalid: json!({"address": "127.0.0.1"}),
            update: false,
            messages: &["non-loopback IPv4 address"],
            tweak: none,
        },
        Case {
            plural: "subnets",
            spec: rule(obj(json!({"cidr": string(49), "gateway": string(45)})), json!([{
                "rule": "cidr(self.cidr).containsIP(self.gateway)",
                "message": "the gateway must be inside the subnet"}])),
            valid: json!({"cidr": "10.0.0.0/16", "gateway": "10.0.0.1"}),
            invalid: json!({"cidr": "10.0.0.0/16", "gateway": "10.1.0.1"}),
            update: false,
            messages: &["spec: Invalid value: the gateway must be inside the subnet"],
            tweak: none,
        },
        Case {
            plural: "memorylimits",
            spec: obj(json!({"memory": rule(json!({"x-kubernetes-int-or-string": true, "maxLength": 32}), json!([{
                "rule": "isQuantity(string(self)) && quantity(string(self)).isLessThan(quantity('64Gi'))",
                "message": "memory must be under 64Gi"}]))})),
            valid: json!({"memory": "512Mi"}),
            invalid: json!({"memory": "1Ti"}),
            update: false,
            messages: &["memory must be under 64Gi"],
            tweak: none,
        },
        Case {
            plural: "releases",
            spec: obj(json!({"version": rule(string(64), json!([{
                "rule": "isSemver(self, true) && semver(self, true).major() >= 2",
                "message": "version must be 2.x or later"}]))})),
            valid: json!({"version": "v2.4"}),
            invalid: json!({"version": "1.9.9"}),
            update: false,
            messages: &["version must be 2.x or later"],
            tweak: none,
        },
        Case {
            plural: "hostnames",
            spec: obj(json!({"host": rule(string(253), json!([{
                "rule": "!format.dns1123Subdomain().validate(self).hasValue()",
                "messageExpression": "'host: ' + format.dns1123Subdomain().validate(self).value()[0]"}]))})),
            valid: json!({"host": "api.example.com"}),
            invalid: json!({"host": "API_example"}),
            update: false,
            messages: &["host: a lowercase RFC 1123 subdomain must consist of"],
            tweak: none,
        },
        Case {
            plural: "tierpolicies",
            spec: obj(json!({"tiers": rule(json!({"type": "array", "maxItems": 4, "items": string(16)}), json!([{
                "rule": "sets.contains(['gold', 'silver', 'bronze'], self) && !sets.intersects(self, ['legacy'])",
                "message": "tiers must be gold, silver or bronze"}]))})),
            valid: json!({"tiers": ["gold", "bronze"]}),
            invalid: json!({"tiers": ["platinum"]}),
            update: false,
            messages: &["tiers must be gold, silver or bronze"],
            tweak: none,
        },
        Case {
            plural: "schedules",
            spec: obj(json!({"hours": rule(json!({"type": "array", "maxItems": 24, "items": {"type": "integer"}}), json!([
                {"rule": "self.isSorted()", "message": "hours must be sorted"},
                {"rule": "self.size() == 0 || (self.min() >= 0 && self.max() <= 23)", "message": "hours run from 0 to 23"},
                {"rule": "self.sum() <= 200", "message": "too many hours"}]))})),
            valid: json!({"hours": [1, 5, 9]}),
            invalid: json!({"hours": [9, 5, 30]}),
            update: false,
            messages: &["hours must be sorted", "hours run from 0 to 23"],
            tweak: none,
        },
        Case {
            plural: "orderedlists",
            spec: obj(json!({"items": rule(json!({"type": "array", "maxItems": 16, "items": string(8)}), json!([
                {"rule": "self.sort() == self", "message": "items must be in order"},
                {"rule": "self.distinct().size() == self.size()", "message": "items must be distinct"}]))})),
            valid: json!({"items": ["a", "b", "c"]}),
            invalid: json!({"items": ["b", "a", "a"]}),
            update: false,
            messages: &["items must be in order", "items must be distinct"],
            tweak: none,
        },
        Case {
            plural: "versionstrings",
            spec: obj(json!({"image": rule(string(256), json!([{
                "rule": "self.find('[0-9]+\\\\.[0-9]+') != '' && self.findAll('[0-9]+').size() <= 4",
                "message": "image must carry a version"}]))})),
            valid: json!({"image": "registry.example.com/app:1.25.3"}),
            invalid: json!({"image": "registry.example.com/app:latest"}),
            update: false,
            messages: &["image must carry a version"],
            tweak: none,
        },
        Case {
            plural: "textrules",
            spec: obj(json!({"name": rule(string(64), json!([
                {"rule": "self.lowerAscii() == self", "message": "name must be lower case"},
                {"rule": "self.trim() == self && self.split('-').size() <= 3", "message": "at most three parts"},
                {"rule": "self.replace('-', '').size() > 0 && self.charAt(0) != '-'", "message": "must not start with a dash"},
                {"rule": "self.indexOf('--') == -1 && self.substring(0, 1) != '.'", "message": "no double dashes"}]))})),
            valid: json!({"name": "my-app"}),
            invalid: json!({"name": "My--App"}),
            update: false,
            messages: &["name must be lower case", "no double dashes"],
            tweak: none,
        },
        Case {
            plural: "tlsconfigs",
            spec: rule(obj(json!({"tls": obj(json!({"secretName": string(253), "enabled": {"type": "boolean"}}))})), json!([{
                "rule": "self.?tls.?enabled.orValue(false) == false || self.?tls.?secretName.orValue('') != ''",
                "message": "tls needs a secretName when enabled"}])),
            valid: json!({"tls": {"enabled": true, "secretName": "cert"}}),
            invalid: json!({"tls": {"enabled": true}}),
            update: false,
            messages: &["spec: Invalid value: tls needs a secretName when enabled"],
            tweak: none,
        },
        Case {
            plural: "weightmaps",
            spec: obj(json!({"weights": rule(json!({"type": "object", "maxProperties": 32,
                "additionalProperties": {"type": "integer"}}), json!([
                {"rule": "self.all(k, v, v >= 0 && v <= 100)", "message": "weights run from 0 to 100"},
                {"rule": "self.transformList(k, v, v).sum() == 100", "message": "weights must add up to 100"}]))})),
            valid: json!({"weights": {"a": 40, "b": 60}}),
            invalid: json!({"weights": {"a": 40, "b": 160}}),
            update: false,
            messages: &["weights run from 0 to 100", "weights must add up to 100"],
            tweak: none,
        },
        Case {
            plural: "envmaps",
            spec: obj(json!({"env": rule(json!({"type": "array", "maxItems": 32, "items": {"type": "object",
                "properties": {"name": string(64), "value": string(256)}}}), json!([{
                "rule": "self.transformList(i, e, e.name).distinct().size() == self.size()",
                "message": "environment names must be unique"}]))})),
            valid: json!({"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}),
            invalid: json!({"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}),
            update: false,
            messages: &["environment names must be unique"],
            tweak: none,
        },
        Case {
            plural: "volumeclaims",
            spec: obj(json!({"storageClass": rule(string(63), json!([{
                "rule": "self == oldSelf", "message": "storageClass is immutable"}]))})),
            valid: json!({"storageClass": "fast"}),
            invalid: json!({"storageClass": "slow"}),
            update: true,
            messages: &["spec.storageClass: Invalid value: \"slow\": storageClass is immutable"],
            tweak: none,
        },
        Case {
            plural: "counters",
            spec: obj(json!({"generation": rule(json!({"type": "integer"}), json!([{
                "rule": "!oldSelf.hasValue() || self >= oldSelf.value()", "optionalOldSelf": true,
                "message": "generation may not go backwards"}]))})),
            valid: json!({"generation": 5}),
            invalid: json!({"generation": 4}),
            update: true,
            messages: &["generation may not go backwards"],
            tweak: none,
        },
        Case {
            plural: "scalingbounds",
            spec: rule(obj(json!({"replicas": {"type": "integer"}, "maxReplicas": {"type": "integer"}})), json!([{
                "rule": "self.replicas <= self.maxReplicas",
                "messageExpression": "'replicas (%d) may not exceed maxReplicas (%d)'.format([self.replicas, self.maxReplicas])",
                "fieldPath": ".replicas", "reason": "FieldValueForbidden"}])),
            valid: json!({"replicas": 2, "maxReplicas": 5}),
            invalid: json!({"replicas": 7, "maxReplicas": 5}),
            update: false,
            messages: &["spec.replicas: Forbidden: replicas (7) may not exceed maxReplicas (5)"],
            tweak: none,
        },
        Case {
            plural: "maintenancewindows",
            spec: rule(obj(json!({"start": {"type": "string", "format": "date-time"},
                "end": {"type": "string", "format": "date-time"},
                "timeout": {"type": "string", "format": "duration"}})), json!([
                {"rule": "self.start < self.end", "message": "the window must end after it starts"},
                {"rule": "!has(self.timeout) || self.timeout <= duration('2h')", "message": "timeout is at most 2h"}])),
            valid: json!({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T02:00:00Z", "timeout": "30m"}),
            invalid: json!({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T02:00:00Z", "timeout": "3h"}),
            update: false,
            messages: &["the window must end after it starts", "timeout is at most 2h"],
            tweak: none,
        },
        Case {
            plural: "rollouts",
            spec: obj(json!({"maxUnavailable": rule(json!({"x-kubernetes-int-or-string": true}), json!([{
                "rule": "type(self) == int ? self >= 0 : self.matches('^[0-9]{1,3}%$')",
                "message": "maxUnavailable is a count or a percentage"}]))})),
            valid: json!({"maxUnavailable": "25%"}),
            invalid: json!({"maxUnavailable": "lots"}),
            update: false,
            messages: &["maxUnavailable is a count or a percentage"],
            tweak: none,
        },
        Case {
            plural: "templates",
            spec: obj(json!({"resource": rule(json!({"type": "object",
                "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}), json!([{
                "rule": "self.kind == 'ConfigMap' && self.apiVersion == 'v1'", "message": "only ConfigMaps may be templated"}]))})),
            valid: json!({"resource": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}}),
            invalid: json!({"resource": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}}),
            update: false,
            messages: &["only ConfigMaps may be templated"],
            tweak: none,
        },
        Case {
            plural: "plugins",
            spec: obj(json!({"config": rule(json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                "properties": {"enabled": {"type": "boolean"}}}), json!([{
                "rule": "!has(self.enabled) || self.enabled", "message": "plugins must be enabled"}]))})),
            valid: json!({"config": {"enabled": true, "anything": {"else": 1}}}),
            invalid: json!({"config": {"enabled": false}}),
            update: false,
            messages: &["plugins must be enabled"],
            tweak: none,
        },
        Case {
            plural: "colors",
            spec: obj(json!({"tier": {"type": "string", "enum": ["gold", "silver"], "default": "silver"}})),
            valid: json!({}),
            invalid: json!({"tier": "platinum"}),
            update: false,
            messages: &["spec.tier: Unsupported value: \"platinum\": supported values: \"gold\", \"silver\""],
            tweak: none,
        },
        Case {
            plural: "usernames",
            spec: obj(json!({"login": {"type": "string", "pattern": "^[a-z][a-z0-9]{2,15}$"}})),
            valid: json!({"login": "alice"}),
            invalid: json!({"login": "Alice!"}),
            update: false,
            messages: &["spec.login in body should match '^[a-z][a-z0-9]{2,15}$'"],
            tweak: none,
        },
        Case {
            plural: "scalers",
            spec: obj(json!({"replicas": {"type": "integer", "minimum": 1, "maximum": 100}, "ratio": {"type": "number", "exclusiveMaximum": true, "maximum": 1}})),
            valid: json!({"replicas": 3, "ratio": 0.5}),
            invalid: json!({"replicas": 0, "ratio": 1}),
            update: false,
            messages: &[
                "spec.replicas in body should be greater than or equal to 1",
                "spec.ratio in body should be less than 1",
            ],
            tweak: none,
        },
        Case {
            plural: "accessgrants",
            spec: json!({"type": "object", "required": ["subject"], "properties": {"subject": string(64), "role": string(64)}}),
            valid: json!({"subject": "alice"}),
            invalid: json!({"role": "admin"}),
            update: false,
            messages: &["spec.subject: Required value"],
            tweak: none,
        },
        Case {
            plural: "owners",
            spec: obj(json!({"team": string(64)})),
            valid: json!({"team": "a"}),
            invalid: json!({"team": "b"}),
            update: false,
            messages: &["is invalid: <nil>: Invalid value: names start with app-"],
            tweak: |crd| {
                let root = &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
                root["x-kubernetes-validations"] = json!([{"rule": "self.metadata.name.startsWith('app-') || self.metadata.name == 'ok'",
                    "message": "names start with app-"}]);
            },
        },
        Case {
            plural: "clusterpolicies",
            spec: obj(json!({"level": rule(json!({"type": "integer"}), json!([{"rule": "self <= 3", "message": "level is at most 3"}]))})),
            valid: json!({"level": 2}),
            invalid: json!({"level": 4}),
            update: false,
            messages: &["level is at most 3"],
            tweak: |crd| crd["spec"]["scope"] = json!("Cluster"),
        },
        Case {
            plural: "tagsets",
            spec: obj(json!({"tags": {"type": "array", "maxItems": 8, "x-kubernetes-list-type": "set", "items": string(16)}})),
            valid: json!({"tags": ["a", "b"]}),
            invalid: json!({"tags": ["a", "a"]}),
            update: false,
            messages: &["spec.tags[1]: Duplicate value: \"a\""],
            tweak: none,
        },
        Case {
            plural: "selectors",
            spec: obj(json!({"selector": rule(json!({"type": "object", "x-kubernetes-map-type": "atomic",
                "properties": {"matchLabels": label_map}}), json!([{
                "rule": "has(self.matchLabels) && self.matchLabels.size() > 0", "message": "a selector needs labels"}]))})),
            valid: json!({"selector": {"matchLabels": {"a": "b"}}}),
            invalid: json!({"selector": {}}),
            update: false,
            messages: &["a selector needs labels"],
            tweak: none,
        },
        Case {
            plural: "quotas",
            spec: obj(json!({"limits": {"type": "array", "maxItems": 3, "items": string(16)}, "name": {"type": "string", "maxLength": 5}})),
            valid: json!({"limits": ["a"], "name": "abc"}),
            invalid: json!({"limits": ["a", "b", "c", "d"], "name": "abcdefg"}),
            update: false,
            messages: &["spec.limits: Too many: 4: must have at most 3 items", "spec.name: Too long: may not be"],
            tweak: none,
        },
        Case {
            plural: "dashboards",
            spec: obj(json!({"title": string(64)})),
            valid: json!({"title": "main"}),
            invalid: json!({"title": 5}),
            update: false,
            messages: &["spec.title: Invalid value: \"integer\": spec.title in body must be of type string: \"integer\""],
            tweak: |crd| {
                crd["spec"]["versions"][0]["additionalPrinterColumns"] = json!([
                    {"name": "Title", "type": "string", "jsonPath": ".spec.title"},
                    {"name": "Owner", "type": "string", "jsonPath": ".metadata.annotations.example\\.io/owner"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]);
            },
        },
        Case {
            plural: "databases",
            spec: obj(json!({"replicas": {"type": "integer", "default": 3}, "engine": string(16)})),
            valid: json!({"engine": "pg"}),
            invalid: json!({"engine": "a-very-long-engine-name"}),
            update: false,
            messages: &["spec.engine: Too long: may not be"],
            tweak: |crd| {
                // v1beta1 defaulted replicas to 1; v1 defaults 3. Both served, v1 stored.
                let mut old = crd["spec"]["versions"][0].clone();
                old["name"] = json!("v1beta1");
                old["storage"] = json!(false);
                old["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["replicas"]["default"] = json!(1);
                crd["spec"]["versions"].as_array_mut().unwrap().insert(0, old);
            },
        },
        Case {
            plural: "workers",
            spec: obj(json!({"replicas": {"type": "integer", "minimum": 0}})),
            valid: json!({"replicas": 2}),
            invalid: json!({"replicas": -1}),
            update: false,
            messages: &["spec.replicas in body should be greater than or equal to 0"],
            tweak: |crd| {
                crd["spec"]["versions"][0]["subresources"] = json!({"status": {}, "scale": {
                    "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}});
                crd["spec"]["names"]["shortNames"] = json!(["wk"]);
                crd["spec"]["names"]["categories"] = json!(["corpus"]);
            },
        },
        Case {
            plural: "profiles",
            spec: big_schema(300),
            valid: json!({"setting0000": "fine"}),
            invalid: json!({"setting0000": "forbidden"}),
            update: false,
            messages: &["setting0000 may not be forbidden"],
            tweak: none,
        },
        Case {
            plural: "settingsblocks",
            spec: big_schema(1500),
            valid: json!({"setting0000": "fine"}),
            invalid: json!({"setting0000": "forbidden"}),
            update: false,
            messages: &["setting0000 may not be forbidden"],
            tweak: none,
        },
        Case {
            plural: "nestings",
            spec: deep_schema(30),
            valid: deep_value(30, "good"),
            invalid: deep_value(30, "bad"),
            update: false,
            messages: &["the leaf may not be bad"],
            tweak: none,
        },
    ]
}

/// The corpus's cases `half` (0 or 1) of every two, so the halves run side by side.
fn scenario(k: &Kubectl, ns: &str, half: usize) {
    let all = cases();
    assert!(all.len() >= 40, "{} CRDs", all.len());
    let cases: Vec<Case> = all
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == half)
        .map(|(_, c)| c)
        .collect();
    let has = |plural: &str| cases.iter().any(|c| c.plural == plural);
    k.run(&["create", "namespace", ns]).success();
    for case in &cases {
        let name = format!("{}.{GROUP}", case.plural);
        let crd = crd(case).to_string();
        let big = crd.len() > 262_144;
        if big {
            // Too big for client-side apply, as on a cluster: the last-applied annotation is
            // over its limit, or the request (object and annotation) over 3 MiB.
            let csa = k.run_stdin(&["apply", "-f", "-"], &crd).failure();
            let want = if 2 * crd.len() > 3 * 1024 * 1024 {
                "Request entity too large: limit is 3145728"
            } else {
                "metadata.annotations: Too long: may not be more than 262144 bytes"
            };
            assert!(csa.stderr.contains(want), "{name}: {}", csa.stderr);
            k.run_stdin(&["apply", "--server-side", "-f", "-"], &crd)
                .success();
        } else {
            k.run_stdin(&["apply", "--server-side", "-f", "-"], &crd)
                .success();
            k.run_stdin(&["apply", "-f", "-"], &crd).success();
        }
        k.run(&[
            "wait",
            "--for=condition=Established",
            &format!("crd/{name}"),
            "--timeout=30s",
        ])
        .success();
        let cluster = crd.contains("\"scope\":\"Cluster\"");
        let with_ns = |args: &[&str]| -> Vec<String> {
            let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            if !cluster {
                v.push(format!("--namespace={ns}"));
            }
            v
        };
        let run = |args: &[&str]| {
            let v = with_ns(args);
            let refs: Vec<&str> = v.iter().map(String::as_str).collect();
            k.run(&refs)
        };
        let apply = |spec: &Value, obj_name: &str| {
            let ns = if cluster { "" } else { ns };
            let mut o: Value = serde_json::from_str(&object(case, ns, obj_name, spec)).unwrap();
            if cluster {
                o["metadata"].as_object_mut().unwrap().remove("namespace");
            }
            k.run_stdin(&["apply", "--server-side", "-f", "-"], &o.to_string())
        };
        apply(&case.valid, "ok").success();
        let got = run(&["get", case.plural, "ok", "-o", "json"])
            .success()
            .json();
        assert_eq!(got["kind"], json!(kind(case.plural)), "{name}");
        let explained = k
            .run(&["explain", &format!("{}.spec", case.plural)])
            .success();
        assert!(
            explained.stdout.contains("FIELDS"),
            "{name}: {}",
            explained.stdout
        );
        let bad = apply(&case.invalid, if case.update { "ok" } else { "bad" }).failure();
        for m in case.messages {
            assert!(
                bad.stderr.contains(m),
                "{name}: want {m:?} in:\n{}",
                bad.stderr
            );
        }
    }

    if has("dashboards") {
        escaped_column(k, ns);
    }
    if has("databases") {
        defaults_per_version(k, ns);
    }
}

/// A printer column whose JSONPath escapes a dot in an annotation key.
fn escaped_column(k: &Kubectl, ns: &str) {
    k.run(&[
        "annotate",
        "dashboards",
        "ok",
        "example.io/owner=team-a",
        "--namespace",
        ns,
    ])
    .success();
    let table = k
        .run(&["get", "dashboards", "ok", "--namespace", ns])
        .success()
        .stdout;
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.contains("TITLE") && header.contains("OWNER"),
        "{table}"
    );
    assert!(table.contains("team-a"), "{table}");
}

/// Each version defaults with its own schema: an object written through v1beta1 keeps the
/// replicas v1beta1 defaults; one written through v1 the replicas v1 defaults.
fn defaults_per_version(k: &Kubectl, ns: &str) {
    let old = json!({"apiVersion": format!("{GROUP}/v1beta1"), "kind": "Database",
        "metadata": {"name": "old", "namespace": ns}, "spec": {"engine": "pg"}});
    k.run_stdin(&["apply", "--server-side", "-f", "-"], &old.to_string())
        .success();
    for (obj, replicas) in [("old", 1), ("ok", 3)] {
        let got = k
            .run(&[
                "get",
                &format!("databases.v1.{GROUP}"),
                obj,
                "--namespace",
                ns,
                "-o",
                "json",
            ])
            .success()
            .json();
        assert_eq!(got["spec"]["replicas"], json!(replicas), "{obj}: {got}");
    }
}

#[test]
fn kubectl_1_35_applies_a_corpus_of_operator_shaped_crds_first_half() {
    with_kubectl("1.35", |k, ns| scenario(k, ns, 0));
}

#[test]
fn kubectl_1_35_applies_a_corpus_of_operator_shaped_crds_second_half() {
    with_kubectl("1.35", |k, ns| scenario(k, ns, 1));
}
