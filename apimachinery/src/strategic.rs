//! Strategic merge patch (`application/strategic-merge-patch+json`), the patch format that
//! `kubectl apply` (client side), `kubectl edit`, `kubectl label`/`annotate`, `kubectl set image`
//! and `kubectl rollout restart` send.
//!
//! The behaviour follows `k8s.io/apimachinery/pkg/util/strategicpatch` as the API server applies
//! it (`StrategicMergeMapPatch`: parallel lists are merged, unmatched nulls are ignored):
//!
//! * Objects merge recursively; a `null` value deletes the key.
//! * `"$patch": "replace"` in an object replaces the object with the rest of the patch object,
//!   `"$patch": "delete"` empties it (`{}`; a new field carrying it is left out).
//! * `"$retainKeys": [..]` in an object first drops every key of the original that is not listed
//!   (and the patch may only set listed keys), then merges.
//! * A list whose field merges by key (see [`PatchMeta`]) merges items with the same key value
//!   recursively and adds the others; an item `{"<key>": v, "$patch": "delete"}` removes every
//!   item with that key value; an element `{"$patch": "replace"}` makes the other patch items the
//!   whole list. A primitive list whose field merges is unioned (duplicates removed).
//!   `"$deleteFromPrimitiveList/<field>": [..]` removes values from the list `<field>`.
//! * `"$setElementOrder/<field>": [..]` gives the order of the items the client knows about;
//!   items only the server has keep their place relative to them, as Go does. Without it, items
//!   named in the patch come in patch order and items only the server has keep theirs, merged
//!   the way Go merges them (an item new to the list goes before server-only items it cannot be
//!   placed against).
//! * Any other list (no merge strategy for the field: the default, as Go does for untagged
//!   fields) and any scalar is replaced by the patch value.
//! * No directive ever reaches the result: a value added where the original had nothing is
//!   cleaned of `null` entries and of directives (objects marked `"$patch": "delete"` dropped).
//!
//! Where Go's behaviour depends on accidents of its implementation, this module picks one
//! documented behaviour:
//! * `$setElementOrder` ordering reproduces Go's in-place editing of the live list when items
//!   are deleted and added in the same patch, assuming the live list had no spare capacity (as
//!   when the server converts a typed object to a map).
//! * `"$patch": "replace"` on an object the original does not have keeps the object's content
//!   (Go drops it); the content of a replaced object or list is cleaned of nulls and directives.
//! * When the merge-key table says a list is atomic but the patch carries `$setElementOrder` for
//!   it (or a `"$patch": "delete"` item naming a single key), the list is merged with the key
//!   the directive shows, so that a gap in the table does not turn a `kubectl apply` into a
//!   wholesale replacement of the list.
//! * A `$setElementOrder` for a field that does not merge is ignored.

use serde_json::{Map, Value};

/// The directive marker key: `"$patch": "replace" | "delete"`.
const DIRECTIVE_MARKER: &str = "$patch";
/// The `$retainKeys` directive key.
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
/// Prefix of the parallel ordering list `$setElementOrder/<field>`.
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";
/// Prefix of the parallel deletion list `$deleteFromPrimitiveList/<field>`.
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";

/// Where a field's list/map merge behaviour comes from.
pub trait PatchMeta {
    /// For the field at `path` (e.g. `["spec","template","spec","containers"]`; list items are
    /// not part of the path: a field inside a list element is the list field's path + the field
    /// name), its strategy.
    fn lookup(&self, path: &[&str]) -> FieldStrategy;
}

/// How a field is patched: the `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key`
/// markers of the field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FieldStrategy {
    /// Atomic: a list is replaced wholesale by the patch value. The default for lists; objects
    /// are still merged key by key.
    #[default]
    Replace,
    /// `patchStrategy: merge`: a list of objects is merged by the value of `key`; with `key`
    /// `None` a list of primitives is merged as a set.
    Merge {
        /// The merge key (`patchMergeKey`), `None` for a list of primitives.
        key: Option<String>,
    },
    /// `patchStrategy: retainKeys`: an object whose patches carry `$retainKeys` (merges like any
    /// object; the marker matters to the client computing the patch).
    RetainKeys,
    /// `patchStrategy: merge,retainKeys`: a list merged like [`FieldStrategy::Merge`] whose
    /// items' patches carry `$retainKeys`.
    MergeRetainKeys {
        /// The merge key (`patchMergeKey`), `None` for a list of primitives.
        key: Option<String>,
    },
}

impl FieldStrategy {
    /// Whether a list in this field is merged (rather than replaced).
    pub fn is_merge(&self) -> bool {
        matches!(
            self,
            FieldStrategy::Merge { .. } | FieldStrategy::MergeRetainKeys { .. }
        )
    }

    /// The merge key of a merged list of objects.
    pub fn merge_key(&self) -> Option<&str> {
        match self {
            FieldStrategy::Merge { key } | FieldStrategy::MergeRetainKeys { key } => key.as_deref(),
            FieldStrategy::Replace | FieldStrategy::RetainKeys => None,
        }
    }
}

/// Why a strategic merge patch could not be applied. The message is meant for the `message` of
/// the API `Status` returned to the client; [`StrategicMergeError::status_code`] tells which
/// code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrategicMergeError {
    /// The patch is malformed: not a JSON object, a bad directive (`$patch` value, malformed
    /// `$setElementOrder/…`, `$deleteFromPrimitiveList/…` or `$retainKeys`, a patch key missing
    /// from its `$retainKeys` list), or a `$setElementOrder` list that contradicts the patch
    /// list. HTTP 400.
    #[error("{0}")]
    BadRequest(String),
    /// The patch is well formed but cannot be applied to this object: a list item without its
    /// merge key, lists of lists, list items of different kinds. HTTP 422.
    #[error("{0}")]
    Unprocessable(String),
    /// Merging would take more work than [`MAX_MERGE_WORK`] allows (lists so long that Go's
    /// quadratic list algorithms, which these mirror, would run for minutes). HTTP 413.
    #[error("{0}")]
    TooComplex(String),
}

/// The most work one strategic merge patch may take, in list-item comparisons: kube's list
/// merging is quadratic in the lengths of the lists merged, so a patch of a few megabytes could
/// otherwise keep a core busy for hours. Real objects' lists stay far below it (two lists of
/// 5,000 items each merge within it).
pub const MAX_MERGE_WORK: u64 = 100_000_000;

impl StrategicMergeError {
    /// The HTTP status code the API server answers with (400 or 422).
    pub fn status_code(&self) -> u16 {
        match self {
            StrategicMergeError::BadRequest(_) => 400,
            StrategicMergeError::Unprocessable(_) => 422,
            StrategicMergeError::TooComplex(_) => 413,
        }
    }

    /// The message for the API `Status`.
    pub fn message(&self) -> &str {
        match self {
            StrategicMergeError::BadRequest(m)
            | StrategicMergeError::Unprocessable(m)
            | StrategicMergeError::TooComplex(m) => m,
        }
    }
}

type Result<T> = std::result::Result<T, StrategicMergeError>;

fn bad_request(msg: impl Into<String>) -> StrategicMergeError {
    StrategicMergeError::BadRequest(msg.into())
}

fn unprocessable(msg: impl Into<String>) -> StrategicMergeError {
    StrategicMergeError::Unprocessable(msg.into())
}

fn no_merge_key(item: &Value, key: &str) -> StrategicMergeError {
    unprocessable(format!(
        "map: {item} does not contain declared merge key: {key}"
    ))
}

fn bad_patch_type(value: &Value, map: &Map<String, Value>) -> StrategicMergeError {
    bad_request(format!(
        "unknown patch type: {value} in map: {}",
        Value::Object(map.clone())
    ))
}

fn not_a_map(value: &Value) -> StrategicMergeError {
    unprocessable(format!("expected a map, but received {value}"))
}

/// Applies the strategic merge patch `patch` to `original`, with `meta` telling which fields
/// merge lists by key. `original` `null` counts as `{}`; a `null` patch changes nothing.
///
/// # Errors
/// [`StrategicMergeError`] when the patch is not a JSON object, carries a bad directive, or
/// cannot be applied to `original` (see the variants).
pub fn apply_strategic_merge_patch(
    original: &Value,
    patch: &Value,
    meta: &dyn PatchMeta,
) -> std::result::Result<Value, StrategicMergeError> {
    let original_map = match original {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => return Err(bad_request("the object to patch is not a JSON object")),
    };
    let patch_map = match patch {
        Value::Object(m) => m.clone(),
        // Go unmarshals `null` into an empty map: no change.
        Value::Null => return Ok(Value::Object(original_map)),
        _ => {
            return Err(bad_request(
                "invalid JSON document: a strategic merge patch must be a JSON object",
            ))
        }
    };
    let mut merger = Merger {
        meta,
        path: Vec::new(),
        work: 0,
    };
    merger.merge_map(original_map, patch_map).map(Value::Object)
}

/// The JSON kinds Go's reflection tells apart in decoded JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(_) => Kind::Number,
        Value::String(_) => Kind::String,
        Value::Array(_) => Kind::Array,
        Value::Object(_) => Kind::Object,
    }
}

/// JSON equality with numbers compared by value (`1` equals `1.0`, as Go's float64 does).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y
                || match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) => x == y,
                    _ => false,
                }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn opt_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => json_eq(x, y),
        _ => false,
    }
}

/// The kind shared by the elements of `lists` (Go's `sliceElementType`): `None` when they are
/// all empty.
fn element_kind(lists: &[&[Value]]) -> Result<Option<Kind>> {
    let mut found: Option<Kind> = None;
    for list in lists {
        for v in list.iter() {
            let k = kind(v);
            match found {
                None => {
                    if k == Kind::Array {
                        return Err(unprocessable("lists of lists are not supported"));
                    }
                    found = Some(k);
                }
                Some(prev) if prev != k => {
                    return Err(unprocessable(format!(
                        "list element types are not identical: {}",
                        Value::Array(lists.iter().flat_map(|l| l.iter().cloned()).collect())
                    )));
                }
                Some(_) => {}
            }
        }
    }
    Ok(found)
}

/// Splits `key` = `<prefix>/<field>` and returns the field.
fn extract_key<'k>(key: &'k str, prefix: &str) -> Result<&'k str> {
    match key.split_once('/') {
        Some((head, field)) if head == prefix => Ok(field),
        _ => Err(bad_request(
            if prefix == DELETE_FROM_PRIMITIVE_LIST_PREFIX {
                "invalid patch format of primitive list"
            } else {
                "invalid patch format of setElementOrder list"
            },
        )),
    }
}

fn is_parallel_list_directive(key: &str) -> bool {
    key.starts_with(SET_ELEMENT_ORDER_PREFIX) || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
}

// ---------------------------------------------------------------------------------------------
// Values that land where the original has nothing.

