#!/usr/bin/env python3
"""Generate apimachinery/src/protobuf/schema.rs: the table that drives kubox's protobuf decoder and
encoder.

Inputs (all local; Python standard library only):

* k8s-pb 0.9.0 (cargo registry): prost-generated bindings of every Kubernetes `generated.proto`.
  Gives each message's fields: tag, wire kind (`#[prost(int32|string|message|btree_map=...)]`),
  repeated or map, and the referenced message type. The proto package is the module path
  (`src/api/core/v1/mod.rs` -> `k8s.io.api.core.v1`).
* k8s-openapi 0.29.0, `src/v1_35` (cargo registry): `// Generated from definition io.k8s...`
  names each type; its hand-rolled Deserialize impl lists the exact JSON field names
  (`"generateName" => Field::Key_generate_name`). A k8s-pb field gets the JSON name whose
  normalised form (lowercase; `_`, `-` and `$` removed) equals the normalised prost field name
  (prost snake-cases `podIPs` as `pod_i_ps`).
* scripts/protobuf-go-fields.tsv (checked in, made by scripts/extract-go-fields.py from the
  kubectl and helm binaries): the Go struct tags and field types. They say which fields are Go
  pointers, which are `omitempty`, which are `json:",inline"` (the nested message's fields go
  into the parent JSON object), and confirm the JSON names taken from k8s-openapi.

The zero-value rule (see apimachinery/src/protobuf/mod.rs): gogo-protobuf writes every
non-pointer scalar even when it is zero, so the decoder drops a zero scalar ("" / 0 / false,
IntOrString 0 or "") unless the field's `keep_zero` is set: the Go field is a pointer (`*int32`:
on the wire only when set, so `replicas: 0` is meant) or its JSON tag has no `omitempty` (Go's
JSON encoder writes it even when zero). Fields without Go facts (kube-aggregator types) take
`keep_zero` from KEEP_ZERO below.

The encoder (apimachinery/src/protobuf/encode.rs) needs a second fact: whether gogo writes an
optional field only when it is set. That is so when the Go field can be nil (`nullable`): a
pointer (`*int32`, `*ObjectReference`), a `[]byte` (every proto `bytes` field) or a named slice
wrapped in a message (`Verbs`). Every other optional field (plain scalars and non-pointer
structs) is written always, zero or not. Fields without Go facts take it from NULLABLE below.

Re-run from the workspace root after bumping k8s-pb / k8s-openapi (and re-extracting the Go facts
when the Kubernetes version changes):

    cargo fetch            # unpacks k8s-openapi into ~/.cargo/registry/src
    cargo info k8s-pb@0.9.0   # k8s-pb is no workspace dependency: this unpacks it, if missing
    python3 scripts/extract-go-fields.py .tools/bin/kubectl-1.35 .tools/bin/helm \
        > scripts/protobuf-go-fields.tsv     # only when the Kubernetes version changes
    python3 scripts/gen-protobuf-schema.py

The output is `#[rustfmt::skip]` (see apimachinery/src/protobuf/mod.rs): no formatting step.

Unmatched fields make the script fail, listing them; add them to JSON_OVERRIDES.
"""

import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "apimachinery", "src", "protobuf", "schema.rs")
GO_FACTS = os.path.join(ROOT, "scripts", "protobuf-go-fields.tsv")

# Packages kubox never receives as request bodies and no other package refers to.
SKIP_PACKAGES = (
    "k8s.io.metrics.",
    "k8s.io.apimachinery.pkg.apis.testapigroup.",
)
# The envelope itself: decoded and encoded by hand (apimachinery/src/protobuf/mod.rs, encode.rs).
SKIP_MESSAGES = ("k8s.io.apimachinery.pkg.runtime.Unknown",)

# (message, prost field) -> JSON name, for fields neither k8s-openapi nor the Go facts name.
JSON_OVERRIDES = {
    # core/v1 AvoidPods (a node annotation's schema, not served, not linked into kubectl)
    ("k8s.io.api.core.v1.AvoidPods", "prefer_avoid_pods"): "preferAvoidPods",
    ("k8s.io.api.core.v1.PodSignature", "pod_controller"): "podController",
    ("k8s.io.api.core.v1.PreferAvoidPodsEntry", "pod_signature"): "podSignature",
    ("k8s.io.api.core.v1.PreferAvoidPodsEntry", "eviction_time"): "evictionTime",
}

