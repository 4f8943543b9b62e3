//! JSON into a `serde_json::Value` in one pass, noting whether any object repeats a key.
//!
//! `serde_json` keeps the last of repeated keys and says nothing; kube's strict decoder reports
//! them (`duplicate field "spec.replicas"`). Knowing whether a body has any lets a write skip the
//! order-preserving second parse that words those errors, which is only needed when something is
//! to be reported.

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// The decoded value and whether some object in it repeated a key. Syntax errors are
/// `serde_json`'s own, word for word.
pub fn from_slice(body: &[u8]) -> serde_json::Result<(Value, bool)> {
    // Text checked as UTF-8 once, as a whole, is not checked again string by string; a body
    // that is not UTF-8 is read as bytes, for the parser's own error at the place it fails.
    match std::str::from_utf8(body) {
        Ok(text) => decode(&mut serde_json::Deserializer::from_str(text)),
        Err(_) => decode(&mut serde_json::Deserializer::from_slice(body)),
    }
}

fn decode<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
) -> serde_json::Result<(Value, bool)> {
    let repeated = Cell::new(false);
    let value = Seed(&repeated).deserialize(&mut *de)?;
    de.end()?;
    Ok((value, repeated.get()))
}

/// Deserializes one value, setting the flag when an object inside repeats a key.
#[derive(Clone, Copy)]
struct Seed<'a>(&'a Cell<bool>);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        self.deserialize(de)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            if members.insert(key, value).is_some() {
                self.0.set(true);
            }
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decodes_as_serde_json_does_and_notes_repeated_keys() {
        for (doc, repeated) in [
            (
                r#"{"a":1,"b":[1,-2,3.5,"x",null,true,{"c":{}}],"d":1e300}"#,
                false,
            ),
            (r#"{"a":1,"a":2}"#, true),
            (r#"{"a":{"b":1,"c":2,"b":3}}"#, true),
            (r#"[{"k":1},{"k":2}]"#, false),
            (r#"[{"k":1,"k":2}]"#, true),
            (r#""\u00e9\n""#, false),
            ("18446744073709551615", false),
        ] {
            let (value, dup) = from_slice(doc.as_bytes()).unwrap();
            assert_eq!(dup, repeated, "{doc}");
            assert_eq!(value, serde_json::from_str::<Value>(doc).unwrap(), "{doc}");
        }
    }

    #[test]
    fn errors_are_serde_jsons() {
        for doc in [
            "{",
            "{\"a\":}",
            "[1,]",
            "{} x",
            "",
            "nul",
            "\"\\x\"",
            "{\"a\" 1}",
            "1e400",
        ] {
            let ours = from_slice(doc.as_bytes()).unwrap_err().to_string();
            let theirs = serde_json::from_str::<Value>(doc).unwrap_err().to_string();
            assert_eq!(ours, theirs, "{doc}");
        }
        // Bytes that are not UTF-8, in a string or outside one: the error of reading bytes.
        for doc in [
            &b"{\"a\":\"\xff\"}"[..],
            b"{\"a\":\"x\xc3\"}",
            b"[1,\xff]",
            b"\"\xed\xa0\x80\"",
        ] {
            let ours = from_slice(doc).unwrap_err().to_string();
            let theirs = serde_json::from_slice::<Value>(doc)
                .unwrap_err()
                .to_string();
            assert_eq!(ours, theirs, "{doc:?}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        let ours = from_slice(deep.as_bytes()).unwrap_err().to_string();
        let theirs = serde_json::from_str::<Value>(&deep)
            .unwrap_err()
            .to_string();
        assert_eq!(ours, theirs);
    }
}