/// A patch value placed where the original has nothing to merge with (a new field, a new list
/// item, a replacement): `null` entries of objects are dropped, objects marked
/// `"$patch": "delete"` (or any other value but `replace`) are dropped, list items carrying
/// `$patch` are dropped, and the other directives are removed. `None`: leave the field out.
fn fresh(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) => fresh_map(m).map(Value::Object),
        Value::Array(a) => Some(Value::Array(fresh_list(a))),
        other => Some(other),
    }
}

fn fresh_map(mut m: Map<String, Value>) -> Option<Map<String, Value>> {
    if let Some(directive) = m.remove(DIRECTIVE_MARKER) {
        if directive.as_str() != Some("replace") {
            return None;
        }
    }
    let mut out = Map::new();
    for (k, v) in m {
        if k == RETAIN_KEYS_DIRECTIVE || is_parallel_list_directive(&k) || v.is_null() {
            continue;
        }
        if let Some(v) = fresh(v) {
            out.insert(k, v);
        }
    }
    Some(out)
}

fn fresh_list(a: Vec<Value>) -> Vec<Value> {
    a.into_iter()
        .filter(|item| {
            !item
                .as_object()
                .is_some_and(|m| m.contains_key(DIRECTIVE_MARKER))
        })
        .filter_map(fresh)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Ordering (Go's normalizeElementOrder and friends).

/// The value an item is ordered by: its merge-key value for objects (`None` when missing or
/// null, as Go's nil), the item itself otherwise.
fn order_value<'v>(item: &'v Value, key: &str, is_map: bool) -> Option<&'v Value> {
    if is_map {
        item.as_object()
            .and_then(|m| m.get(key))
            .filter(|v| !v.is_null())
    } else {
        Some(item)
    }
}

fn index_of(list: &[Value], item: &Value, key: &str, is_map: bool) -> Option<usize> {
    let target = order_value(item, key, is_map);
    list.iter()
        .position(|v| opt_eq(order_value(v, key, is_map), target))
}

/// Every item of `lists` must be an object holding `key`.
fn validate_merge_key_in_lists(key: &str, lists: &[&[Value]]) -> Result<()> {
    for list in lists {
        for item in list.iter() {
            let m = item.as_object().ok_or_else(|| not_a_map(item))?;
            if !m.contains_key(key) {
                return Err(no_merge_key(item, key));
            }
        }
    }
    Ok(())
}

fn is_delete_item(item: &Value) -> bool {
    item.as_object()
        .and_then(|m| m.get(DIRECTIVE_MARKER))
        .is_some_and(|d| d.as_str() == Some("delete"))
}

/// Sorts `to_sort` by the position of its items in `order`, the way Go's stable insertion sort
/// does with its comparison (an item missing from `order` compares "less" in both directions).
fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    key: &str,
    is_map: bool,
) -> Result<Vec<Value>> {
    let (to_sort, deletes) = if is_map {
        validate_merge_key_in_lists(key, &[&to_sort, order])?;
        to_sort.into_iter().partition(|v| !is_delete_item(v))
    } else {
        (to_sort, Vec::new())
    };
    let mut items: Vec<(Option<usize>, Value)> = to_sort
        .into_iter()
        .map(|v| (index_of(order, &v, key, is_map), v))
        .collect();
    let less = |a: Option<usize>, b: Option<usize>| match (a, b) {
        (Some(a), Some(b)) => a < b,
        _ => true,
    };
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && less(items[j].0, items[j - 1].0) {
            items.swap(j, j - 1);
            j -= 1;
        }
    }
    let mut out: Vec<Value> = items.into_iter().map(|(_, v)| v).collect();
    out.extend(deletes);
    Ok(out)
}

/// Merges `left` (server-only items) into `right` (patch items), both already sorted, keeping
/// each one's relative order; a left item goes first only when both are found in
/// `server_order` and it comes earlier there.
fn merge_sorted_slice(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    key: &str,
    is_map: bool,
) -> Vec<Value> {
    let left: Vec<(Option<usize>, Value)> = left
        .into_iter()
        .map(|v| (index_of(server_order, &v, key, is_map), v))
        .collect();
    let right: Vec<(Option<usize>, Value)> = right
        .into_iter()
        .map(|v| (index_of(server_order, &v, key, is_map), v))
        .collect();
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((Some(l), _)), Some((Some(r), _))) => l < r,
            (Some(_), Some(_)) => false,
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some((_, v)) = next {
            out.push(v);
        }
    }
    out
}

fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: &str,
    is_map: bool,
) -> Result<Vec<Value>> {
    let patch_items = normalize_slice_order(patch_items, patch_order, key, is_map)?;
    let server_only = normalize_slice_order(server_only, server_order, key, is_map)?;
    Ok(merge_sorted_slice(
        server_only,
        patch_items,
        server_order,
        key,
        is_map,
    ))
}

/// Splits `merged` into the values present in `by` and the others.
fn partition_primitives(merged: Vec<Value>, by: &[Value]) -> (Vec<Value>, Vec<Value>) {
    merged
        .into_iter()
        .partition(|v| by.iter().any(|b| json_eq(b, v)))
}

/// The index of the first object of `list` whose `key` equals `value`.
fn find_by_key(list: &[Value], key: &str, value: &Value) -> Result<Option<usize>> {
    for (i, item) in list.iter().enumerate() {
        let m = item
            .as_object()
            .ok_or_else(|| unprocessable(format!("value for key {i} is not a map")))?;
        if m.get(key).is_some_and(|v| json_eq(v, value)) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// Splits `merged` into the objects whose key value appears in `by` and the others.
fn partition_maps(merged: Vec<Value>, by: &[Value], key: &str) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut in_by = Vec::new();
    let mut others = Vec::new();
    for v in merged {
        let m = v.as_object().ok_or_else(|| not_a_map(&v))?;
        let kv = m.get(key).ok_or_else(|| no_merge_key(&v, key))?;
        if find_by_key(by, key, kv)?.is_some() {
            in_by.push(v);
        } else {
            others.push(v);
        }
    }
    Ok((in_by, others))
}

/// Checks that the items of the patch list (deletions and directive items aside) appear in the
/// `$setElementOrder` list in the same relative order.
fn validate_set_element_order(
    patch_list: &[Value],
    order: &[Value],
    key: Option<&str>,
) -> Result<()> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let items: Vec<&Value> = match key {
        Some(_) => {
            for item in patch_list {
                if !item.is_object() {
                    return Err(not_a_map(item));
                }
            }
            patch_list.iter().filter(|v| !is_delete_item(v)).collect()
        }
        None => patch_list.iter().collect(),
    };
    let key_equal = |a: &Value, b: &Value| -> Result<bool> {
        match key {
            None => Ok(json_eq(a, b)),
            Some(k) => {
                let am = a.as_object().ok_or_else(|| not_a_map(a))?;
                let bm = b.as_object().ok_or_else(|| not_a_map(b))?;
                let av = am.get(k).ok_or_else(|| no_merge_key(a, k))?;
                let bv = bm.get(k).ok_or_else(|| no_merge_key(b, k))?;
                Ok(json_eq(av, bv))
            }
        }
    };
    let (mut pi, mut si) = (0, 0);
    while pi < items.len() && si < order.len() {
        if items[pi]
            .as_object()
            .is_some_and(|m| m.contains_key(DIRECTIVE_MARKER))
        {
            pi += 1;
            continue;
        }
        if key_equal(items[pi], &order[si])? {
            pi += 1;
        }
        si += 1;
    }
    if pi < items.len() && si >= order.len() {
        return Err(bad_request(format!(
            "the order in patch list {} doesn't match {SET_ELEMENT_ORDER_PREFIX} list {}",
            Value::Array(patch_list.to_vec()),
            Value::Array(order.to_vec())
        )));
    }
    Ok(())
}

/// The strategy to use when the table says "atomic" but a `$setElementOrder` list shows the
/// client merges the field: a list of single-key objects names the merge key, a list of
/// scalars means a merged set.
fn infer_from_set_element_order(order: &[Value]) -> Option<FieldStrategy> {
    let first = order.first()?;
    if let Some(m) = first.as_object() {
        let mut keys = m.keys();
        let key = keys.next()?;
        if keys.next().is_some() {
            return None;
        }
        let all_same = order.iter().all(|v| {
            v.as_object()
                .is_some_and(|m| m.len() == 1 && m.contains_key(key))
        });
        all_same.then(|| FieldStrategy::Merge {
            key: Some(key.clone()),
        })
    } else {
        order
            .iter()
            .all(|v| !v.is_object() && !v.is_array())
            .then_some(FieldStrategy::Merge { key: None })
    }
}

/// The strategy to use when the table says "atomic" but the patch list deletes an item by a
/// single key (`{"name": "x", "$patch": "delete"}`).
fn infer_from_delete_items(patch_list: &[Value]) -> Option<FieldStrategy> {
    patch_list.iter().find_map(|item| {
        let m = item.as_object()?;
        if !is_delete_item(item) || m.len() != 2 {
            return None;
        }
        m.keys()
            .find(|k| k.as_str() != DIRECTIVE_MARKER)
            .map(|k| FieldStrategy::Merge {
                key: Some(k.clone()),
            })
    })
}

// ---------------------------------------------------------------------------------------------
// The merge itself.

struct Merger<'a> {
    meta: &'a dyn PatchMeta,
    /// The path of the field being merged (field names; list items add nothing).
    path: Vec<String>,
    /// The work charged so far (see [`MAX_MERGE_WORK`]).
    work: u64,
}

/// The result of merging a list: the merged list and, for `$setElementOrder`, the order of the
/// live list as Go's in-place editing leaves it.
struct MergedList {
    items: Vec<Value>,
    server_order: Vec<Value>,
}