# Fields without Go facts whose zero value must be kept (Go pointers or non-omitempty fields).
KEEP_ZERO = {
    "k8s.io.kube_aggregator.pkg.apis.apiregistration.v1.ServiceReference.port",
    "k8s.io.kube_aggregator.pkg.apis.apiregistration.v1.APIServiceSpec.groupPriorityMinimum",
    "k8s.io.kube_aggregator.pkg.apis.apiregistration.v1.APIServiceSpec.versionPriority",
    "k8s.io.kube_aggregator.pkg.apis.apiregistration.v1beta1.ServiceReference.port",
    "k8s.io.kube_aggregator.pkg.apis.apiregistration.v1beta1.APIServiceSpec.groupPriorityMinimum",
    "k8s.io.kube_aggregator.pkg.apis.apiregistration.v1beta1.APIServiceSpec.versionPriority",
}

# Fields without Go facts that are Go pointers (`[]byte` fields are nullable whatever the facts):
# types no client binary links (the kube-aggregator types, autoscaling/v1's metric types kept
# only in annotations, core/v1 Preconditions and PodSignature, resource/v1alpha3 DeviceSelector).
NULLABLE = {
    "k8s.io.api.autoscaling.v1.ContainerResourceMetricSource.targetAverageUtilization",
    "k8s.io.api.autoscaling.v1.ContainerResourceMetricSource.targetAverageValue",
    "k8s.io.api.autoscaling.v1.ContainerResourceMetricStatus.currentAverageUtilization",
    "k8s.io.api.autoscaling.v1.ExternalMetricSource.metricSelector",
    "k8s.io.api.autoscaling.v1.ExternalMetricSource.targetValue",
    "k8s.io.api.autoscaling.v1.ExternalMetricSource.targetAverageValue",
    "k8s.io.api.autoscaling.v1.ExternalMetricStatus.metricSelector",
    "k8s.io.api.autoscaling.v1.ExternalMetricStatus.currentAverageValue",
    "k8s.io.api.autoscaling.v1.MetricSpec.object",
    "k8s.io.api.autoscaling.v1.MetricSpec.pods",
    "k8s.io.api.autoscaling.v1.MetricSpec.resource",
    "k8s.io.api.autoscaling.v1.MetricSpec.external",
    "k8s.io.api.autoscaling.v1.MetricSpec.containerResource",
    "k8s.io.api.autoscaling.v1.MetricStatus.object",
    "k8s.io.api.autoscaling.v1.MetricStatus.pods",
    "k8s.io.api.autoscaling.v1.MetricStatus.resource",
    "k8s.io.api.autoscaling.v1.MetricStatus.external",
    "k8s.io.api.autoscaling.v1.MetricStatus.containerResource",
    "k8s.io.api.autoscaling.v1.ObjectMetricSource.selector",
    "k8s.io.api.autoscaling.v1.ObjectMetricSource.averageValue",
    "k8s.io.api.autoscaling.v1.ObjectMetricStatus.selector",
    "k8s.io.api.autoscaling.v1.ObjectMetricStatus.averageValue",
    "k8s.io.api.autoscaling.v1.PodsMetricSource.selector",
    "k8s.io.api.autoscaling.v1.PodsMetricStatus.selector",
    "k8s.io.api.autoscaling.v1.ResourceMetricSource.targetAverageUtilization",
    "k8s.io.api.autoscaling.v1.ResourceMetricSource.targetAverageValue",
    "k8s.io.api.autoscaling.v1.ResourceMetricStatus.currentAverageUtilization",
    "k8s.io.api.core.v1.PodSignature.podController",
    "k8s.io.api.core.v1.Preconditions.uid",
    "k8s.io.api.resource.v1alpha3.DeviceSelector.cel",
    "k8s.io.kube_aggregator.pkg.apis.apiregistration.v1.APIServiceSpec.service",
    "k8s.io.kube_aggregator.pkg.apis.apiregistration.v1.ServiceReference.port",
    "k8s.io.kube_aggregator.pkg.apis.apiregistration.v1beta1.APIServiceSpec.service",
    "k8s.io.kube_aggregator.pkg.apis.apiregistration.v1beta1.ServiceReference.port",
}

