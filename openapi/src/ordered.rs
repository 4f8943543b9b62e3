//! A JSON document as it was written: object members in document order, duplicates kept.
//!
//! `serde_json::Value` sorts keys and keeps only the last of duplicated ones, which loses what
//! strict decoding reports (unknown fields in document order, duplicate fields). Parse the body a
//! second time into an [`OrderedValue`] (from JSON or YAML, with any serde format) for that.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value with object members in document order, duplicates included. Scalars keep only
/// their type: strict field validation looks at structure, not values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderedValue {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array(Vec<OrderedValue>),
    /// An object: its members in order, duplicates kept.
    Object(Vec<(String, OrderedValue)>),
}

impl OrderedValue {
    /// Parse JSON text.
    pub fn from_json(text: &[u8]) -> Result<OrderedValue, serde_json::Error> {
        serde_json::from_slice(text)
    }

    pub(crate) fn type_matches(&self, ty: crate::structural::Type) -> bool {
        use crate::structural::Type;
        match ty {
            Type::Any => true,
            Type::Object => matches!(self, OrderedValue::Object(_)),
            Type::Array => matches!(self, OrderedValue::Array(_)),
            Type::String => matches!(self, OrderedValue::String),
            Type::Integer | Type::Number => matches!(self, OrderedValue::Number),
            Type::Boolean => matches!(self, OrderedValue::Bool),
        }
    }
}

impl<'de> Deserialize<'de> for OrderedValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OrderedVisitor)
    }
}

struct OrderedVisitor;

impl<'de> Visitor<'de> for OrderedVisitor {
    type Value = OrderedValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<OrderedValue, E> {
        Ok(OrderedValue::Bool)
    }
    fn visit_i64<E>(self, _: i64) -> Result<OrderedValue, E> {
        Ok(OrderedValue::Number)
    }
    fn visit_u64<E>(self, _: u64) -> Result<OrderedValue, E> {
        Ok(OrderedValue::Number)
    }
    fn visit_f64<E>(self, _: f64) -> Result<OrderedValue, E> {
        Ok(OrderedValue::Number)
    }
    fn visit_str<E>(self, _: &str) -> Result<OrderedValue, E> {
        Ok(OrderedValue::String)
    }
    fn visit_unit<E>(self) -> Result<OrderedValue, E> {
        Ok(OrderedValue::Null)
    }
    fn visit_none<E>(self) -> Result<OrderedValue, E> {
        Ok(OrderedValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<OrderedValue, D::Error> {
        OrderedValue::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OrderedValue, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(OrderedValue::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedValue, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((k, v)) = map.next_entry::<String, OrderedValue>()? {
            members.push((k, v));
        }
        Ok(OrderedValue::Object(members))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_duplicates() {
        let v = OrderedValue::from_json(br#"{"b": 1, "a": [true, null, "x"], "b": {}}"#).unwrap();
        assert_eq!(
            v,
            OrderedValue::Object(vec![
                ("b".into(), OrderedValue::Number),
                (
                    "a".into(),
                    OrderedValue::Array(vec![
                        OrderedValue::Bool,
                        OrderedValue::Null,
                        OrderedValue::String
                    ])
                ),
                ("b".into(), OrderedValue::Object(vec![])),
            ])
        );
    }
}