impl Merger<'_> {
    /// Charges the work of comparing every item of a list of `a` items with every item of one
    /// of `b` items (and re-ordering them): the bound of every list algorithm here.
    fn charge(&mut self, a: usize, b: usize) -> Result<()> {
        let n = (a as u64).saturating_add(b as u64).saturating_add(1);
        self.work = self.work.saturating_add(n.saturating_mul(n));
        if self.work > MAX_MERGE_WORK {
            return Err(StrategicMergeError::TooComplex(format!(
                "the strategic merge patch is too complex to apply: merging its lists would take more than {MAX_MERGE_WORK} item comparisons"
            )));
        }
        Ok(())
    }

    fn lookup(&self) -> FieldStrategy {
        let path: Vec<&str> = self.path.iter().map(String::as_str).collect();
        self.meta.lookup(&path)
    }

    /// Merges `patch` into `original` (Go's `mergeMap`).
    fn merge_map(
        &mut self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
    ) -> Result<Map<String, Value>> {
        if let Some(directive) = patch.remove(DIRECTIVE_MARKER) {
            return match directive.as_str() {
                Some("replace") => Ok(fresh_map(patch).unwrap_or_default()),
                Some("delete") => Ok(Map::new()),
                _ => {
                    patch.insert(DIRECTIVE_MARKER.to_string(), directive.clone());
                    Err(bad_patch_type(&directive, &patch))
                }
            };
        }

        if let Some(Value::Array(retain)) = patch.get(RETAIN_KEYS_DIRECTIVE) {
            self.charge(retain.len(), patch.len() + original.len())?;
        }
        apply_retain_keys(&mut original, &mut patch)?;
        self.apply_set_element_order(&mut original, &mut patch)?;

        let mut deletion_lists = Vec::new();
        for (k, patch_value) in patch {
            if k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
                let field = extract_key(&k, DELETE_FROM_PRIMITIVE_LIST_PREFIX)?.to_string();
                deletion_lists.push((field, patch_value));
                continue;
            }
            if patch_value.is_null() {
                original.remove(&k);
                continue;
            }
            let current = original.remove(&k);
            let merged = match current {
                None => fresh(patch_value),
                Some(current) if kind(&current) != kind(&patch_value) => fresh(patch_value),
                Some(Value::Object(current)) => {
                    let Value::Object(patch_map) = patch_value else {
                        return Err(not_a_map(&patch_value));
                    };
                    self.path.push(k.clone());
                    let merged = self.merge_map(current, patch_map);
                    self.path.pop();
                    Some(Value::Object(merged?))
                }
                Some(Value::Array(current)) => {
                    let Value::Array(patch_list) = patch_value else {
                        return Err(unprocessable(format!("expected a list for {k}")));
                    };
                    self.path.push(k.clone());
                    let merged = self.merge_list_field(current, patch_list);
                    self.path.pop();
                    Some(Value::Array(merged?))
                }
                Some(_) => Some(patch_value),
            };
            if let Some(v) = merged {
                original.insert(k, v);
            }
        }

        for (field, patch_value) in deletion_lists {
            if patch_value.is_null() {
                // Like any null: the field itself goes (what Go does).
                original.remove(&field);
                continue;
            }
            if let (Some(Value::Array(current)), Value::Array(to_delete)) =
                (original.get_mut(&field), &patch_value)
            {
                self.charge(current.len(), to_delete.len())?;
                current.retain(|v| !to_delete.iter().any(|d| json_eq(d, v)));
            }
        }
        Ok(original)
    }

    /// Merges a list field (its name is the last element of `self.path`) present in both.
    fn merge_list_field(&mut self, current: Vec<Value>, patch: Vec<Value>) -> Result<Vec<Value>> {
        let mut strategy = self.lookup();
        if !strategy.is_merge() {
            if let Some(inferred) = infer_from_delete_items(&patch) {
                strategy = inferred;
            }
        }
        if strategy.is_merge() {
            let key = strategy.merge_key().map(str::to_string);
            Ok(self.merge_list(current, patch, key.as_deref())?.items)
        } else {
            Ok(fresh_list(patch))
        }
    }

    /// Merges two lists of a field that merges (Go's `mergeSlice`).
    fn merge_list(
        &mut self,
        original: Vec<Value>,
        patch: Vec<Value>,
        key: Option<&str>,
    ) -> Result<MergedList> {
        if original.is_empty() && patch.is_empty() {
            return Ok(MergedList {
                items: Vec::new(),
                server_order: Vec::new(),
            });
        }
        self.charge(original.len(), patch.len())?;
        let elem = element_kind(&[&original, &patch])?;
        if elem != Some(Kind::Object) {
            // A set of primitives: union, then order.
            let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
            for v in original.iter().chain(patch.iter()) {
                if !merged.iter().any(|m| json_eq(m, v)) {
                    merged.push(v.clone());
                }
            }
            let (patch_items, server_only) = partition_primitives(merged, &patch);
            let items =
                normalize_element_order(patch_items, server_only, &patch, &original, "", false)?;
            return Ok(MergedList {
                items,
                server_order: original,
            });
        }
        let Some(key) = key else {
            return Err(unprocessable(
                "cannot merge lists without merge key for type map",
            ));
        };

        // Special elements: deletions and the replace marker. `live` mirrors the live list as
        // Go's in-place `append`s leave it (capacity = length).
        let capacity = original.len();
        let mut live = original.clone();
        let mut current = original;
        let mut replace = false;
        let mut plain = Vec::with_capacity(patch.len());
        for item in patch {
            let Some(m) = item.as_object() else {
                return Err(not_a_map(&item));
            };
            match m.get(DIRECTIVE_MARKER) {
                None => plain.push(item),
                Some(directive) => match directive.as_str() {
                    Some("delete") => {
                        let value = m.get(key).ok_or_else(|| no_merge_key(&item, key))?;
                        while let Some(i) = find_by_key(&current, key, value)? {
                            current.remove(i);
                            // Go's `append(s[:i], s[i+1:]...)` in place: the tail shifts left
                            // and the old last item stays behind, doubled.
                            let last = current.len();
                            if i < last {
                                live[i..=last].rotate_left(1);
                                live[last] = live[last - 1].clone();
                            }
                        }
                    }
                    Some("replace") => replace = true,
                    Some("merge") => {
                        return Err(bad_request(
                            "merging lists cannot yet be specified in the patch",
                        ))
                    }
                    _ => return Err(bad_patch_type(directive, m)),
                },
            }
        }

        if replace {
            let items = fresh_list(plain);
            let items = normalize_slice_order(items.clone(), &items, key, true)?;
            return Ok(MergedList {
                items,
                server_order: live,
            });
        }

        let server_order = current.clone();
        let mut backed = true;
        for item in &plain {
            let m = item.as_object().ok_or_else(|| not_a_map(item))?;
            let value = m.get(key).ok_or_else(|| no_merge_key(item, key))?;
            match find_by_key(&current, key, value)? {
                Some(i) => {
                    let existing = std::mem::take(&mut current[i]);
                    let Value::Object(existing) = existing else {
                        return Err(not_a_map(&existing));
                    };
                    current[i] = Value::Object(self.merge_map(existing, m.clone())?);
                }
                None => {
                    if let Some(v) = fresh(item.clone()) {
                        if backed && current.len() < capacity {
                            live[current.len()] = v.clone();
                        } else {
                            backed = false;
                        }
                        current.push(v);
                    }
                }
            }
        }
        let (patch_items, server_only) = partition_maps(current, &plain, key)?;
        let items =
            normalize_element_order(patch_items, server_only, &plain, &server_order, key, true)?;
        Ok(MergedList {
            items,
            server_order: live,
        })
    }

    /// Processes every `$setElementOrder/<field>` of `patch` together with `<field>` (Go's
    /// `mergePatchIntoOriginal`), removing both from `patch`.
    fn apply_set_element_order(
        &mut self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
    ) -> Result<()> {
        let directive_keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
            .cloned()
            .collect();
        for directive_key in directive_keys {
            let Some(order) = patch.remove(&directive_key) else {
                continue;
            };
            let Value::Array(order) = order else {
                return Err(bad_request("invalid patch format of setElementOrder list"));
            };
            let field = extract_key(&directive_key, SET_ELEMENT_ORDER_PREFIX)?.to_string();

            let original_list = match original.get(&field) {
                None | Some(Value::Null) => None,
                Some(Value::Array(list)) => Some(list.clone()),
                Some(other) => {
                    return Err(unprocessable(format!(
                        "expected a list for {field}, but the object has {other}"
                    )))
                }
            };
            let patch_list = match patch.get(&field) {
                None => None,
                // `field: null` deletes the field; the order is moot.
                Some(Value::Null) => continue,
                Some(Value::Array(list)) => Some(list.clone()),
                Some(other) => {
                    return Err(bad_request(format!(
                        "expected a list for {field}, but the patch has {other}"
                    )))
                }
            };

            self.path.push(field.clone());
            let result = self.order_list_field(&order, original_list, patch_list);
            self.path.pop();
            if let Some(list) = result? {
                original.insert(field.clone(), Value::Array(list));
                patch.remove(&field);
            }
        }
        Ok(())
    }

    /// Merges and orders one list field for `$setElementOrder` (path already pushed).
    /// `None`: nothing to do here (the field is left to the main merge).
    fn order_list_field(
        &mut self,
        order: &[Value],
        original_list: Option<Vec<Value>>,
        patch_list: Option<Vec<Value>>,
    ) -> Result<Option<Vec<Value>>> {
        let mut strategy = self.lookup();
        if !strategy.is_merge() {
            match infer_from_set_element_order(order) {
                Some(inferred) => strategy = inferred,
                None => return Ok(None),
            }
        }
        let key = strategy.merge_key().map(str::to_string);
        let key = key.as_deref();
        let lengths =
            original_list.as_ref().map_or(0, Vec::len) + patch_list.as_ref().map_or(0, Vec::len);
        self.charge(order.len(), lengths)?;

        if let Some(p) = &patch_list {
            validate_set_element_order(p, order, key)?;
        }
        let elem = element_kind(&[
            original_list.as_deref().unwrap_or_default(),
            patch_list.as_deref().unwrap_or_default(),
        ])?;

        let (merged, server_order) = match (original_list, patch_list) {
            (None, None) => return Ok(None),
            (Some(o), None) => (o.clone(), o),
            (None, Some(p)) => (fresh_list(p), Vec::new()),
            (Some(o), Some(p)) => {
                let merged = self.merge_list(o, p, key)?;
                (merged.items, merged.server_order)
            }
        };
        let Some(elem) = elem else {
            // Nothing in either list: nothing to order.
            return Ok(Some(merged));
        };
        let is_map = elem == Kind::Object;
        let (patch_items, server_only) = match key {
            None => partition_primitives(merged, order),
            Some(k) => partition_maps(merged, order, k)?,
        };
        let ordered = normalize_element_order(
            patch_items,
            server_only,
            order,
            &server_order,
            key.unwrap_or_default(),
            is_map,
        )?;
        Ok(Some(ordered))
    }
}