META = "k8s.io.apimachinery.pkg.apis.meta.v1."
APIEXT = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions."

# Messages whose JSON form is not an object of their fields (custom MarshalJSON in Go).
SPECIAL = {
    META + "Time": "Time",
    META + "MicroTime": "MicroTime",
    META + "Duration": "Duration",
    META + "FieldsV1": "RawJson",
    META + "Verbs": "StringList",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "Quantity",
    "k8s.io.apimachinery.pkg.api.resource.QuantityValue": "Quantity",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "RawJson",
}
for _v in ("v1", "v1beta1"):
    SPECIAL[APIEXT + _v + ".JSON"] = "RawJson"
    SPECIAL[APIEXT + _v + ".JSONSchemaPropsOrArray"] = "SchemaOrArray"
    SPECIAL[APIEXT + _v + ".JSONSchemaPropsOrBool"] = "SchemaOrBool"
    SPECIAL[APIEXT + _v + ".JSONSchemaPropsOrStringArray"] = "SchemaOrStringArray"
# `type ExtraValue []string` in authentication, authorization and certificates: a wrapper
# message {repeated string items = 1} on the wire, a plain JSON array.
STRING_LIST_NAMES = ("ExtraValue",)

# API groups that have no Resource impl to learn their package from.
EXTRA_GROUPS = {
    "extensions": "k8s.io.api.extensions",
    "imagepolicy.k8s.io": "k8s.io.api.imagepolicy",
    "admission.k8s.io": "k8s.io.api.admission",
    "apidiscovery.k8s.io": "k8s.io.api.apidiscovery",
    "meta.k8s.io": "k8s.io.apimachinery.pkg.apis.meta",
}


def crate_dir(name):
    home = os.path.expanduser("~/.cargo/registry/src")
    hits = sorted(glob.glob(os.path.join(home, "*", name)))
    if not hits:
        raise SystemExit(f"{name} is not unpacked under {home}: run `cargo fetch` (or `cargo info {name.rsplit('-', 1)[0]}@{name.rsplit('-', 1)[1]}`) first")
    return hits[-1]


def norm(name):
    return re.sub(r"[_\-$]", "", name).lower()


# ---------------------------------------------------------------------------------------------
# k8s-pb


class PbField:
    def __init__(self, rust, attr, ty):
        self.rust = rust[2:] if rust.startswith("r#") else rust
        self.attr = attr
        self.ty = ty
        self.tag = int(re.search(r'tag\s*=\s*"(\d+)"', attr).group(1))
        self.repeated = " repeated" in " " + attr.replace(",", " ")
        m = re.search(r'btree_map\s*=\s*"string,\s*(\w+)"', attr)
        self.map_value = m.group(1) if m else None
        self.kind = attr.split(",")[0].strip().split("=")[0].strip()
        self.ref = None  # resolved message name for message kinds


class PbMessage:
    def __init__(self, package, name):
        self.package = package
        self.name = name
        self.fields = []


def strip_generics(ty):
    ty = ty.replace(" ", "").replace(",>", ">")
    m = re.match(r"^::prost::alloc::collections::BTreeMap<(.*)>$", ty)
    if m:
        # key is always String; value is the last top-level argument
        inner = m.group(1)
        depth = 0
        for i, c in enumerate(inner):
            if c == "<":
                depth += 1
            elif c == ">":
                depth -= 1
            elif c == "," and depth == 0:
                ty = inner[i + 1 :]
                break
    changed = True
    while changed:
        changed = False
        for wrapper in ("::core::option::Option<", "::prost::alloc::vec::Vec<", "::prost::alloc::boxed::Box<"):
            if ty.startswith(wrapper) and ty.endswith(">"):
                ty = ty[len(wrapper) : -1]
                changed = True
    return ty


