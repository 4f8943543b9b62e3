//! Custom resource schemas: what a CustomResourceDefinition version's `openAPIV3Schema` does to
//! the custom resources it serves, and whether the schema itself is acceptable.
//!
//! * [`CustomResourceSchema`] is built once per CRD version registration: the schema parsed,
//!   its CEL rules compiled, the structural schema for pruning. Per object it
//!   [defaults](CustomResourceSchema::default), [prunes](CustomResourceSchema::prune) and
//!   [validates](CustomResourceSchema::validate) with kube-apiserver's field errors.
//! * [`validate_crd_schema`] checks a schema when a CRD is written: kube-apiserver's structural
//!   schema rules, its OpenAPI restrictions (no `$ref`, no `additionalProperties` beside
//!   `properties`, list and map type extensions...), defaults that validate, and CEL rules that
//!   compile within the cost limits.

use kubox_apimachinery::validation::{FieldError, FieldErrorKind};
use serde_json::Value;

use crate::cel::{self, Site};
use crate::schema_node::{Additional, Node};
use crate::{defaults, validate, Structural};

/// The compiled schema of one custom resource version.
pub struct CustomResourceSchema {
    root: Node,
    structural: Structural,
}

impl std::fmt::Debug for CustomResourceSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomResourceSchema")
            .finish_non_exhaustive()
    }
}

fn root_site(path: &str) -> Site {
    Site {
        path: path.to_string(),
        cardinality: Some(1),
        uncorrelatable: None,
        resource: true,
    }
}

impl CustomResourceSchema {
    /// Compile `openAPIV3Schema`. Rules that do not compile are left out (a CRD with such rules
    /// is refused by [`validate_crd_schema`] when it is written).
    pub fn new(schema: &Value) -> CustomResourceSchema {
        let mut root = Node::parse(schema);
        let _ = cel::compile_tree(
            &mut root,
            root_site("openAPIV3Schema"),
            &mut cel::Costs::default(),
        );
        CustomResourceSchema {
            root,
            structural: Structural::for_custom_resource(schema),
        }
    }

    /// Apply defaults (and drop `null`s of non-nullable fields without a default).
    pub fn default(&self, obj: &mut Value) {
        defaults::apply(&self.root, obj);
    }

    /// Does defaulting add the top-level property `name` when an object lacks it?
    pub fn defaults_absent(&self, name: &str) -> bool {
        self.root
            .property(name)
            .is_some_and(|p| p.default.is_some())
    }

    /// Drop unknown fields; returns their paths.
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        crate::prune(&self.structural, obj)
    }

    /// The structural schema (what pruning and strict field validation walk).
    pub fn structural(&self) -> &Structural {
        &self.structural
    }

    /// Validate an object (already defaulted and pruned) against the schema and its CEL rules;
    /// `old` is the object being updated, for transition rules.
    pub fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        self.validate_with_warnings(obj, old).0
    }

    /// The errors of an apply configuration's explicit `null`s (see kube's apply of custom
    /// resources: they are validated, not pruned).
    pub fn applied_null_errors(&self, config: &Value) -> Vec<FieldError> {
        validate::applied_nulls(&self.root, config)
    }

    /// [`validate`](Self::validate), and the rule failures ratcheted into warnings. On an
    /// update (`old`), validation ratchets as kube-apiserver's does (CRDValidationRatcheting):
    /// what fails on a value unchanged from the old object is not an error.
    pub fn validate_with_warnings(
        &self,
        obj: &Value,
        old: Option<&Value>,
    ) -> (Vec<FieldError>, Vec<String>) {
        let errs = match old {
            Some(o) => validate::validate_update(&self.root, obj, o),
            None => validate::validate(&self.root, obj),
        };
        let mut warnings = Vec::new();
        let mut all = errs.schema;
        all.extend(errs.extra);
        if self.root.walk_rules {
            let blocking = all.iter().any(|e| {
                matches!(
                    e.kind,
                    FieldErrorKind::NotSupported | FieldErrorKind::TypeInvalid
                )
            });
            if blocking {
                all.push(FieldError::invalid_rendered(
                    "<nil>",
                    "\"null\"",
                    "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
                ));
            } else {
                let (errs, ratcheted) = cel::validate(&self.root, obj, old);
                all.extend(errs);
                warnings = ratcheted;
            }
        }
        (all, warnings)
    }
}

// ---------------------------------------------------------------------------------------------
// CRD-time validation of the schema
// ---------------------------------------------------------------------------------------------

/// Check a CRD version's `openAPIV3Schema` as kube-apiserver does when the CRD is written;
/// `path` is where it sits (`spec.versions[0].schema.openAPIV3Schema`).
pub fn validate_crd_schema(schema: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !schema.is_object() {
        return errs;
    }
    if schema.get("nullable").and_then(Value::as_bool) == Some(true) {
        errs.push(FieldError::forbidden(
            format!("{path}.nullable"),
            "nullable cannot be true at the root",
        ));
    }
    let mut structural = Vec::new();
    invariants(schema, Level::Root, path, &mut structural);
    completeness(schema, schema, path, path, &mut structural);
    structural.sort_by_key(|e| e.to_string());
    let structural_ok = structural.is_empty();
    errs.extend(structural);
    if structural_ok {
        let root = Node::parse(schema);
        validate_defaults(schema, &root, path, true, &mut errs);
    }
    let mut openapi = Vec::new();
    openapi_schema(schema, path, Ssv::root(), true, &mut openapi);
    let openapi_ok = openapi.is_empty();
    errs.extend(openapi);
    if errs.is_empty() && openapi_ok {
        let mut root = Node::parse(schema);
        let mut costs = cel::Costs::default();
        errs.extend(cel::compile_tree(&mut root, root_site(path), &mut costs));
        if costs.total > cel::CRD_COST_LIMIT {
            for (rule, _) in &costs.most_expensive {
                errs.push(FieldError::forbidden(
                    rule.as_str(),
                    "contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema",
                ));
            }
            errs.push(FieldError::forbidden(
                path,
                cel::cost_error_message(
                    "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema",
                    costs.total,
                    cel::CRD_COST_LIMIT,
                ),
            ));
        }
    }
    errs
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn flag(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool) == Some(true)
}