/// Applies `$retainKeys` (Go's `applyRetainKeysDirective`): every key the patch sets must be
/// listed, and the original keeps only the listed keys.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<()> {
    let Some(retain) = patch.remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(bad_request("invalid patch format of retainKeys"));
    };
    let listed = |k: &str| retain.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null() || is_parallel_list_directive(k) {
            continue;
        }
        if !listed(k) {
            return Err(bad_request(format!(
                "invalid patch format of retainKeys: {k} is not in {}",
                Value::Array(retain.clone())
            )));
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::patch_meta::{BuiltinPatchMeta, NoPatchMeta};
    use serde_json::json;

    /// The patch metadata of Go's test type `MergeItem` (and `RetainKeysMergeItem`), which nests
    /// itself: the strategy depends on the field name only.
    struct MergeItemMeta;

    impl PatchMeta for MergeItemMeta {
        fn lookup(&self, path: &[&str]) -> FieldStrategy {
            match path.last().copied() {
                Some("mergingList" | "mergeItemPtr") => FieldStrategy::Merge {
                    key: Some("name".into()),
                },
                Some("mergingIntList") => FieldStrategy::Merge { key: None },
                Some("retainKeysMap") => FieldStrategy::RetainKeys,
                Some("retainKeysMergingList") => FieldStrategy::MergeRetainKeys {
                    key: Some("name".into()),
                },
                _ => FieldStrategy::Replace,
            }
        }
    }

    fn assert_no_directives(v: &Value) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    assert!(
                        k != DIRECTIVE_MARKER
                            && k != RETAIN_KEYS_DIRECTIVE
                            && !is_parallel_list_directive(k),
                        "directive {k} left in the result"
                    );
                    assert_no_directives(v);
                }
            }
            Value::Array(a) => a.iter().for_each(assert_no_directives),
            _ => {}
        }
    }

    fn apply_with(meta: &dyn PatchMeta, original: Value, patch: Value) -> Value {
        let out = apply_strategic_merge_patch(&original, &patch, meta).unwrap();
        assert_no_directives(&out);
        out
    }

    fn apply(original: Value, patch: Value) -> Value {
        apply_with(&MergeItemMeta, original, patch)
    }

    fn apply_err(original: Value, patch: Value) -> StrategicMergeError {
        apply_strategic_merge_patch(&original, &patch, &MergeItemMeta).unwrap_err()
    }

    fn deployment_meta() -> BuiltinPatchMeta {
        BuiltinPatchMeta::for_kind("apps", "Deployment")
    }

    // --- maps ------------------------------------------------------------------------------

    #[test]
    fn add_change_and_delete_fields() {
        assert_eq!(
            apply(json!({"name": 1, "other": "a"}), json!({"value": 1})),
            json!({"name": 1, "value": 1, "other": "a"})
        );
        assert_eq!(
            apply(
                json!({"name": 1, "other": "a"}),
                json!({"name": null, "value": 1})
            ),
            json!({"value": 1, "other": "a"})
        );
        assert_eq!(
            apply(
                json!({"name": "a", "other": "a"}),
                json!({"name": 1, "value": 1, "other": null})
            ),
            json!({"name": 1, "value": 1})
        );
    }

    #[test]
    fn null_for_missing_key_is_ignored() {
        assert_eq!(
            apply(json!({"name": 1}), json!({"value": null})),
            json!({"name": 1})
        );
    }

    #[test]
    fn empty_patch_changes_nothing() {
        let obj = json!({"name": 1, "mergingList": [{"name": 1}]});
        assert_eq!(apply(obj.clone(), json!({})), obj);
    }

    #[test]
    fn nested_maps_merge_and_delete() {
        assert_eq!(
            apply(
                json!({"simpleMap": {"key1": 1, "key2": 1, "other": "a"}}),
                json!({"simpleMap": {"key2": null, "key3": 3}})
            ),
            json!({"simpleMap": {"key1": 1, "key3": 3, "other": "a"}})
        );
    }

    #[test]
    fn removed_fields_of_unknown_types() {
        // Go's TestUnknownField "removed only", three-way.
        assert_eq!(
            apply(
                json!({"name": "foo", "scalar": true, "complex": {"nested": true}, "array": [1, 2, 3]}),
                json!({"complex": null, "scalar": null})
            ),
            json!({"array": [1, 2, 3], "name": "foo"})
        );
    }

    #[test]
    fn replace_directive_on_maps() {
        assert_eq!(
            apply(json!({"name": 1, "value": 1}), json!({"$patch": "replace"})),
            json!({})
        );
        assert_eq!(
            apply(
                json!({"name": 1, "value": 1}),
                json!({"other": "a", "$patch": "replace"})
            ),
            json!({"other": "a"})
        );
        assert_eq!(
            apply(
                json!({"simpleMap": {"a": "1", "b": "2"}, "name": 1}),
                json!({"simpleMap": {"$patch": "replace", "c": "3"}})
            ),
            json!({"simpleMap": {"c": "3"}, "name": 1})
        );
    }

    #[test]
    fn delete_directive_on_maps() {
        // Go: "delete map from nested map" leaves an empty map.
        assert_eq!(
            apply(
                json!({"simpleMap": {"key1": 1, "key2": 1}}),
                json!({"simpleMap": {"$patch": "delete"}})
            ),
            json!({"simpleMap": {}})
        );
        assert_eq!(
            apply(json!({"name": 1}), json!({"$patch": "delete"})),
            json!({})
        );
    }

    #[test]
    fn bad_directive_values_on_maps() {
        for bad in [json!("merge"), json!("bogus"), json!(1)] {
            let err = apply_err(
                json!({"simpleMap": {"a": "b"}}),
                json!({"simpleMap": {"$patch": bad}}),
            );
            assert_eq!(err.status_code(), 400);
            assert!(err.message().contains("unknown patch type"), "{err}");
        }
    }

    #[test]
    fn type_change_replaces() {
        assert_eq!(
            apply(json!({"value": "a"}), json!({"value": {"x": 1, "y": null}})),
            json!({"value": {"x": 1}})
        );
        assert_eq!(
            apply(json!({"value": {"x": 1}}), json!({"value": [1, 2]})),
            json!({"value": [1, 2]})
        );
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1}]}),
                json!({"mergingList": "x"})
            ),
            json!({"mergingList": "x"})
        );
    }

    #[test]
    fn documents_that_are_not_objects() {
        for patch in [json!([1]), json!("x"), json!(3)] {
            let err = apply_err(json!({}), patch);
            assert_eq!(err.status_code(), 400);
        }
        let err = apply_strategic_merge_patch(&json!([1]), &json!({}), &NoPatchMeta).unwrap_err();
        assert!(matches!(err, StrategicMergeError::BadRequest(_)));
        // A null patch changes nothing, a null original is an empty object.
        assert_eq!(apply(json!({"a": 1}), Value::Null), json!({"a": 1}));
        assert_eq!(apply(Value::Null, json!({"a": 1})), json!({"a": 1}));
    }

    // --- new values: nulls and directives never land -------------------------------------

    #[test]
    fn new_values_are_cleaned() {
        assert_eq!(
            apply(
                json!({"name": 1}),
                json!({"spec": {"a": 1, "b": null, "c": {"d": null, "e": [{"f": null, "g": 1}]}}})
            ),
            json!({"name": 1, "spec": {"a": 1, "c": {"e": [{"g": 1}]}}})
        );
        // A new map marked for deletion is left out; one marked for replacement keeps its
        // content.
        assert_eq!(
            apply(
                json!({"name": 1}),
                json!({"gone": {"$patch": "delete", "x": 1}, "kept": {"$patch": "replace", "y": 2}})
            ),
            json!({"name": 1, "kept": {"y": 2}})
        );
        // Parallel lists and $retainKeys inside a new value are dropped; items carrying $patch
        // too.
        assert_eq!(
            apply(
                json!({}),
                json!({"retainKeysMap": {
                    "$retainKeys": ["name", "mergingList"],
                    "$setElementOrder/mergingList": [{"name": "a"}],
                    "$deleteFromPrimitiveList/mergingIntList": [1],
                    "name": "x",
                    "mergingList": [{"name": "a"}, {"name": "b", "$patch": "delete"}, {"$patch": "replace"}]
                }})
            ),
            json!({"retainKeysMap": {"name": "x", "mergingList": [{"name": "a"}]}})
        );
    }

    #[test]
    fn new_list_item_is_cleaned() {
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1}]}),
                json!({"mergingList": [{"name": 2, "value": null, "mergingList": [{"name": 3, "$patch": "delete"}],
                                        "$setElementOrder/mergingList": [{"name": 3}]}]})
            ),
            json!({"mergingList": [{"name": 2, "mergingList": []}, {"name": 1}]})
        );
    }

    #[test]
    fn replaced_lists_are_cleaned() {
        assert_eq!(
            apply(
                json!({"nonMergingList": [{"name": 1}]}),
                json!({"nonMergingList": [{"name": 1, "$patch": "delete"}, {"name": 2, "value": null}]})
            ),
            json!({"nonMergingList": [{"name": 2}]})
        );
    }

    // --- lists merged by key ---------------------------------------------------------------

    #[test]
    fn merge_items_by_key() {
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
                json!({"mergingList": [{"name": 2, "value": 3}]})
            ),
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 3, "other": "b"}]})
        );
    }

    #[test]
    fn new_items_go_before_unrelated_server_items_without_set_element_order() {
        // Go orders patch items first when it cannot place them against the live items.
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1}]}),
                json!({"mergingList": [{"name": 2}]})
            ),
            json!({"mergingList": [{"name": 2}, {"name": 1}]})
        );
    }

    #[test]
    fn preserve_the_order_from_the_patch() {
        // Go: "preserve the order from the patch in a merging list".
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
                json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "other": "x"}]})
            ),
            json!({"mergingList": [
                {"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "value": "b", "other": "x"}
            ]})
        );
        // ... 2
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
                json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]})
            ),
            json!({"mergingList": [
                {"name": 2, "value": "b"}, {"name": 3, "value": "c"}, {"name": 1, "value": "a"}
            ]})
        );
    }

    #[test]
    fn delete_directive_in_list() {
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1}, {"name": 2}]}),
                json!({"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 2, "$patch": "delete"}]})
            ),
            json!({"mergingList": []})
        );
        // Deleting from an empty list, or an item that is not there.
        assert_eq!(
            apply(
                json!({"mergingList": []}),
                json!({"mergingList": [{"name": 1, "$patch": "delete"}]})
            ),
            json!({"mergingList": []})
        );
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 2, "other": "b"}]}),
                json!({"mergingList": [{"name": 1, "$patch": "delete"}]})
            ),
            json!({"mergingList": [{"name": 2, "other": "b"}]})
        );
    }

    #[test]
    fn delete_directive_removes_every_duplicate() {
        // Upstream deletes every item with the key value (kubernetes#58477 is still open).
        let original = json!({"mergingList": [
            {"name": 1}, {"name": 1}, {"name": 2, "value": "a"}, {"name": 3}, {"name": 3}
        ]});
        let expected = json!({"mergingList": [{"name": 2, "value": "a"}]});
        assert_eq!(
            apply(
                original.clone(),
                json!({"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 3, "$patch": "delete"}]})
            ),
            expected
        );
        assert_eq!(
            apply(
                original,
                json!({"mergingList": [
                    {"name": 1, "$patch": "delete"}, {"name": 1, "$patch": "delete"},
                    {"name": 3, "$patch": "delete"}, {"name": 3, "$patch": "delete"}
                ]})
            ),
            expected
        );
    }

    #[test]
    fn replace_directive_in_list() {
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1}, {"name": 2}]}),
                json!({"mergingList": [{"$patch": "replace"}]})
            ),
            json!({"mergingList": []})
        );
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1, "value": 1}, {"name": 2}]}),
                json!({"mergingList": [{"name": 3}, {"$patch": "replace"}, {"name": 1}]})
            ),
            json!({"mergingList": [{"name": 3}, {"name": 1}]})
        );
    }

    #[test]
    fn merge_empty_lists() {
        assert_eq!(
            apply(json!({"mergingList": []}), json!({"mergingList": []})),
            json!({"mergingList": []})
        );
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1}]}),
                json!({"mergingList": []})
            ),
            json!({"mergingList": [{"name": 1}]})
        );
    }

    #[test]
    fn list_directive_errors() {
        let original = json!({"mergingList": [{"name": 1, "value": "a"}]});
        let err = apply_err(original.clone(), json!({"mergingList": [{"value": "b"}]}));
        assert!(
            err.message()
                .contains("does not contain declared merge key: name"),
            "{err}"
        );
        assert_eq!(err.status_code(), 422);
        let err = apply_err(
            original.clone(),
            json!({"mergingList": [{"$patch": "delete"}]}),
        );
        assert!(
            err.message()
                .contains("does not contain declared merge key"),
            "{err}"
        );
        let err = apply_err(
            original.clone(),
            json!({"mergingList": [{"name": 1, "$patch": "merge"}]}),
        );
        assert!(
            err.message()
                .contains("merging lists cannot yet be specified"),
            "{err}"
        );
        assert_eq!(err.status_code(), 400);
        let err = apply_err(
            original.clone(),
            json!({"mergingList": [{"name": 1, "$patch": "bogus"}]}),
        );
        assert!(err.message().contains("unknown patch type"), "{err}");
        let err = apply_err(original.clone(), json!({"mergingList": [[1]]}));
        assert!(
            matches!(err, StrategicMergeError::Unprocessable(_)),
            "{err}"
        );
        let err = apply_err(original, json!({"mergingList": [{"name": 2}, "x"]}));
        assert!(err.message().contains("not identical"), "{err}");
        let err = apply_err(
            json!({"mergingIntList": [[1]]}),
            json!({"mergingIntList": [[2]]}),
        );
        assert_eq!(err.message(), "lists of lists are not supported");
    }

    #[test]
    fn merge_keys_compare_numbers_by_value() {
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 80, "value": "a"}]}),
                json!({"mergingList": [{"name": 80.0, "other": "b"}]})
            ),
            // One item: the keys match; the patch's value is taken for the key as for any field.
            json!({"mergingList": [{"name": 80.0, "value": "a", "other": "b"}]})
        );
    }

    #[test]
    fn non_merging_lists_are_replaced() {
        assert_eq!(
            apply(
                json!({"nonMergingIntList": [1, 2]}),
                json!({"nonMergingIntList": [2, 3]})
            ),
            json!({"nonMergingIntList": [2, 3]})
        );
        // Go: "replace non merging list nested in merging list", three-way.
        assert_eq!(
            apply(
                json!({"mergingList": [
                    {"name": 1, "other": "a", "nonMergingList": [{"name": 1}, {"name": 2, "value": 2}]},
                    {"name": 2, "other": "b"}
                ]}),
                json!({
                    "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                    "mergingList": [{"name": 1, "nonMergingList": [{"name": 1, "value": 1}]}]
                })
            ),
            json!({"mergingList": [
                {"name": 1, "other": "a", "nonMergingList": [{"name": 1, "value": 1}]},
                {"name": 2, "other": "b"}
            ]})
        );
    }

    #[test]
    fn nested_merging_lists() {
        // Go: "add field to map in merging list nested in merging list with value conflict".
        assert_eq!(
            apply(
                json!({"mergingList": [
                    {"name": 1, "other": "a", "mergingList": [
                        {"name": 1, "value": "a", "other": "c"}, {"name": 2, "value": "b", "other": "d"}
                    ]},
                    {"name": 2, "other": "b"}
                ]}),
                json!({
                    "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                    "mergingList": [{
                        "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                        "name": 1,
                        "mergingList": [{"name": 1, "value": 1}, {"name": 2, "value": 2}]
                    }]
                })
            ),
            json!({"mergingList": [
                {"name": 1, "other": "a", "mergingList": [
                    {"name": 1, "value": 1, "other": "c"}, {"name": 2, "value": 2, "other": "d"}
                ]},
                {"name": 2, "other": "b"}
            ]})
        );
        // ... "with deletion conflict", reordered.
        assert_eq!(
            apply(
                json!({"mergingList": [
                    {"name": 1, "other": "a", "mergingList": [{"name": 2, "value": 2, "other": "d"}]},
                    {"name": 2, "other": "b"}
                ]}),
                json!({
                    "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                    "mergingList": [{
                        "$setElementOrder/mergingList": [{"name": 2}, {"name": 1}],
                        "name": 1,
                        "mergingList": [{"name": 1, "value": 1}]
                    }]
                })
            ),
            json!({"mergingList": [
                {"name": 1, "other": "a", "mergingList": [
                    {"name": 2, "value": 2, "other": "d"}, {"name": 1, "value": 1}
                ]},
                {"name": 2, "other": "b"}
            ]})
        );
    }

    #[test]
    fn merge_list_by_pointer_field() {
        // Go: "add map to merging list by pointer", three-way.
        assert_eq!(
            apply(
                json!({"mergeItemPtr": [{"name": 1, "other": "a"}, {"name": 3}]}),
                json!({"$setElementOrder/mergeItemPtr": [{"name": 1}, {"name": 2}], "mergeItemPtr": [{"name": 2}]})
            ),
            json!({"mergeItemPtr": [{"name": 1, "other": "a"}, {"name": 2}, {"name": 3}]})
        );
    }

    // --- primitive lists ------------------------------------------------------------------

    #[test]
    fn primitive_lists_merge_as_sets() {
        assert_eq!(
            apply(
                json!({"mergingIntList": [1, 2]}),
                json!({"mergingIntList": [2, 3]})
            ),
            json!({"mergingIntList": [1, 2, 3]})
        );
        assert_eq!(
            apply(
                json!({"mergingIntList": [1, 2, 3]}),
                json!({"mergingIntList": [3, 1, 2]})
            ),
            json!({"mergingIntList": [3, 1, 2]})
        );
        assert_eq!(
            apply(
                json!({"mergingIntList": [1, 2, 3]}),
                json!({"mergingIntList": [3, 1]})
            ),
            json!({"mergingIntList": [2, 3, 1]})
        );
    }

    #[test]
    fn delete_from_primitive_list() {
        assert_eq!(
            apply(
                json!({"mergingIntList": [1, 2, 3, 4]}),
                json!({"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]})
            ),
            json!({"mergingIntList": [1, 2, 4]})
        );
        assert_eq!(
            apply(
                json!({"mergingIntList": [1, 2, 3, 3, 4]}),
                json!({"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]})
            ),
            json!({"mergingIntList": [1, 2, 4]})
        );
        // Without $setElementOrder too.
        assert_eq!(
            apply(
                json!({"mergingIntList": [1, 2, 3]}),
                json!({"$deleteFromPrimitiveList/mergingIntList": [2, 9]})
            ),
            json!({"mergingIntList": [1, 3]})
        );
    }

    #[test]
    fn add_and_delete_in_primitive_list() {
        // Go: "add and delete items in lists of scalars", two-way.
        assert_eq!(
            apply(
                json!({"mergingIntList": [1, 2, 3]}),
                json!({
                    "$setElementOrder/mergingIntList": [1, 2, 4],
                    "$deleteFromPrimitiveList/mergingIntList": [3],
                    "mergingIntList": [4]
                })
            ),
            json!({"mergingIntList": [1, 2, 4]})
        );
    }

    #[test]
    fn delete_from_primitive_list_edge_cases() {
        // Nothing to delete from: the field is not created (kubernetes#105146).
        assert_eq!(
            apply(
                json!({"name": 1}),
                json!({"$deleteFromPrimitiveList/mergingIntList": [1]})
            ),
            json!({"name": 1})
        );
        // Deletion happens whatever the field's strategy (kubernetes#110407).
        assert_eq!(
            apply(
                json!({"nonMergingIntList": [1, 2, 3]}),
                json!({"$deleteFromPrimitiveList/nonMergingIntList": [2]})
            ),
            json!({"nonMergingIntList": [1, 3]})
        );
        // A null deletion list deletes the field, like any null.
        assert_eq!(
            apply(
                json!({"mergingIntList": [1], "name": 1}),
                json!({"$deleteFromPrimitiveList/mergingIntList": null})
            ),
            json!({"name": 1})
        );
        let err = apply_err(json!({}), json!({"$deleteFromPrimitiveList": [1]}));
        assert_eq!(err.message(), "invalid patch format of primitive list");
        let err = apply_err(json!({}), json!({"$deleteFromPrimitiveListX/a": [1]}));
        assert_eq!(err.status_code(), 400);
    }

    // --- $setElementOrder -----------------------------------------------------------------

    #[test]
    fn set_element_order_with_items_missing_from_the_list() {
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1}, {"name": 3}]}),
                json!({
                    "$setElementOrder/mergingList": [{"name": 3}, {"name": 2}, {"name": 1}],
                    "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]
                })
            ),
            json!({"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]})
        );
        assert_eq!(
            apply(
                json!({"mergingIntList": [1, 3]}),
                json!({"$setElementOrder/mergingIntList": [3, 2, 1]})
            ),
            json!({"mergingIntList": [3, 1]})
        );
    }

    #[test]
    fn set_element_order_must_match_the_patch_list() {
        let err = apply_err(
            json!({"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]
            }),
        );
        assert!(err.message().contains("doesn't match"), "{err}");
        assert_eq!(err.status_code(), 400);
        let err = apply_err(
            json!({"mergingIntList": [1, 3, 2]}),
            json!({"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3, 1]}),
        );
        assert!(err.message().contains("doesn't match"), "{err}");
    }

    #[test]
    fn set_element_order_format_errors() {
        let err = apply_err(
            json!({}),
            json!({"$setElementOrder/mergingList": {"name": 1}}),
        );
        assert_eq!(
            err.message(),
            "invalid patch format of setElementOrder list"
        );
        let err = apply_err(json!({}), json!({"$setElementOrder": [1]}));
        assert_eq!(
            err.message(),
            "invalid patch format of setElementOrder list"
        );
        let err = apply_err(
            json!({"mergingList": [{"name": 1}]}),
            json!({"$setElementOrder/mergingList": [{"other": 1}], "mergingList": [{"name": 1}]}),
        );
        assert!(err.message().contains("merge key"), "{err}");
    }

    #[test]
    fn merge_lists_of_maps_with_set_element_order() {
        // Go: "merge lists of maps", two-way and three-way.
        let patch = json!({
            "$setElementOrder/mergingList": [{"name": 4}, {"name": 1}, {"name": 2}, {"name": 3}],
            "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}]
        });
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1}, {"name": 2, "value": 2}]}),
                patch.clone()
            ),
            json!({"mergingList": [
                {"name": 4, "value": 4}, {"name": 1}, {"name": 2, "value": 2}, {"name": 3, "value": 3}
            ]})
        );
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
                patch
            ),
            json!({"mergingList": [
                {"name": 4, "value": 4}, {"name": 1, "other": "a"},
                {"name": 2, "value": 2, "other": "b"}, {"name": 3, "value": 3}
            ]})
        );
    }

    #[test]
    fn add_field_to_map_in_merging_list_with_conflict() {
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 3, "value": 2, "other": "b"}]}),
                json!({
                    "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                    "mergingList": [{"name": 1, "value": 1}, {"name": 2, "value": 2}]
                })
            ),
            json!({"mergingList": [
                {"name": 1, "value": 1, "other": "a"}, {"name": 2, "value": 2},
                {"name": 3, "value": 2, "other": "b"}
            ]})
        );
    }

    #[test]
    fn delete_field_from_map_in_merging_list() {
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1, "value": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
                json!({
                    "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                    "mergingList": [{"name": 1, "value": null}]
                })
            ),
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]})
        );
    }

    #[test]
    fn delete_map_from_merging_list_with_set_element_order() {
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1}, {"name": 2, "other": "b"}]}),
                json!({"$setElementOrder/mergingList": [{"name": 2}], "mergingList": [{"name": 1, "$patch": "delete"}]})
            ),
            json!({"mergingList": [{"name": 2, "other": "b"}]})
        );
        // Go: "delete missing map from merging list with conflict".
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 3, "other": "a"}]}),
                json!({
                    "$setElementOrder/mergingList": [{"name": 2}],
                    "mergingList": [{"name": 2}, {"name": 1, "$patch": "delete"}]
                })
            ),
            json!({"mergingList": [{"name": 2}, {"name": 3, "other": "a"}]})
        );
    }

    #[test]
    fn add_and_delete_maps_keeps_server_items_where_go_puts_them() {
        // Go: "add map and delete map from merging list", three-way. The server-only item 4
        // lands where Go's in-place editing of the live list puts it.
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1}, {"name": 2, "other": "b"}, {"name": 4, "other": "c"}]}),
                json!({
                    "$setElementOrder/mergingList": [{"name": 2}, {"name": 3}],
                    "mergingList": [{"name": 3}, {"name": 1, "$patch": "delete"}]
                })
            ),
            json!({"mergingList": [{"name": 2, "other": "b"}, {"name": 4, "other": "c"}, {"name": 3}]})
        );
        // ... "with conflict".
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 4, "other": "c"}]}),
                json!({
                    "$setElementOrder/mergingList": [{"name": 2}, {"name": 3}],
                    "mergingList": [{"name": 2}, {"name": 3}, {"name": 1, "$patch": "delete"}]
                })
            ),
            json!({"mergingList": [{"name": 4, "other": "c"}, {"name": 2}, {"name": 3}]})
        );
    }

    #[test]
    fn set_element_order_on_maps_preserves_order() {
        let original = json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]});
        // add an item
        assert_eq!(
            apply(
                original.clone(),
                json!({
                    "$setElementOrder/mergingList": [{"name": 3}, {"name": 1}, {"name": 2}],
                    "mergingList": [{"name": 3, "value": 3}]
                })
            ),
            json!({"mergingList": [
                {"name": 3, "value": 3}, {"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}
            ]})
        );
        // add several
        assert_eq!(
            apply(
                original,
                json!({
                    "$setElementOrder/mergingList": [{"name": 1}, {"name": 4}, {"name": 2}, {"name": 3}],
                    "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}]
                })
            ),
            json!({"mergingList": [
                {"name": 1, "other": "a"}, {"name": 4, "value": 4},
                {"name": 2, "value": 2, "other": "b"}, {"name": 3, "value": 3}
            ]})
        );
        let current = json!({"mergingList": [
            {"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}, {"name": 3, "value": 3}
        ]});
        // delete
        assert_eq!(
            apply(
                current.clone(),
                json!({
                    "$setElementOrder/mergingList": [{"name": 2}, {"name": 1}],
                    "mergingList": [{"name": 3, "$patch": "delete"}]
                })
            ),
            json!({"mergingList": [{"name": 2, "value": 2, "other": "b"}, {"name": 1, "other": "a"}]})
        );
        // change
        assert_eq!(
            apply(
                current.clone(),
                json!({
                    "$setElementOrder/mergingList": [{"name": 2}, {"name": 3}, {"name": 1}],
                    "mergingList": [{"name": 3, "value": "x"}]
                })
            ),
            json!({"mergingList": [
                {"name": 2, "value": 2, "other": "b"}, {"name": 3, "value": "x"}, {"name": 1, "other": "a"}
            ]})
        );
        // add and delete
        assert_eq!(
            apply(
                current,
                json!({
                    "$setElementOrder/mergingList": [{"name": 4}, {"name": 2}, {"name": 1}],
                    "mergingList": [{"name": 4, "value": 4}, {"name": 3, "$patch": "delete"}]
                })
            ),
            json!({"mergingList": [
                {"name": 4, "value": 4}, {"name": 2, "value": 2, "other": "b"}, {"name": 1, "other": "a"}
            ]})
        );
    }

    #[test]
    fn set_element_order_with_server_only_items() {
        let order = json!({"$setElementOrder/mergingList": [{"name": 4}, {"name": 2}, {"name": 3}, {"name": 1}]});
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 3}, {"name": 4}, {"name": 2}]}),
                order.clone()
            ),
            json!({"mergingList": [{"name": 4}, {"name": 2}, {"name": 3}, {"name": 1, "other": "a"}]})
        );
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 3}, {"name": 4}, {"name": 2}, {"name": 9}]}),
                order
            ),
            json!({"mergingList": [{"name": 4}, {"name": 2}, {"name": 3}, {"name": 1, "other": "a"}, {"name": 9}]})
        );
        let order = json!({"$setElementOrder/mergingList": [{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}]});
        assert_eq!(
            apply(
                json!({"mergingList": [{"name": 1}, {"name": 2}, {"name": 9}, {"name": 3}, {"name": 4}]}),
                order.clone()
            ),
            json!({"mergingList": [{"name": 2}, {"name": 1}, {"name": 9}, {"name": 4}, {"name": 3}]})
        );
        assert_eq!(
            apply(
                json!({"mergingList": [
                    {"name": 1}, {"name": 2}, {"name": 7}, {"name": 9}, {"name": 8}, {"name": 3}, {"name": 4}
                ]}),
                order
            ),
            json!({"mergingList": [
                {"name": 2}, {"name": 1}, {"name": 7}, {"name": 9}, {"name": 8}, {"name": 4}, {"name": 3}
            ]})
        );
    }

    #[test]
    fn set_element_order_on_int_lists() {
        let cases = [
            (
                json!([1, 2]),
                json!({"$setElementOrder/mergingIntList": [3, 1, 2], "mergingIntList": [3]}),
                json!([3, 1, 2]),
            ),
            (
                json!([1, 4, 2]),
                json!({"$setElementOrder/mergingIntList": [3, 1, 2], "mergingIntList": [3]}),
                json!([3, 1, 4, 2]),
            ),
            (
                json!([1, 2, 4]),
                json!({"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3]}),
                json!([1, 2, 3, 4]),
            ),
            (
                json!([1, 2]),
                json!({"$setElementOrder/mergingIntList": [1, 4, 2, 3], "mergingIntList": [4, 3]}),
                json!([1, 4, 2, 3]),
            ),
            (
                json!([1, 2, 3]),
                json!({"$setElementOrder/mergingIntList": [2, 1], "$deleteFromPrimitiveList/mergingIntList": [3]}),
                json!([2, 1]),
            ),
            (
                json!([1, 2, 3]),
                json!({"$setElementOrder/mergingIntList": [4, 2, 1], "mergingIntList": [4], "$deleteFromPrimitiveList/mergingIntList": [3]}),
                json!([4, 2, 1]),
            ),
            (
                json!([1, 3, 4, 2]),
                json!({"$setElementOrder/mergingIntList": [4, 2, 3, 1]}),
                json!([4, 2, 3, 1]),
            ),
            (
                json!([1, 3, 4, 2, 9]),
                json!({"$setElementOrder/mergingIntList": [4, 2, 3, 1]}),
                json!([4, 2, 3, 1, 9]),
            ),
            (
                json!([1, 2, 9, 3, 4]),
                json!({"$setElementOrder/mergingIntList": [2, 1, 4, 3]}),
                json!([2, 1, 9, 4, 3]),
            ),
            (
                json!([1, 2, 7, 9, 8, 3, 4]),
                json!({"$setElementOrder/mergingIntList": [2, 1, 4, 3]}),
                json!([2, 1, 7, 9, 8, 4, 3]),
            ),
        ];
        for (original, patch, expected) in cases {
            assert_eq!(
                apply(json!({"mergingIntList": original.clone()}), patch.clone()),
                json!({"mergingIntList": expected}),
                "{original} + {patch}"
            );
        }
    }

    #[test]
    fn set_element_order_with_duplicates() {
        // Go: "behavior of set element order for a merging list with duplicate".
        assert_eq!(
            apply(
                json!({"mergingList": [
                    {"name": 1}, {"name": 2, "value": "dup1"}, {"name": 3}, {"name": 2, "value": "dup2"}, {"name": 4}
                ]}),
                json!({"$setElementOrder/mergingList": [
                    {"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}, {"name": 2}
                ]})
            ),
            json!({"mergingList": [
                {"name": 2, "value": "dup1"}, {"name": 2, "value": "dup2"}, {"name": 1}, {"name": 4}, {"name": 3}
            ]})
        );
        assert_eq!(
            apply(
                json!({"mergingIntList": [1, 2, 3, 2, 4]}),
                json!({"$setElementOrder/mergingIntList": [2, 1, 4, 3, 2]})
            ),
            json!({"mergingIntList": [2, 2, 1, 4, 3]})
        );
    }

    #[test]
    fn set_element_order_for_a_list_the_original_lacks() {
        assert_eq!(
            apply(
                json!({"name": 1}),
                json!({
                    "$setElementOrder/mergingList": [{"name": "a"}, {"name": "b"}],
                    "mergingList": [{"name": "a", "x": null}, {"name": "b"}, {"name": "c", "$patch": "delete"}]
                })
            ),
            json!({"name": 1, "mergingList": [{"name": "a"}, {"name": "b"}]})
        );
        // Nothing anywhere: nothing happens.
        assert_eq!(
            apply(
                json!({"name": 1}),
                json!({"$setElementOrder/mergingList": [{"name": "a"}]})
            ),
            json!({"name": 1})
        );
    }

    #[test]
    fn reorder_two_lists_and_delete() {
        // Go: "delete and reorder in one list, reorder in another".
        assert_eq!(
            apply(
                json!({
                    "mergingList": [{"name": "a", "value": "a"}, {"name": "b", "value": "b"}],
                    "mergeItemPtr": [{"name": "c", "value": "c"}, {"name": "d", "value": "d"}]
                }),
                json!({
                    "$setElementOrder/mergingList": [{"name": "b"}],
                    "$setElementOrder/mergeItemPtr": [{"name": "d"}, {"name": "c"}],
                    "mergingList": [{"$patch": "delete", "name": "a"}]
                })
            ),
            json!({
                "mergingList": [{"name": "b", "value": "b"}],
                "mergeItemPtr": [{"name": "d", "value": "d"}, {"name": "c", "value": "c"}]
            })
        );
    }

    // --- $retainKeys ----------------------------------------------------------------------

    #[test]
    fn retain_keys_without_directive_merges() {
        assert_eq!(
            apply(
                json!({"retainKeysMap": {"name": "foo"}}),
                json!({"retainKeysMap": {"value": "bar"}})
            ),
            json!({"retainKeysMap": {"name": "foo", "value": "bar"}})
        );
        assert_eq!(
            apply(
                json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
                json!({"retainKeysMap": {"value": null}})
            ),
            json!({"retainKeysMap": {"name": "foo"}})
        );
        assert_eq!(
            apply(
                json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
                json!({"retainKeysMap": {}})
            ),
            json!({"retainKeysMap": {"name": "foo", "value": "a"}})
        );
        assert_eq!(
            apply(
                json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]}),
                json!({"retainKeysMergingList": [{"name": "foo", "value": null}]})
            ),
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}]})
        );
    }

    #[test]
    fn retain_keys_clears_unlisted_fields() {
        assert_eq!(
            apply(
                json!({"retainKeysMap": {"value": "foo"}}),
                json!({"retainKeysMap": {"$retainKeys": ["other"], "other": "bar"}})
            ),
            json!({"retainKeysMap": {"other": "bar"}})
        );
        // discriminated union
        assert_eq!(
            apply(
                json!({"retainKeysMap": {"name": "type1", "value": "foo"}}),
                json!({"retainKeysMap": {"$retainKeys": ["name", "other"], "name": "type2", "other": "bar"}})
            ),
            json!({"retainKeysMap": {"name": "type2", "other": "bar"}})
        );
        assert_eq!(
            apply(
                json!({"retainKeysMap": {"name": "foo", "value": "bar", "other": "a"}}),
                json!({"retainKeysMap": {"$retainKeys": ["name"], "value": null}})
            ),
            json!({"retainKeysMap": {"name": "foo"}})
        );
        assert_eq!(
            apply(
                json!({"retainKeysMap": {"name": "foo", "value": "bar", "other": "a"}}),
                json!({"retainKeysMap": {"$retainKeys": ["name", "value"]}})
            ),
            json!({"retainKeysMap": {"name": "foo", "value": "bar"}})
        );
    }

    #[test]
    fn retain_keys_with_nested_values() {
        assert_eq!(
            apply(
                json!({"retainKeysMap": {"name": "foo", "value": "bar", "simpleMap": {"key1": "a", "key3": "c"}}}),
                json!({"retainKeysMap": {"$retainKeys": ["name", "simpleMap", "value"], "simpleMap": {"key2": "b"}}})
            ),
            json!({"retainKeysMap": {"name": "foo", "value": "bar", "simpleMap": {"key1": "a", "key2": "b", "key3": "c"}}})
        );
        assert_eq!(
            apply(
                json!({"retainKeysMap": {"name": "foo", "nonMergingList": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}}),
                json!({"retainKeysMap": {
                    "$retainKeys": ["name", "nonMergingList", "value"], "value": "bar",
                    "nonMergingList": [{"name": "a"}, {"name": "b"}]
                }})
            ),
            json!({"retainKeysMap": {"name": "foo", "value": "bar", "nonMergingList": [{"name": "a"}, {"name": "b"}]}})
        );
        assert_eq!(
            apply(
                json!({"retainKeysMap": {"name": "foo", "nonMergingList": [{"name": "a"}]}}),
                json!({"retainKeysMap": {"$retainKeys": ["name", "value"], "value": "bar", "nonMergingList": null}})
            ),
            json!({"retainKeysMap": {"name": "foo", "value": "bar"}})
        );
    }

    #[test]
    fn retain_keys_with_nested_merging_lists() {
        assert_eq!(
            apply(
                json!({"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2, 3]}}),
                json!({"retainKeysMap": {
                    "$retainKeys": ["mergingIntList", "name", "value"],
                    "$setElementOrder/mergingIntList": [1, 2], "value": "bar"
                }})
            ),
            json!({"retainKeysMap": {"name": "foo", "value": "bar", "mergingIntList": [1, 2, 3]}})
        );
        assert_eq!(
            apply(
                json!({"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2, 3]}}),
                json!({"retainKeysMap": {
                    "$setElementOrder/mergingIntList": [1, 2, 4],
                    "$retainKeys": ["mergingIntList", "name"], "mergingIntList": [4]
                }})
            ),
            json!({"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2, 4, 3]}})
        );
        assert_eq!(
            apply(
                json!({"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2, 3, 4]}}),
                json!({"retainKeysMap": {
                    "$retainKeys": ["mergingIntList", "name"],
                    "$deleteFromPrimitiveList/mergingIntList": [2],
                    "$setElementOrder/mergingIntList": [1, 3]
                }})
            ),
            json!({"retainKeysMap": {"name": "foo", "mergingIntList": [1, 3, 4]}})
        );
        assert_eq!(
            apply(
                json!({"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2, 3, 4]}}),
                json!({"retainKeysMap": {
                    "$retainKeys": ["mergingIntList", "name"], "mergingIntList": [5],
                    "$deleteFromPrimitiveList/mergingIntList": [2],
                    "$setElementOrder/mergingIntList": [1, 3, 5]
                }})
            ),
            json!({"retainKeysMap": {"name": "foo", "mergingIntList": [1, 3, 5, 4]}})
        );
        assert_eq!(
            apply(
                json!({"retainKeysMap": {"name": "foo", "mergingList": [{"name": "a"}, {"name": "b"}, {"name": "x"}]}}),
                json!({"retainKeysMap": {
                    "$retainKeys": ["mergingList", "name"],
                    "$setElementOrder/mergingList": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
                    "mergingList": [{"name": "c"}]
                }})
            ),
            json!({"retainKeysMap": {"name": "foo", "mergingList": [{"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "x"}]}})
        );
        assert_eq!(
            apply(
                json!({"retainKeysMap": {"name": "foo", "mergingList": [{"name": "a"}, {"name": "b"}, {"name": "x"}]}}),
                json!({"retainKeysMap": {
                    "$retainKeys": ["mergingList", "name"],
                    "$setElementOrder/mergingList": [{"name": "a"}],
                    "mergingList": [{"name": "b", "$patch": "delete"}]
                }})
            ),
            json!({"retainKeysMap": {"name": "foo", "mergingList": [{"name": "a"}, {"name": "x"}]}})
        );
    }

    #[test]
    fn retain_keys_in_list_items() {
        assert_eq!(
            apply(
                json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "new", "other": "x"}]}),
                json!({
                    "$setElementOrder/retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}],
                    "retainKeysMergingList": [{"$retainKeys": ["name", "value"], "name": "foo", "value": "modified"}]
                })
            ),
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "modified"}]})
        );
        assert_eq!(
            apply(
                json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a", "other": "x"}]}),
                json!({
                    "$setElementOrder/retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}],
                    "retainKeysMergingList": [{"$retainKeys": ["name", "value"], "name": "foo"}]
                })
            ),
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]})
        );
    }

    #[test]
    fn retain_keys_errors() {
        let err = apply_err(
            json!({"retainKeysMap": {"name": "a"}}),
            json!({"retainKeysMap": {"$retainKeys": "name"}}),
        );
        assert_eq!(err.message(), "invalid patch format of retainKeys");
        let err = apply_err(
            json!({"retainKeysMap": {"name": "a"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name"], "value": "x"}}),
        );
        assert!(err.message().contains("retainKeys"), "{err}");
        assert_eq!(err.status_code(), 400);
    }

    // --- when the table has a gap ---------------------------------------------------------

    #[test]
    fn merge_inferred_from_set_element_order_and_delete_items() {
        let original = json!({"items": [{"id": "a", "v": 1}, {"id": "b", "v": 2}]});
        assert_eq!(
            apply_with(
                &NoPatchMeta,
                original.clone(),
                json!({
                    "$setElementOrder/items": [{"id": "a"}, {"id": "b"}, {"id": "c"}],
                    "items": [{"id": "a", "v": 9}, {"id": "c", "v": 3}]
                })
            ),
            json!({"items": [{"id": "a", "v": 9}, {"id": "b", "v": 2}, {"id": "c", "v": 3}]})
        );
        assert_eq!(
            apply_with(
                &NoPatchMeta,
                original.clone(),
                json!({"items": [{"id": "a", "$patch": "delete"}]})
            ),
            json!({"items": [{"id": "b", "v": 2}]})
        );
        assert_eq!(
            apply_with(
                &NoPatchMeta,
                json!({"tags": ["x", "y"]}),
                json!({"$setElementOrder/tags": ["x", "y", "z"], "tags": ["z"]})
            ),
            json!({"tags": ["x", "y", "z"]})
        );
        // Without a directive an atomic list is replaced.
        assert_eq!(
            apply_with(&NoPatchMeta, original, json!({"items": [{"id": "c"}]})),
            json!({"items": [{"id": "c"}]})
        );
    }

    // --- kubectl ---------------------------------------------------------------------------

    fn live_deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web", "namespace": "default", "generation": 1,
                "labels": {"app": "web", "tier": "front"},
                "annotations": {"deployment.kubernetes.io/revision": "1"}
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "web", "image": "nginx:1.14",
                                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                "terminationMessagePath": "/dev/termination-log",
                                "imagePullPolicy": "IfNotPresent"
                            },
                            {"name": "sidecar", "image": "busybox", "args": ["sleep", "infinity"]}
                        ],
                        "volumes": [{"name": "data", "emptyDir": {}}],
                        "restartPolicy": "Always",
                        "dnsPolicy": "ClusterFirst"
                    }
                }
            },
            "status": {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}
        })
    }

    fn container<'v>(obj: &'v Value, name: &str) -> &'v Value {
        obj["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
    }

    #[test]
    fn kubectl_set_image() {
        let out = apply_with(
            &deployment_meta(),
            live_deployment(),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}}),
        );
        let web = container(&out, "web");
        assert_eq!(web["image"], "nginx:1.25");
        assert_eq!(
            web["env"],
            live_deployment()["spec"]["template"]["spec"]["containers"][0]["env"]
        );
        assert_eq!(web["terminationMessagePath"], "/dev/termination-log");
        let names: Vec<&Value> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["name"])
            .collect();
        assert_eq!(names, [&json!("web"), &json!("sidecar")]);
        assert_eq!(container(&out, "sidecar")["image"], "busybox");
    }

    #[test]
    fn kubectl_label_and_annotate() {
        let out = apply_with(
            &deployment_meta(),
            live_deployment(),
            json!({"metadata": {"labels": {"env": "prod", "tier": null}, "annotations": {"note": "x"}}}),
        );
        assert_eq!(
            out["metadata"]["labels"],
            json!({"app": "web", "env": "prod"})
        );
        assert_eq!(
            out["metadata"]["annotations"],
            json!({"deployment.kubernetes.io/revision": "1", "note": "x"})
        );
        let mut expected = live_deployment();
        expected["metadata"]["labels"] = json!({"app": "web", "env": "prod"});
        expected["metadata"]["annotations"]["note"] = json!("x");
        assert_eq!(out, expected);
    }

    #[test]
    fn kubectl_scale_and_rollout_restart() {
        let out = apply_with(
            &deployment_meta(),
            live_deployment(),
            json!({"spec": {"replicas": 5}}),
        );
        assert_eq!(out["spec"]["replicas"], 5);
        let out = apply_with(
            &deployment_meta(),
            out,
            json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"
            }}}}}),
        );
        assert_eq!(
            out["spec"]["template"]["metadata"],
            json!({"labels": {"app": "web"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}})
        );
        assert_eq!(out["spec"]["replicas"], 5);
    }

    #[test]
    fn kubectl_apply_three_way_patch() {
        // What kubectl sends after changing the image, dropping env B, adding port 443 and
        // scaling to 3 in the applied file.
        let patch = json!({
            "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"}},
            "spec": {
                "replicas": 3,
                "template": {"spec": {
                    "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                    "containers": [{
                        "$setElementOrder/env": [{"name": "A"}],
                        "$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 443}],
                        "env": [{"$patch": "delete", "name": "B"}],
                        "image": "nginx:1.16",
                        "name": "web",
                        "ports": [{"containerPort": 443}]
                    }]
                }}
            }
        });
        let out = apply_with(&deployment_meta(), live_deployment(), patch);
        assert_eq!(out["spec"]["replicas"], 3);
        let web = container(&out, "web");
        assert_eq!(web["image"], "nginx:1.16");
        assert_eq!(web["env"], json!([{"name": "A", "value": "1"}]));
        assert_eq!(
            web["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}])
        );
        assert_eq!(web["imagePullPolicy"], "IfNotPresent");
        assert_eq!(
            container(&out, "sidecar")["args"],
            json!(["sleep", "infinity"])
        );
        assert_eq!(out["status"], live_deployment()["status"]);
        assert_eq!(
            out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            "{...}"
        );
        // Applying the same patch again changes nothing more.
        let again = apply_with(
            &deployment_meta(),
            out.clone(),
            json!({
                "spec": {"template": {"spec": {
                    "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                    "containers": [{"$setElementOrder/env": [{"name": "A"}], "name": "web",
                                    "env": [{"$patch": "delete", "name": "B"}]}]
                }}}
            }),
        );
        assert_eq!(again, out);
    }

    #[test]
    fn kubectl_apply_replaces_a_container_next_to_an_injected_one() {
        let mut live = live_deployment();
        live["spec"]["template"]["spec"]["containers"] = json!([
            {"name": "app", "image": "app:1"},
            {"name": "old", "image": "old:1"},
            {"name": "istio-proxy", "image": "proxy:1"}
        ]);
        let out = apply_with(
            &deployment_meta(),
            live,
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "new"}],
                "containers": [{"name": "new", "image": "new:1"}, {"$patch": "delete", "name": "old"}]
            }}}}),
        );
        // The order Go's apiserver produces.
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([
                {"name": "app", "image": "app:1"},
                {"name": "istio-proxy", "image": "proxy:1"},
                {"name": "new", "image": "new:1"}
            ])
        );
    }

    #[test]
    fn kubectl_apply_switches_deployment_strategy() {
        let out = apply_with(
            &deployment_meta(),
            live_deployment(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": null, "type": "Recreate"}}}),
        );
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        // Without the directive the defaulted rollingUpdate would stay.
        let out = apply_with(
            &deployment_meta(),
            live_deployment(),
            json!({"spec": {"strategy": {"type": "Recreate"}}}),
        );
        assert_eq!(out["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    }

    #[test]
    fn kubectl_apply_switches_volume_source() {
        let mut live = live_deployment();
        live["spec"]["template"]["spec"]["volumes"] = json!([
            {"name": "data", "emptyDir": {}},
            {"name": "cfg", "configMap": {"name": "a", "defaultMode": 420}}
        ]);
        let out = apply_with(
            &deployment_meta(),
            live,
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/volumes": [{"name": "data"}, {"name": "cfg"}],
                "volumes": [{
                    "$retainKeys": ["name", "persistentVolumeClaim"],
                    "emptyDir": null,
                    "name": "data",
                    "persistentVolumeClaim": {"claimName": "pvc"}
                }]
            }}}}),
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["volumes"],
            json!([
                {"name": "data", "persistentVolumeClaim": {"claimName": "pvc"}},
                {"name": "cfg", "configMap": {"name": "a", "defaultMode": 420}}
            ])
        );
    }

    #[test]
    fn kubectl_edit_two_way_patch_removes_a_volume_and_a_container() {
        let out = apply_with(
            &deployment_meta(),
            live_deployment(),
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "web"}],
                "containers": [{"$patch": "delete", "name": "sidecar"}],
                "volumes": null
            }}}}),
        );
        let spec = &out["spec"]["template"]["spec"];
        assert_eq!(spec["containers"].as_array().unwrap().len(), 1);
        assert_eq!(spec["containers"][0]["name"], "web");
        assert!(spec.get("volumes").is_none());
    }

    #[test]
    fn kubectl_patch_deletes_from_container_args() {
        // kubernetes#110407: $deleteFromPrimitiveList inside a container.
        let out = apply_with(
            &deployment_meta(),
            live_deployment(),
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "sidecar", "$deleteFromPrimitiveList/args": ["infinity"]}
            ]}}}}),
        );
        assert_eq!(container(&out, "sidecar")["args"], json!(["sleep"]));
    }

    #[test]
    fn finalizers_and_owner_references() {
        let meta = BuiltinPatchMeta::for_kind("", "ConfigMap");
        let cm = json!({"metadata": {"name": "c", "finalizers": ["a", "b"],
            "ownerReferences": [{"uid": "1", "name": "x", "kind": "K"}]}});
        let out = apply_with(
            &meta,
            cm.clone(),
            json!({"metadata": {
                "$setElementOrder/finalizers": ["a", "c"],
                "$deleteFromPrimitiveList/finalizers": ["b"],
                "finalizers": ["c"]
            }}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "c"]));
        // A plain finalizers patch is a union; the new value goes first, as in Go.
        let out = apply_with(
            &meta,
            cm.clone(),
            json!({"metadata": {"finalizers": ["x", "a"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["x", "a", "b"]));
        let out = apply_with(
            &meta,
            cm,
            json!({"metadata": {"ownerReferences": [
                {"uid": "1", "controller": true}, {"uid": "2", "name": "y", "kind": "K"}
            ]}}),
        );
        assert_eq!(
            out["metadata"]["ownerReferences"],
            json!([
                {"uid": "1", "name": "x", "kind": "K", "controller": true},
                {"uid": "2", "name": "y", "kind": "K"}
            ])
        );
    }

    #[test]
    fn service_ports_merge_by_port() {
        let meta = BuiltinPatchMeta::for_kind("", "Service");
        let out = apply_with(
            &meta,
            json!({"spec": {"clusterIP": "10.0.0.1", "ports": [
                {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}
            ]}}),
            json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
        );
        assert_eq!(
            out["spec"]["ports"],
            json!([
                {"name": "http", "port": 80, "targetPort": 9090, "protocol": "TCP"},
                {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}
            ])
        );
        assert_eq!(out["spec"]["clusterIP"], "10.0.0.1");
    }

    #[test]
    fn status_lists_merge_by_type() {
        let pod = BuiltinPatchMeta::for_kind("", "Pod");
        let out = apply_with(
            &pod,
            json!({"status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}
            ]}}),
            json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        assert_eq!(
            out["status"],
            json!({"phase": "Running", "conditions": [
                {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}
            ]})
        );
        let node = BuiltinPatchMeta::for_kind("", "Node");
        let out = apply_with(
            &node,
            json!({"status": {"addresses": [
                {"type": "InternalIP", "address": "10.0.0.2"}, {"type": "Hostname", "address": "n1"}
            ]}}),
            json!({"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.3"}]}}),
        );
        assert_eq!(
            out["status"]["addresses"],
            json!([{"type": "InternalIP", "address": "10.0.0.3"}, {"type": "Hostname", "address": "n1"}])
        );
    }

    #[test]
    fn cron_job_template_containers_merge() {
        let meta = BuiltinPatchMeta::for_kind("batch", "CronJob");
        let out = apply_with(
            &meta,
            json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
                               {"name": "b", "image": "b:1"}]
            }}}}}}),
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}]}]
            }}}}}}),
        );
        assert_eq!(
            out["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"],
            json!([
                {"name": "a", "image": "a:1", "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}]},
                {"name": "b", "image": "b:1"}
            ])
        );
    }

    #[test]
    fn atomic_lists_of_builtin_kinds_are_replaced() {
        let pod = BuiltinPatchMeta::for_kind("", "Pod");
        let out = apply_with(
            &pod,
            json!({"spec": {"tolerations": [{"key": "a"}, {"key": "b"}],
                            "containers": [{"name": "c", "command": ["a", "b"]}]}}),
            json!({"spec": {"tolerations": [{"key": "c"}],
                            "containers": [{"name": "c", "command": ["x"]}]}}),
        );
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "c"}]));
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "c", "command": ["x"]}])
        );
    }

    #[test]
    fn error_accessors() {
        let e = StrategicMergeError::BadRequest("x".into());
        assert_eq!(
            (e.status_code(), e.message(), e.to_string().as_str()),
            (400, "x", "x")
        );
        let e = StrategicMergeError::Unprocessable("y".into());
        assert_eq!((e.status_code(), e.message()), (422, "y"));
    }

    #[test]
    fn field_strategy_helpers() {
        assert!(!FieldStrategy::Replace.is_merge());
        assert!(!FieldStrategy::RetainKeys.is_merge());
        assert!(FieldStrategy::Merge { key: None }.is_merge());
        assert_eq!(
            FieldStrategy::MergeRetainKeys {
                key: Some("name".into())
            }
            .merge_key(),
            Some("name")
        );
        assert_eq!(FieldStrategy::default(), FieldStrategy::Replace);
    }
}