def resolve(module, path):
    parts = path.split("::")
    mod = list(module)
    if parts[0] == "crate":
        mod = []
        parts = parts[1:]
    while parts and parts[0] == "super":
        mod.pop()
        parts = parts[1:]
    return "k8s.io." + ".".join(mod + parts[:-1]), parts[-1]


def parse_pb(root):
    messages = {}
    resources = []  # (group, package)
    for path in sorted(glob.glob(os.path.join(root, "src", "**", "mod.rs"), recursive=True)):
        rel = os.path.relpath(os.path.dirname(path), os.path.join(root, "src"))
        module = rel.split(os.sep)
        package = "k8s.io." + ".".join(module)
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        current = None
        attr = None
        i = 0
        while i < len(lines):
            line = lines[i].strip()
            m = re.match(r"^pub struct (\w+) \{(\})?$", line)
            if m:
                current = PbMessage(package, m.group(1))
                messages[(package, current.name)] = current
                if m.group(2):
                    current = None
            elif line == "}" and current is not None:
                current = None
            elif current is not None and line.startswith("#[prost("):
                attr = line[len("#[prost(") : -2]
            elif current is not None and attr is not None and line.startswith("pub "):
                decl = line
                while not decl.endswith(",") or decl.count("<") != decl.count(">"):
                    i += 1
                    decl += lines[i].strip()
                m = re.match(r"^pub ([\w#]+):\s*(.*),$", decl)
                field = PbField(m.group(1), attr, m.group(2))
                if field.kind == "message" or field.map_value == "message":
                    field.ref = resolve(module, strip_generics(field.ty))
                current.fields.append(field)
                attr = None
            m = re.match(r'^const GROUP: &\'static str = "([^"]*)";$', line)
            if m:
                resources.append((m.group(1), package.rsplit(".", 1)[0]))
            i += 1
    return messages, resources


# ---------------------------------------------------------------------------------------------
# k8s-openapi