fn props(v: &Value) -> Option<&serde_json::Map<String, Value>> {
    v.get("properties").and_then(Value::as_object)
}

fn is_int_or_string_pattern(any_of: Option<&Value>) -> bool {
    let Some(Value::Array(a)) = any_of else {
        return false;
    };
    let only_type = |x: &Value, t: &str| {
        x.as_object()
            .is_some_and(|m| m.len() == 1 && m.get("type").and_then(Value::as_str) == Some(t))
    };
    a.len() == 2 && only_type(&a[0], "integer") && only_type(&a[1], "string")
}

/// kube's `validateStructuralInvariants`.
fn invariants(v: &Value, lvl: Level, path: &str, errs: &mut Vec<FieldError>) {
    let ty = s(v, "type");
    if ty == "array" && v.get("items").is_none() {
        errs.push(FieldError::required(
            format!("{path}.items"),
            "must be specified",
        ));
    }
    if let Some(items @ Value::Object(_)) = v.get("items") {
        invariants(items, Level::Item, &format!("{path}.items"), errs);
    }
    if let Some(p) = props(v) {
        for (k, sub) in p {
            invariants(sub, Level::Field, &format!("{path}.properties[{k}]"), errs);
        }
    }
    if let Some(ap) = v.get("additionalProperties") {
        if lvl == Level::Root {
            errs.push(FieldError::forbidden(
                format!("{path}.additionalProperties"),
                "must not be used at the root",
            ));
        }
        if ap.is_object() {
            invariants(
                ap,
                Level::Field,
                &format!("{path}.additionalProperties"),
                errs,
            );
        }
    }
    let int_or_string = flag(v, "x-kubernetes-int-or-string");
    let preserve = flag(v, "x-kubernetes-preserve-unknown-fields");
    let embedded = flag(v, "x-kubernetes-embedded-resource");
    if int_or_string && preserve {
        errs.push(FieldError::invalid_rendered(
            format!("{path}.x-kubernetes-preserve-unknown-fields"),
            "true",
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if int_or_string && embedded {
        errs.push(FieldError::invalid_rendered(
            format!("{path}.x-kubernetes-embedded-resource"),
            "true",
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    let skip_any_of = is_int_or_string_pattern(v.get("anyOf"));
    let skip_first_all_of_any_of = v
        .get("allOf")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .is_some_and(|f| is_int_or_string_pattern(f.get("anyOf")));
    value_validation(v, skip_any_of, skip_first_all_of_any_of, lvl, path, errs);
    let check_metadata = lvl == Level::Root || embedded;
    if embedded && ty != "object" {
        if ty.is_empty() {
            errs.push(FieldError::required(
                format!("{path}.type"),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        } else {
            errs.push(FieldError::invalid(
                format!("{path}.type"),
                ty,
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        }
    } else if ty.is_empty() && !int_or_string && !preserve {
        let detail = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errs.push(FieldError::required(format!("{path}.type"), detail));
    }
    if embedded && v.get("additionalProperties").is_some() {
        errs.push(FieldError::forbidden(
            format!("{path}.additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !ty.is_empty() && ty != "object" {
        errs.push(FieldError::invalid(
            format!("{path}.type"),
            ty,
            "must be object at the root",
        ));
    }
    if let Some(p) = props(v).filter(|_| check_metadata) {
        for (k, want) in [
            ("kind", "string"),
            ("apiVersion", "string"),
            ("metadata", "object"),
        ] {
            if let Some(sub) = p.get(k) {
                let t = s(sub, "type");
                if t != want {
                    errs.push(FieldError::invalid(
                        format!("{path}.properties[{k}].type"),
                        t,
                        format!("must be {want}"),
                    ));
                }
            }
        }
    }
    if let Some(meta) = props(v)
        .filter(|_| lvl == Level::Root)
        .and_then(|p| p.get("metadata"))
    {
        let ok = meta.as_object().is_some_and(|m| {
            m.iter().all(|(k, x)| match k.as_str() {
                "type" | "default" => true,
                "properties" => x.as_object().is_some_and(|p| {
                    !p.is_empty()
                        && p.len() <= 2
                        && p.keys().all(|n| n == "name" || n == "generateName")
                }),
                _ => false,
            })
        });
        if !ok {
            errs.push(FieldError::forbidden(
                format!("{path}.properties[metadata]"),
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
    }
    if embedded && !preserve && props(v).is_none_or(|p| p.is_empty()) {
        errs.push(FieldError::required(
            format!("{path}.properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

/// kube's `validateValueValidation`: the logical junctors and the pattern.
fn value_validation(
    v: &Value,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    lvl: Level,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let list = |k: &str| {
        v.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    if !skip_any_of {
        for (i, x) in list("anyOf").iter().enumerate() {
            nested(x, false, lvl, &format!("{path}.anyOf[{i}]"), errs);
        }
    }
    for (i, x) in list("allOf").iter().enumerate() {
        nested(
            x,
            skip_first_all_of_any_of && i == 0,
            lvl,
            &format!("{path}.allOf[{i}]"),
            errs,
        );
    }
    for (i, x) in list("oneOf").iter().enumerate() {
        nested(x, false, lvl, &format!("{path}.oneOf[{i}]"), errs);
    }
    if let Some(not) = v.get("not") {
        nested(not, false, lvl, &format!("{path}.not"), errs);
    }
    if let Some(p) = v.get("pattern").and_then(Value::as_str) {
        if let Err(e) = regex::Regex::new(p) {
            let msg = e.to_string();
            let last = msg
                .lines()
                .last()
                .unwrap_or_default()
                .trim_start_matches("error: ");
            errs.push(FieldError::invalid(
                format!("{path}.pattern"),
                p,
                format!("must be a valid regular expression, but isn't: error parsing regexp: {last}: `{p}`"),
            ));
        }
    }
}

/// kube's `validateNestedValueValidation`: inside allOf/anyOf/oneOf/not only value validations.
fn nested(v: &Value, skip_any_of: bool, lvl: Level, path: &str, errs: &mut Vec<FieldError>) {
    value_validation(v, skip_any_of, false, lvl, path, errs);
    if let Some(items) = v.get("items").filter(|i| i.is_object()) {
        nested(items, false, lvl, &format!("{path}.items"), errs);
    }
    if let Some(p) = props(v) {
        for (k, x) in p {
            nested(
                x,
                false,
                Level::Field,
                &format!("{path}.properties[{k}]"),
                errs,
            );
        }
    }
    let forbid = |errs: &mut Vec<FieldError>, k: &str, d: &str| {
        errs.push(FieldError::forbidden(format!("{path}.{k}"), d));
    };
    if !s(v, "type").is_empty() {
        forbid(errs, "type", "must be empty to be structural");
    }
    if v.get("additionalProperties").is_some() {
        forbid(
            errs,
            "additionalProperties",
            "must be undefined to be structural",
        );
    }
    if v.get("default").is_some() {
        forbid(errs, "default", "must be undefined to be structural");
    }
    if !s(v, "title").is_empty() {
        forbid(errs, "title", "must be empty to be structural");
    }
    if !s(v, "description").is_empty() {
        forbid(errs, "description", "must be empty to be structural");
    }
    if flag(v, "nullable") {
        forbid(errs, "nullable", "must be false to be structural");
    }
    for k in [
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-int-or-string",
    ] {
        if flag(v, k) {
            forbid(errs, k, "must be false to be structural");
        }
    }
    if v.get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        forbid(
            errs,
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        );
    }
    if v.get("x-kubernetes-list-type").is_some() {
        forbid(
            errs,
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        );
    }
    if props(v).is_some_and(|p| p.contains_key("metadata")) {
        forbid(
            errs,
            "properties[metadata]",
            "must not be specified in a nested context",
        );
    }
}

/// kube's `validateStructuralCompleteness`: fields named inside logical junctors must also be
/// specified outside them.
fn completeness(s_: &Value, v: &Value, s_path: &str, v_path: &str, errs: &mut Vec<FieldError>) {
    for key in ["not", "allOf", "anyOf", "oneOf"] {
        let subs: Vec<(String, &Value)> = match v.get(key) {
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, x)| (format!("{v_path}.{key}[{i}]"), x))
                .collect(),
            Some(x @ Value::Object(_)) => vec![(format!("{v_path}.{key}"), x)],
            _ => continue,
        };
        for (vp, sub) in subs {
            nested_completeness(s_, sub, s_path, &vp, errs);
        }
    }
}

fn nested_completeness(
    s_: &Value,
    v: &Value,
    s_path: &str,
    v_path: &str,
    errs: &mut Vec<FieldError>,
) {
    completeness(s_, v, s_path, v_path, errs);
    if let Some(items) = v.get("items").filter(|i| i.is_object()) {
        match s_.get("items").filter(|i| i.is_object()) {
            Some(si) => nested_completeness(
                si,
                items,
                &format!("{s_path}.items"),
                &format!("{v_path}.items"),
                errs,
            ),
            None => errs.push(FieldError::required(
                format!("{s_path}.items"),
                format!("because it is defined in {v_path}.items"),
            )),
        }
    }
    if let Some(p) = props(v) {
        for (k, x) in p {
            match props(s_).and_then(|sp| sp.get(k)) {
                Some(sf) => nested_completeness(
                    sf,
                    x,
                    &format!("{s_path}.properties[{k}]"),
                    &format!("{v_path}.properties[{k}]"),
                    errs,
                ),
                None => errs.push(FieldError::required(
                    format!("{s_path}.properties[{k}]"),
                    format!("because it is defined in {v_path}.properties[{k}]"),
                )),
            }
        }
    }
}

/// kube's `ValidateDefaults`: every default validates against its schema and has no unknown
/// fields.
fn validate_defaults(v: &Value, n: &Node, path: &str, root: bool, errs: &mut Vec<FieldError>) {
    if let Some(d) = &n.default {
        let dpath = format!("{path}.default");
        let e = validate::validate(n, d);
        for mut fe in e.schema {
            fe.field = if fe.field == "<nil>" {
                dpath.clone()
            } else {
                format!("{dpath}.{}", fe.field)
            };
            if let Some(rest) = fe.message.strip_prefix(" in body") {
                fe.message = format!("in body{rest}");
            }
            errs.push(fe);
        }
        if has_unknown_fields(n, d) {
            errs.push(FieldError::invalid_rendered(
                dpath,
                crate::schema_node::go_value(d),
                "must not have unknown fields",
            ));
        }
    }
    if let Some(p) = props(v) {
        for (k, sub) in p {
            if root && matches!(k.as_str(), "metadata" | "apiVersion" | "kind") {
                continue;
            }
            if let Some(pn) = n.property(k) {
                validate_defaults(sub, pn, &format!("{path}.properties[{k}]"), false, errs);
            }
        }
    }
    if let (Some(items), Some(inode)) = (v.get("items"), n.items.as_deref()) {
        validate_defaults(items, inode, &format!("{path}.items"), false, errs);
    }
    if let (Some(ap), Some(anode)) = (v.get("additionalProperties"), n.additional_schema()) {
        validate_defaults(
            ap,
            anode,
            &format!("{path}.additionalProperties"),
            false,
            errs,
        );
    }
}

fn has_unknown_fields(n: &Node, v: &Value) -> bool {
    if n.preserve_unknown && n.properties.is_empty() && n.additional_schema().is_none() {
        return false;
    }
    match v {
        Value::Object(m) => m.iter().any(|(k, x)| match n.property(k) {
            Some(p) => has_unknown_fields(p, x),
            None => match &n.additional {
                Additional::Schema(a) => has_unknown_fields(a, x),
                Additional::Bool(true) => false,
                _ => {
                    !(n.preserve_unknown
                        || (n.embedded && matches!(k.as_str(), "apiVersion" | "kind" | "metadata")))
                }
            },
        }),
        Value::Array(items) => n
            .items
            .as_deref()
            .is_some_and(|i| items.iter().any(|x| has_unknown_fields(i, x))),
        _ => false,
    }
}

/// The state kube's `specStandardValidator` carries down.
#[derive(Clone)]
struct Ssv {
    forbid_defaults: Option<String>,
    inside_meta: bool,
}

impl Ssv {
    fn root() -> Ssv {
        Ssv {
            forbid_defaults: None,
            inside_meta: false,
        }
    }
}

/// kube's `ValidateCustomResourceDefinitionOpenAPISchema` (the schema part; CEL rules are
/// compiled separately).
fn openapi_schema(v: &Value, path: &str, ssv: Ssv, is_root: bool, errs: &mut Vec<FieldError>) {
    let Some(obj) = v.as_object() else {
        return;
    };
    let ty = s(v, "type");
    const TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];
    if !ty.is_empty() && !TYPES.contains(&ty) {
        errs.push(FieldError::not_supported(
            format!("{path}.type"),
            ty,
            &TYPES,
        ));
    }
    if obj.contains_key("default") {
        if let Some(reason) = &ssv.forbid_defaults {
            errs.push(FieldError::forbidden(
                format!("{path}.default"),
                format!("must not be set {reason}"),
            ));
        }
    }
    for (k, d) in [
        ("id", "id is not supported"),
        ("additionalItems", "additionalItems is not supported"),
        ("patternProperties", "patternProperties is not supported"),
        ("definitions", "definitions is not supported"),
        ("dependencies", "dependencies is not supported"),
        ("$ref", "$ref is not supported"),
    ] {
        if obj.contains_key(k) {
            errs.push(FieldError::forbidden(format!("{path}.{k}"), d));
        }
    }
    if ty == "null" {
        errs.push(FieldError::forbidden(
            format!("{path}.type"),
            "type cannot be set to null, use nullable as an alternative",
        ));
    }
    if v.get("items").is_some_and(Value::is_array) {
        errs.push(FieldError::forbidden(
            format!("{path}.items"),
            "items must be a schema object and not an array",
        ));
    }
    if ssv.inside_meta && flag(v, "x-kubernetes-embedded-resource") {
        errs.push(FieldError::forbidden(
            format!("{path}.x-kubernetes-embedded-resource"),
            "must not be used inside of resource meta",
        ));
    }
    if flag(v, "uniqueItems") {
        errs.push(FieldError::forbidden(
            format!("{path}.uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    let has_props = props(v).is_some_and(|p| !p.is_empty());
    if let Some(ap) = v.get("additionalProperties") {
        if has_props && (ap == &Value::Bool(false) || ap.is_object()) {
            errs.push(FieldError::forbidden(
                format!("{path}.additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        let mut sub = ssv.clone();
        if ssv.inside_meta {
            sub.forbid_defaults =
                Some("inside additionalProperties applying to object metadata".into());
        }
        openapi_schema(
            ap,
            &format!("{path}.additionalProperties"),
            sub,
            false,
            errs,
        );
    }
    if let Some(p) = props(v) {
        let embedded = flag(v, "x-kubernetes-embedded-resource");
        for (k, sub) in p {
            let mut ssv2 = ssv.clone();
            if (is_root || embedded) && matches!(k.as_str(), "metadata" | "apiVersion" | "kind") {
                ssv2.inside_meta = true;
                if is_root {
                    ssv2.forbid_defaults = Some(format!("in top-level {k}"));
                }
            }
            openapi_schema(sub, &format!("{path}.properties[{k}]"), ssv2, false, errs);
        }
    }
    if let Some(not) = v.get("not") {
        openapi_schema(not, &format!("{path}.not"), ssv.clone(), false, errs);
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(a) = v.get(key).and_then(Value::as_array) {
            for (i, x) in a.iter().enumerate() {
                openapi_schema(x, &format!("{path}.{key}[{i}]"), ssv.clone(), false, errs);
            }
        }
    }
    if let Some(items) = v.get("items").filter(|i| i.is_object()) {
        openapi_schema(items, &format!("{path}.items"), ssv.clone(), false, errs);
    }
    if v.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
        errs.push(FieldError::invalid_rendered(
            format!("{path}.x-kubernetes-preserve-unknown-fields"),
            "false",
            "must be true or undefined",
        ));
    }
    let map_type = v.get("x-kubernetes-map-type").and_then(Value::as_str);
    if map_type.is_some() && ty != "object" {
        type_required(
            path,
            ty,
            "must be object if x-kubernetes-map-type is specified",
            errs,
        );
    }
    if let Some(mt) = map_type.filter(|m| *m != "atomic" && *m != "granular") {
        errs.push(FieldError::not_supported(
            format!("{path}.x-kubernetes-map-type"),
            mt,
            &["atomic", "granular"],
        ));
    }
    let list_type = v.get("x-kubernetes-list-type").and_then(Value::as_str);
    if list_type.is_some() && ty != "array" {
        type_required(
            path,
            ty,
            "must be array if x-kubernetes-list-type is specified",
            errs,
        );
    } else if list_type == Some("set") {
        if let Some(items) = v.get("items").filter(|i| i.is_object()) {
            match s(items, "type") {
                "array" => {
                    if let Some(lt) = items.get("x-kubernetes-list-type").and_then(Value::as_str) {
                        if lt != "atomic" {
                            errs.push(FieldError::invalid(
                                format!("{path}.items.x-kubernetes-list-type"),
                                lt,
                                "must be atomic as item of a list with x-kubernetes-list-type=set",
                            ));
                        }
                    }
                }
                "object"
                    if items.get("x-kubernetes-map-type").and_then(Value::as_str)
                        != Some("atomic") =>
                {
                    errs.push(FieldError::invalid_rendered(
                        format!("{path}.items.x-kubernetes-map-type"),
                        "\"set\"",
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    ));
                }
                _ => {}
            }
        }
    }
    if let Some(lt) = list_type.filter(|l| !matches!(*l, "atomic" | "set" | "map")) {
        errs.push(FieldError::not_supported(
            format!("{path}.x-kubernetes-list-type"),
            lt,
            &["atomic", "set", "map"],
        ));
    }
    let keys: Vec<&str> = v
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let keys_rendered = kubox_apimachinery::validation::go_string_slice(Some(
        &keys.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
    ));
    if !keys.is_empty() {
        match list_type {
            None => errs.push(FieldError::required(
                format!("{path}.x-kubernetes-list-type"),
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
            Some(lt) if lt != "map" => errs.push(FieldError::invalid(
                format!("{path}.x-kubernetes-list-type"),
                lt,
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
            _ => {}
        }
    }
    if list_type == Some("map") {
        if keys.is_empty() {
            errs.push(FieldError::required(
                format!("{path}.x-kubernetes-list-map-keys"),
                "must not be empty if x-kubernetes-list-type is map",
            ));
        }
        match v.get("items") {
            None => errs.push(FieldError::required(
                format!("{path}.items"),
                "must have a schema if x-kubernetes-list-type is map",
            )),
            Some(items) if items.is_object() => {
                let it = s(items, "type");
                if it != "object" {
                    errs.push(FieldError::invalid(
                        format!("{path}.items.type"),
                        it,
                        "must be object if parent array's x-kubernetes-list-type is map",
                    ));
                } else {
                    let mut seen = std::collections::BTreeSet::new();
                    for k in &keys {
                        match props(items).and_then(|p| p.get(*k)) {
                            Some(ks) => {
                                if matches!(s(ks, "type"), "array" | "object") {
                                    errs.push(FieldError::invalid(
                                        format!("{path}.items.properties[{k}].type"),
                                        it,
                                        "must be a scalar type if parent array's x-kubernetes-list-type is map",
                                    ));
                                }
                            }
                            None => errs.push(FieldError::invalid_rendered(
                                format!("{path}.x-kubernetes-list-map-keys"),
                                keys_rendered.clone(),
                                "entries must all be names of item properties",
                            )),
                        }
                        if !seen.insert(*k) {
                            errs.push(FieldError::invalid_rendered(
                                format!("{path}.x-kubernetes-list-map-keys"),
                                keys_rendered.clone(),
                                "must not contain duplicate entries",
                            ));
                        }
                    }
                }
            }
            Some(_) => {}
        }
    }
    // validateMapListKeysMapSet
    if let (Some(lt @ ("set" | "map")), Some(items)) =
        (list_type, v.get("items").filter(|i| i.is_object()))
    {
        if flag(items, "nullable") {
            errs.push(FieldError::forbidden(
                format!("{path}.items.nullable"),
                format!("cannot be nullable when x-kubernetes-list-type is {lt}"),
            ));
        }
        if lt == "map" {
            let required: Vec<&str> = items
                .get("required")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for k in &keys {
                let Some(ks) = props(items).and_then(|p| p.get(*k)) else {
                    continue;
                };
                if !required.contains(k) && ks.get("default").is_none() {
                    errs.push(FieldError::required(
                        format!("{path}.items.properties[{k}].default"),
                        "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                    ));
                }
                if flag(ks, "nullable") {
                    errs.push(FieldError::forbidden(
                        format!("{path}.items.properties[{k}].nullable"),
                        "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                    ));
                }
            }
        }
    }
}

fn type_required(path: &str, ty: &str, detail: &str, errs: &mut Vec<FieldError>) {
    if ty.is_empty() {
        errs.push(FieldError::required(format!("{path}.type"), detail));
    } else {
        errs.push(FieldError::invalid(format!("{path}.type"), ty, detail));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const P: &str = "spec.versions[0].schema.openAPIV3Schema";

    fn errs(schema: Value) -> Vec<String> {
        validate_crd_schema(&schema, P)
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn structural_rules() {
        assert!(errs(json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                           "raw": {"x-kubernetes-preserve-unknown-fields": true}}}}})).is_empty());
        assert_eq!(
            errs(json!({"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}})),
            vec![format!("{P}.properties[spec].type: Required value: must not be empty for specified object fields")]
        );
        assert_eq!(
            errs(json!({"type": "object", "properties": {"spec": {"type": "object",
                "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}}}})),
            vec![format!("{P}.properties[spec].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive")]
        );
        assert_eq!(
            errs(json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}})),
            vec![format!("{P}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified")]
        );
        assert!(errs(json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}}}}})).is_empty());
        assert_eq!(
            errs(
                json!({"type": "object", "properties": {"a": {"type": "string", "anyOf": [{"type": "string"}]}}})
            ),
            vec![format!(
                "{P}.properties[a].anyOf[0].type: Forbidden: must be empty to be structural"
            )]
        );
        assert_eq!(
            errs(json!({"type": "object", "properties": {"a": {"$ref": "#/definitions/x"}}})),
            vec![
                format!("{P}.properties[a].type: Required value: must not be empty for specified object fields"),
                format!("{P}.properties[a].$ref: Forbidden: $ref is not supported"),
            ]
        );
        assert_eq!(
            errs(json!({"type": "object", "properties": {"l": {"type": "array", "x-kubernetes-list-type": "map",
                "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}})),
            vec![format!("{P}.properties[l].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map")]
        );
    }

    #[test]
    fn defaults_must_validate() {
        assert_eq!(
            errs(
                json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
                "replicas": {"type": "integer", "default": "one"}}}}})
            ),
            vec![format!(
                r#"{P}.properties[spec].properties[replicas].default: Invalid value: "string": in body must be of type integer: "string""#
            )]
        );
        assert_eq!(
            errs(json!({"type": "object", "properties": {"metadata": {"type": "object", "default": {}}}})),
            vec![format!("{P}.properties[metadata].default: Forbidden: must not be set in top-level metadata")]
        );
    }

    #[test]
    fn cel_rules_compile_or_refuse() {
        assert!(errs(
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.a > 0"}],
            "properties": {"a": {"type": "integer"}}}}})
        )
        .is_empty());
        let e = errs(
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.a >"}],
            "properties": {"a": {"type": "integer"}}}}}),
        );
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with(&format!("{P}.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{{Rule:\"self.a >\"")), "{}", e[0]);
        assert!(
            e[0].contains(": compilation failed: ERROR: <input>:"),
            "{}",
            e[0]
        );
    }

    /// The estimated costs are kube's, rule by rule and for the whole schema, with kube's errors.
    #[test]
    fn cel_costs_are_estimated_and_limited_as_kube_does() {
        let limit = "(try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)";
        // Concatenating a string of unknown size (kubernetes/kubernetes#124234).
        let e = errs(
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"config": {"type": "object",
                "x-kubernetes-validations": [{"rule": "self.attempts >= 0",
                    "messageExpression": "'invalid attempts: ' + string(self.attempts)"}],
                "properties": {"attempts": {"type": "integer"}}}}}}}),
        );
        let message = format!(
            "{P}.properties[spec].properties[config].x-kubernetes-validations[0].messageExpression"
        );
        assert_eq!(
            e,
            vec![
                format!("{message}: Forbidden: estimated messageExpression cost exceeds budget by factor of more than 100x {limit}"),
                format!("{message}: Forbidden: contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema"),
                format!("{P}: Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds budget by factor of more than 100x {limit}"),
            ]
        );
        // The same message with `format` is cheap.
        assert!(errs(
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.attempts >= 0",
                "messageExpression": "'invalid attempts: %d'.format([self.attempts])"}],
            "properties": {"attempts": {"type": "integer"}}}}})
        )
        .is_empty());

        // A rule on the items of a list inside a list runs (outer maxItems × inner maxItems)
        // times; with the inner list unbounded, as often as 3 MiB of minimal items allow.
        let nested = |inner_max: Option<i64>| {
            let mut ports = json!({"type": "array", "items": {"type": "string", "maxLength": 10,
                "x-kubernetes-validations": [{"rule": "self.matches('^[a-z]+$')"}]}});
            if let Some(m) = inner_max {
                ports["maxItems"] = json!(m);
            }
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
                "groups": {"type": "array", "maxItems": 100, "items": {"type": "object",
                    "properties": {"ports": ports}}}}}}})
        };
        // (⌈(40 + 1) × 0.1⌉ = 5) × (⌈8 × 0.25⌉ = 2) + 1 = 11 per run.
        assert!(errs(nested(Some(100))).is_empty());
        let e = errs(nested(None));
        assert_eq!(
            e,
            vec![format!("{P}.properties[spec].properties[groups].items.properties[ports].items.x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget by factor of 1.153434x {limit}")],
            "11 × 3145728 / 3 = 11534336"
        );

        // The whole schema's total: each rule under the per-rule limit, together over 100M; the
        // four costliest are named.
        let mut props = serde_json::Map::new();
        let mut total = 0u64;
        for i in 0..240 {
            props.insert(
                format!("s{i:03}"),
                json!({"type": "string",
                "x-kubernetes-validations": [{"rule": "self.matches('abcd')"}]}),
            );
            total += 314_573 + 1;
        }
        for (name, f) in [
            ("big20", 20u64),
            ("big21", 21),
            ("big22", 22),
            ("big23", 23),
        ] {
            let regex = "a".repeat(f as usize * 4);
            props.insert(
                name.to_string(),
                json!({"type": "string",
                "x-kubernetes-validations": [{"rule": format!("self.matches('{regex}')")}]}),
            );
            total += 314_573 * f + 1;
        }
        let e = errs(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": props}}}),
        );
        let rule = |p: &str| {
            format!("{P}.properties[spec].properties[{p}].x-kubernetes-validations[0].rule: Forbidden: contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema")
        };
        assert_eq!(
            e,
            vec![
                rule("big23"),
                rule("big22"),
                rule("big21"),
                rule("big20"),
                format!("{P}: Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds budget by factor of {:.6}x {limit}", total as f64 / 1e8),
            ]
        );
    }

    /// What cel-go's checker refuses in kube's environment for CRD rules.
    #[test]
    fn cel_rules_are_type_checked_as_kube_checks_them() {
        let one = |schema: Value| {
            let e = errs(schema);
            assert_eq!(e.len(), 1, "{e:?}");
            e.into_iter().next().unwrap()
        };
        // Fields that a preserve-unknown-fields object does not declare are not visible.
        let e = one(
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "x-kubernetes-validations": [{"rule": "self.foo == 'x'"}]}}}),
        );
        assert!(
            e.contains("compilation failed: ERROR: <input>:1:5: undefined field 'foo'"),
            "{e}"
        );
        // A rule must be a bool, a message expression a string.
        let e = one(
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.a"}],
            "properties": {"a": {"type": "integer"}}}}}),
        );
        assert!(
            e.ends_with(": cel expression must evaluate to a bool"),
            "{e}"
        );
        let e = one(
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.a > 0", "messageExpression": "self.a"}],
            "properties": {"a": {"type": "integer"}}}}}),
        );
        assert!(e.contains(".messageExpression: Invalid value: "), "{e}");
        assert!(
            e.ends_with(": messageExpression must evaluate to a string"),
            "{e}"
        );
        // optionalOldSelf needs a rule that uses oldSelf.
        let e = one(
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.a > 0", "optionalOldSelf": true}],
            "properties": {"a": {"type": "integer"}}}}}),
        );
        assert_eq!(e, format!("{P}.properties[spec].x-kubernetes-validations[0].optionalOldSelf: Invalid value: true: may not be set if oldSelf is not used in rule"));
        // kube's environment has no math extension.
        let e = one(
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "math.greatest(self.a, 1) == 1"}],
            "properties": {"a": {"type": "integer"}}}}}),
        );
        assert!(e.contains("undeclared reference to 'math.greatest'"), "{e}");
        // Nor cel.bind, nor the strings extension's reverse (version 3); lists' reverse is there.
        let e = one(
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "cel.bind(x, self.a, x > 0)"}],
            "properties": {"a": {"type": "integer"}}}}}),
        );
        assert!(e.contains("undeclared reference to 'cel.bind'"), "{e}");
        let e = one(
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.s.reverse() == 'x'"}],
            "properties": {"s": {"type": "string", "maxLength": 8}}}}}),
        );
        assert!(
            e.contains("found no matching overload for 'reverse'"),
            "{e}"
        );
        assert!(errs(
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.l.reverse() == [1]"}],
            "properties": {"l": {"type": "array", "maxItems": 4, "items": {"type": "integer"}}}}}})
        )
        .is_empty());
    }

    #[test]
    fn schema_ops_end_to_end() {
        let s = CustomResourceSchema::new(
            &json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.replicas <= 10", "message": "at most 10"}],
            "properties": {"replicas": {"type": "integer", "default": 1}, "color": {"type": "string", "enum": ["red"]}}}}}),
        );
        let mut obj = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"}, "spec": {"bogus": 1}});
        s.default(&mut obj);
        assert_eq!(s.prune(&mut obj), vec!["spec.bogus"]);
        assert_eq!(obj["spec"], json!({"replicas": 1}));
        assert!(s.validate(&obj, None).is_empty());
        obj["spec"]["replicas"] = json!(11);
        let e: Vec<String> = s
            .validate(&obj, None)
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(e, vec!["spec: Invalid value: at most 10"]);
        obj["spec"]["color"] = json!("blue");
        let e: Vec<String> = s
            .validate(&obj, None)
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            e,
            vec![
                r#"spec.color: Unsupported value: "blue": supported values: "red""#,
                r#"<nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"#,
            ]
        );
    }

    fn data_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data")
    }

    fn data_crds() -> Vec<Value> {
        let mut files: Vec<_> = std::fs::read_dir(data_dir().join("crds"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_yaml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    fn samples() -> Vec<Value> {
        use serde::Deserialize;
        let text = std::fs::read_to_string(data_dir().join("cr-samples.yaml")).unwrap();
        serde_yaml::Deserializer::from_str(&text)
            .map(|d| Value::deserialize(d).unwrap())
            .collect()
    }

    fn schema_for(crds: &[Value], obj: &Value) -> CustomResourceSchema {
        let (group, version) = obj["apiVersion"].as_str().unwrap().split_once('/').unwrap();
        let crd = crds
            .iter()
            .find(|c| c["spec"]["group"] == group && c["spec"]["names"]["kind"] == obj["kind"])
            .unwrap();
        let v = crd["spec"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == version)
            .unwrap();
        CustomResourceSchema::new(&v["schema"]["openAPIV3Schema"])
    }

    #[test]
    fn large_crds_are_valid_and_accept_their_samples() {
        let crds = data_crds();
        assert!(crds.len() >= 3);
        for crd in &crds {
            for (i, v) in crd["spec"]["versions"]
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
            {
                let path = format!("spec.versions[{i}].schema.openAPIV3Schema");
                let e = validate_crd_schema(&v["schema"]["openAPIV3Schema"], &path);
                assert!(e.is_empty(), "{}: {e:#?}", crd["metadata"]["name"]);
            }
        }
        for sample in samples() {
            let s = schema_for(&crds, &sample);
            let mut obj = sample.clone();
            s.default(&mut obj);
            assert_eq!(
                s.prune(&mut obj),
                Vec::<String>::new(),
                "{}",
                sample["kind"]
            );
            let e = s.validate(&obj, None);
            assert!(e.is_empty(), "{}: {e:#?}", sample["kind"]);
            // Updating to the same object passes the transition rules too.
            assert!(s.validate(&obj, Some(&obj)).is_empty());
        }
    }

    #[test]
    fn large_crds_refuse_bad_objects() {
        let crds = data_crds();
        let all = samples();
        let msgs =
            |s: &CustomResourceSchema, obj: &mut Value, old: Option<&Value>| -> Vec<String> {
                s.default(obj);
                s.prune(obj);
                s.validate(obj, old).iter().map(|e| e.to_string()).collect()
            };
        let mut w = all[0].clone();
        let s = schema_for(&crds, &w);
        w["spec"]["replicas"] = json!(5000);
        w["spec"]["template"]["spec"]["containers"][1]["name"] = json!("web");
        w["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = json!("http");
        w["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = json!("lots");
        assert_eq!(
            msgs(&s, &mut w, None),
            vec![
                "spec.replicas: Invalid value: 5000: spec.replicas in body should be less than or equal to 1000",
                r#"spec.template.spec.containers[0].ports[0].containerPort: Invalid value: "string": spec.template.spec.containers[0].ports[0].containerPort in body must be of type integer: "string""#,
                r#"spec.template.spec.containers[1]: Duplicate value: map[string]interface {}{"name":"web"}"#,
                r#"<nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"#,
            ]
        );
        let mut w = all[0].clone();
        w["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = json!("lots");
        w["spec"]["autoscaling"]["minReplicas"] = json!(20);
        w["spec"]["template"]["spec"]["volumes"][1]["configMap"] = json!({"name": "x"});
        assert_eq!(
            msgs(&s, &mut w, None),
            vec![
                "spec.autoscaling: Invalid value: minReplicas must not exceed maxReplicas",
                r#"spec.strategy.rollingUpdate.maxSurge: Invalid value: "lots": must be a non-negative integer or a percentage"#,
                "spec.template.spec.volumes[1]: Invalid value: exactly one volume source must be set",
            ]
        );
        let mut old = all[1].clone();
        let s = schema_for(&crds, &old);
        s.default(&mut old);
        let mut db = old.clone();
        db["spec"]["instances"] = json!(4);
        db["spec"]["storage"]["storageClassName"] = json!("slow");
        db["spec"]["users"][1]["name"] = json!("root");
        assert_eq!(
            msgs(&s, &mut db, Some(&old)),
            vec![
                "spec.instances: Invalid value: 4: instances must be odd, got 4",
                r#"spec.storage.storageClassName: Invalid value: "slow": storageClassName is immutable"#,
                "spec.users: Invalid value: the root user is managed by the operator",
            ]
        );
    }

    /// `cargo test -p kubox-openapi --release -- --ignored --nocapture crd_schema_timing`
    #[test]
    #[ignore]
    fn crd_schema_timing() {
        let crds = data_crds();
        for crd in &crds {
            for v in crd["spec"]["versions"].as_array().unwrap() {
                let schema = &v["schema"]["openAPIV3Schema"];
                let t = std::time::Instant::now();
                let n = 20;
                for _ in 0..n {
                    std::hint::black_box(CustomResourceSchema::new(schema));
                }
                let compile = t.elapsed() / n;
                let t = std::time::Instant::now();
                for _ in 0..n {
                    std::hint::black_box(validate_crd_schema(schema, "p"));
                }
                println!(
                    "{} {}: compile {:?}, CRD validation {:?}",
                    crd["metadata"]["name"],
                    v["name"],
                    compile,
                    t.elapsed() / n
                );
            }
        }
        for sample in samples() {
            let s = schema_for(&crds, &sample);
            let n = 20_000;
            let t = std::time::Instant::now();
            for _ in 0..n {
                let mut obj = sample.clone();
                s.default(&mut obj);
                s.prune(&mut obj);
                assert!(s.validate(&obj, Some(&sample)).is_empty());
            }
            let per = t.elapsed() / n;
            println!(
                "{}: default+prune+validate {:?} per object ({:.0}/s)",
                sample["kind"],
                per,
                1.0 / per.as_secs_f64()
            );
        }
    }
}