def parse_openapi(root):
    defs = {}  # (package, lower name) -> (real name, [json names])
    groups = []
    base = os.path.join(root, "src", "v1_35")
    for path in sorted(glob.glob(os.path.join(base, "**", "*.rs"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        m = re.match(r"// Generated from definition ([\w.\-]+)", text)
        if not m:
            continue
        full = m.group(1)
        assert full.startswith("io.k8s."), full
        package, name = full.rsplit(".", 1)
        package = "k8s.io." + package[len("io.k8s.") :].replace("-", "_")
        names = re.findall(r'^\s*"([^"]+)" => Field::Key_\w+,$', text, re.M)
        names = [n for n in names if n not in ("apiVersion", "kind") or name in ("TypeMeta",)]
        defs[(package, name.lower())] = (name, names)
        g = re.search(r'const GROUP: &\'static str = "([^"]*)";', text)
        if g:
            groups.append((g.group(1), package.rsplit(".", 1)[0]))
    return defs, groups


# ---------------------------------------------------------------------------------------------
# Go facts


def parse_go_facts():
    facts = {}  # message -> {tag: (go field, go type, json tag)}
    with open(GO_FACTS, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            message, field, tag, _gofield, gotype, jsontag = line.rstrip("\n").split("\t")
            facts.setdefault(message, {})[int(tag)] = (field, gotype, jsontag)
    return facts


# ---------------------------------------------------------------------------------------------


def main():
    pb_root = crate_dir("k8s-pb-0.9.0")
    oa_root = crate_dir("k8s-openapi-0.29.0")
    pb, pb_groups = parse_pb(pb_root)
    defs, oa_groups = parse_openapi(oa_root)
    facts = parse_go_facts()
    facts_lower = {m.rsplit(".", 1)[0] + "." + m.rsplit(".", 1)[1].lower(): m for m in facts}

    def real_name(package, prost_name):
        d = defs.get((package, prost_name.lower()))
        if d:
            return package + "." + d[0]
        g = facts_lower.get(package + "." + prost_name.lower())
        if g:
            return g
        return package + "." + prost_name

    names = {}
    for (package, pname) in pb:
        if package.startswith(SKIP_PACKAGES):
            continue
        if real_name(package, pname) in SKIP_MESSAGES:
            continue
        names[(package, pname)] = real_name(package, pname)

    # Fallback for messages that neither k8s-openapi nor the Go facts describe (versions no longer
    # served, aggregator types): a JSON name used anywhere whose normalised form is unique.
    # First the same message name in another package (another version), then any message.
    known = {}
    by_type = {}
    for name, json_names in defs.values():
        for n in json_names:
            known.setdefault(norm(n), set()).add(n)
            by_type.setdefault((name, norm(n)), set()).add(n)
    for message, fields in facts.items():
        for _field, _gotype, jsontag in fields.values():
            n = jsontag.split(",")[0]
            if n and n != "-":
                known.setdefault(norm(n), set()).add(n)
                by_type.setdefault((message.rsplit(".", 1)[1], norm(n)), set()).add(n)

    def fallback(message, field):
        for candidates in (by_type.get((message.rsplit(".", 1)[1], norm(field))), known.get(norm(field))):
            if candidates and len(candidates) == 1:
                return next(iter(candidates))
        return None

    errors = []
    out_messages = {}
    for (package, pname), full in names.items():
        msg = pb[(package, pname)]
        d = defs.get((package, pname.lower()))
        oa_json = {norm(n): n for n in d[1]} if d else {}
        go = facts.get(full, {})
        fields = []
        for f in msg.fields:
            json = None
            inline = False
            keep_zero = False
            nullable = f.kind == "bytes"
            gofact = go.get(f.tag)
            if gofact:
                gname, gotype, jsontag = gofact
                parts = jsontag.split(",")
                if parts[0] == "" and "inline" in parts[1:]:
                    inline = True
                elif parts[0] and parts[0] != "-":
                    json = parts[0]
                keep_zero = gotype.startswith("*") or ("omitempty" not in parts[1:] and "omitzero" not in parts[1:])
                nullable = nullable or gotype.startswith("*")
                if gname and norm(gname) != norm(f.rust):
                    errors.append(f"{full}: tag {f.tag} is {f.rust} in k8s-pb but {gname} in the Go protobuf tag")
            oa = oa_json.get(norm(f.rust))
            if oa is not None:
                if json is not None and json != oa:
                    errors.append(f"{full}.{f.rust}: JSON name {oa!r} (k8s-openapi) vs {json!r} (Go)")
                json = oa
            if json is None and not inline and not gofact and not d:
                json = fallback(full, f.rust)
            if (full, f.rust) in JSON_OVERRIDES:
                json = JSON_OVERRIDES[(full, f.rust)]
            if json is None and (full in SPECIAL or full.rsplit(".", 1)[1] in STRING_LIST_NAMES):
                json = f.rust  # never a JSON key: the special form replaces the object
            if json is None and not inline:
                errors.append(f"{full}.{f.rust} (tag {f.tag}): no JSON name")
                continue
            if not gofact and f"{full}.{json}" in KEEP_ZERO:
                keep_zero = True
            if not gofact and f"{full}.{json}" in NULLABLE:
                nullable = True
            ref = None
            if f.ref is not None:
                ref = names.get(f.ref)
                if ref is None:
                    errors.append(f"{full}.{f.rust}: unknown message {f.ref}")
                    continue
                # A named []string (Verbs) held in a wrapper message: nil unless set.
                if SPECIAL.get(ref) == "StringList" or ref.rsplit(".", 1)[1] in STRING_LIST_NAMES:
                    nullable = True
            if f.kind == "btree_map":
                label = "Map"
                kind = f.map_value
            else:
                label = "Repeated" if f.repeated else "Optional"
                kind = f.kind
            kind = {
                "string": "String",
                "bytes": "Bytes",
                "bool": "Bool",
                "int32": "Int32",
                "int64": "Int64",
                "double": "Double",
                "message": "Message",
            }.get(kind)
            if kind is None:
                errors.append(f"{full}.{f.rust}: unsupported prost attribute {f.attr}")
                continue
            if label != "Optional" or inline:
                nullable = False
            fields.append(dict(tag=f.tag, json=json or "", kind=kind, ref=ref, label=label, keep_zero=keep_zero, nullable=nullable, inline=inline))
        special = SPECIAL.get(full)
        if special is None and full.rsplit(".", 1)[1] in STRING_LIST_NAMES:
            special = "StringList"
        if special == "StringList":
            if [(x["tag"], x["kind"], x["label"]) for x in fields] != [(1, "String", "Repeated")]:
                errors.append(f"{full}: not a string list wrapper")
        out_messages[full] = dict(fields=sorted(fields, key=lambda x: x["tag"]), special=special or "None")

    if errors:
        print("gen-protobuf-schema: cannot map these fields (add them to JSON_OVERRIDES):", file=sys.stderr)
        for e in errors:
            print("  " + e, file=sys.stderr)
        raise SystemExit(1)

    groups = {}
    for group, package in pb_groups + oa_groups + list(EXTRA_GROUPS.items()):
        if group == "":
            package = "k8s.io.api.core"
        if group in groups and groups[group] != package:
            raise SystemExit(f"group {group!r} maps to both {groups[group]} and {package}")
        groups[group] = package

    ordered = sorted(out_messages)
    index = {name: i for i, name in enumerate(ordered)}
    assert len(ordered) < 65536

    w = []
    w.append("// @generated by scripts/gen-protobuf-schema.py from the k8s-pb 0.9.0 and k8s-openapi 0.29.0")
    w.append("// (v1_35) crates and scripts/protobuf-go-fields.tsv. Do not edit: re-run")
    w.append("// `python3 scripts/gen-protobuf-schema.py` from the workspace root.")
    w.append("//")
    w.append("// Field constructors: o = optional (a zero scalar is dropped), z = optional keeping zero")
    w.append("// (Go pointer or no omitempty), r = repeated, m = map<string, _>, i = inlined message.")
    w.append("// o and z are written by gogo always; their nullable forms (a Go pointer, []byte or named")
    w.append("// slice: written only when set) are n (zero dropped) and p (zero kept).")
    w.append("")
    w.append("use super::table::Kind::{Bool, Bytes, Double, Int32, Int64, Message as M, String as Str};")
    w.append("use super::table::Special::*;")
    w.append("use super::table::{inline as i, map as m, msg, nullable as n, nullable_keep_zero as p, optional as o, optional_keep_zero as z, repeated as r};")
    w.append("use super::table::Message;")
    w.append("")
    w.append("/// API group -> proto package prefix (the version and kind follow), sorted by group.")
    w.append("pub(crate) static GROUPS: &[(&str, &str)] = &[")
    for g in sorted(groups):
        w.append(f'    ("{g}", "{groups[g]}"),')
    w.append("];")
    w.append("")
    w.append("/// Every protobuf message, sorted by fully qualified name; `Kind::Message(i)` indexes it.")
    w.append("pub(crate) static MESSAGES: &[Message] = &[")
    kinds = {"String": "Str", "Bytes": "Bytes", "Bool": "Bool", "Int32": "Int32", "Int64": "Int64", "Double": "Double"}
    for n, name in enumerate(ordered):
        m = out_messages[name]
        w.append(f'    msg("{name}", {m["special"]}, &[ // {n}')
        for x in m["fields"]:
            if x["kind"] == "Message":
                kind = f"M({index[x['ref']]})"
                comment = f" // {x['ref'].rsplit('.', 1)[1]}"
            else:
                kind = kinds[x["kind"]]
                comment = ""
            if x["inline"]:
                w.append(f'        i({x["tag"]}, {kind}),{comment}')
                continue
            ctor = {"Repeated": "r", "Map": "m"}.get(x["label"]) or {
                (False, False): "o",
                (True, False): "z",
                (False, True): "n",
                (True, True): "p",
            }[(x["keep_zero"], x["nullable"])]
            w.append(f'        {ctor}({x["tag"]}, "{x["json"]}", {kind}),{comment}')
        w.append("    ]),")
    w.append("];")
    w.append("")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("\n".join(w))
    nfields = sum(len(m["fields"]) for m in out_messages.values())
    print(f"wrote {os.path.relpath(OUT, ROOT)}: {len(ordered)} messages, {nfields} fields, {len(groups)} groups")


if __name__ == "__main__":
    main()
