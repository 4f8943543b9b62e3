//! JSON text as kube-apiserver writes it with Go's `encoding/json`, whose encoder escapes HTML
//! by default: `<`, `>` and `&` in strings as `\u003c`, `\u003e` and `\u0026`, and the line and
//! paragraph separators U+2028 and U+2029 as `\u2028` and `\u2029`. The other escapes are
//! serde_json's, which are Go's too: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, and `\u00xx` for
//! the other control characters.

use std::io;

use serde::Serialize;

/// serde_json's compact output with Go's HTML-safe escaping of strings.
#[derive(Debug, Clone, Copy, Default)]
pub struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let bytes = fragment.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let (escape, len): (&[u8], usize) = match bytes[i] {
                b'<' => (b"\\u003c", 1),
                b'>' => (b"\\u003e", 1),
                b'&' => (b"\\u0026", 1),
                0xe2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xa8) => {
                    (b"\\u2028", 3)
                }
                0xe2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xa9) => {
                    (b"\\u2029", 3)
                }
                _ => {
                    i += 1;
                    continue;
                }
            };
            writer.write_all(&bytes[start..i])?;
            writer.write_all(escape)?;
            i += len;
            start = i;
        }
        writer.write_all(&bytes[start..])
    }
}

/// Append the JSON text of `value` to `out`.
pub fn to_writer<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> serde_json::Result<()> {
    value.serialize(&mut serde_json::Serializer::with_formatter(
        out,
        GoFormatter,
    ))
}

/// The JSON text of `value`.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    to_writer(&mut out, value)?;
    Ok(out)
}

/// Append a JSON string: text with nothing to escape (most names and values) copied between
/// quotes at once, other text escaped by [`GoFormatter`].
#[inline]
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    if !needs_escape(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing a string into a vector cannot fail.
        let _ = to_writer(out, s);
    }
}

/// Does the text hold a byte that starts an escape: a control character, `"`, `\`, `<`, `>`,
/// `&`, or 0xE2 (the first byte of U+2028 and U+2029, and of other characters, which are then
/// found to need nothing)? Eight bytes at a time, the last ones padded with a letter: a word
/// has a byte below 0x20, or one equal to a given byte, exactly when the usual borrow tests on
/// it say so; `"` and `&` (0x22, 0x26) are the bytes that OR 0x04 makes 0x26, `<` and `>`
/// (0x3C, 0x3E) those that OR 0x02 makes 0x3E.
pub fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |y: u64| y.wrapping_sub(ONES) & !y & HIGH;
    let hit = |x: u64| {
        (x.wrapping_sub(ONES * 0x20) & !x & HIGH)
            | zero((x | (ONES * 0x04)) ^ (ONES * 0x26))
            | zero((x | (ONES * 0x02)) ^ (ONES * 0x3e))
            | zero(x ^ (ONES * 0x5c))
            | zero(x ^ (ONES * 0xe2))
            != 0
    };
    let mut words = s.chunks_exact(8);
    for w in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(w);
        if hit(u64::from_le_bytes(bytes)) {
            return true;
        }
    }
    let rest = words.remainder();
    if rest.is_empty() {
        return false;
    }
    let mut bytes = [b'a'; 8];
    bytes[..rest.len()].copy_from_slice(rest);
    hit(u64::from_le_bytes(bytes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn escapes(b: u8) -> bool {
        b < 0x20 || matches!(b, b'"' | b'\\' | b'<' | b'>' | b'&' | 0xe2)
    }

    fn text(s: &str) -> String {
        let mut out = Vec::new();
        push_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    /// What Go's `json.Marshal` writes for these strings (encoding/json's documented escapes).
    #[test]
    fn strings_are_escaped_as_go_writes_them() {
        let cases = [
            ("plain", r#""plain""#),
            ("a && b", r#""a \u0026\u0026 b""#),
            ("<x>", r#""\u003cx\u003e""#),
            ("\u{2028}\u{2029}", r#""\u2028\u2029""#),
            // Other characters of the 0xE2 lead byte are written as they are.
            ("\u{2013}\u{2022}\u{20ac}", "\"\u{2013}\u{2022}\u{20ac}\""),
            ("q\"b\\", r#""q\"b\\""#),
            ("\u{8}\u{c}\n\r\t", r#""\b\f\n\r\t""#),
            ("\u{1}\u{1f}\u{7f}", "\"\\u0001\\u001f\u{7f}\""),
            ("é ü 中", "\"é ü 中\""),
        ];
        for (s, want) in cases {
            assert_eq!(text(s), want, "{s:?}");
            assert_eq!(
                String::from_utf8(to_vec(&json!(s)).unwrap()).unwrap(),
                want,
                "{s:?} as a value"
            );
        }
    }

    /// Every byte value among bytes that never escape (next to the thresholds, with the high
    /// bit set, next to the bytes the OR tricks fold together), at every place of every length
    /// up to three words.
    #[test]
    fn every_escaping_byte_value_is_found_at_every_place() {
        let fillers = [
            b'a', b' ', b'!', b'#', b'$', b'%', b'\'', b';', b'=', b'?', b'[', b']', 0x7f, 0x80,
            0xa0, 0xa2, 0xa6, 0xbc, 0xbe, 0xc3, 0xe0, 0xe3, 0xff,
        ];
        for b in 0..=255u8 {
            for filler in fillers {
                for len in 1..=24 {
                    let mut text = vec![filler; len];
                    assert!(!needs_escape(&text), "{filler:#x} × {len}");
                    for at in 0..len {
                        text[at] = b;
                        assert_eq!(
                            needs_escape(&text),
                            escapes(b),
                            "{b:#x} at {at} of {len} among {filler:#x}"
                        );
                        text[at] = filler;
                    }
                }
            }
        }
    }

    #[test]
    fn every_escaping_byte_is_found_at_every_place_of_a_word() {
        for b in 0..=0x7fu8 {
            for filler in [b'a', b' ', b'!', b'#', b'=', b'?', b'[', b']', 0x7f] {
                for len in 1..=17 {
                    for at in 0..len {
                        let mut s = vec![filler; len];
                        s[at] = b;
                        let s = String::from_utf8(s).unwrap();
                        assert_eq!(
                            needs_escape(s.as_bytes()),
                            escapes(b) || escapes(filler),
                            "{s:?}"
                        );
                        let want = {
                            let mut out = Vec::new();
                            to_writer(&mut out, s.as_str()).unwrap();
                            out
                        };
                        let mut got = Vec::new();
                        push_str(&mut got, &s);
                        assert_eq!(got, want, "{s:?}");
                    }
                }
            }
        }
        // Multi-byte characters: the separators at every place, among others with 0xE2 and
        // other high bytes.
        for sep in ["\u{2028}", "\u{2029}", "\u{2013}", "é", "\u{e000}"] {
            for at in 0..12 {
                let s = format!("{}{sep}{}", "x".repeat(at), "\u{2013}y".repeat(3));
                let got = text(&s);
                let want = s
                    .replace('\u{2028}', "\\u2028")
                    .replace('\u{2029}', "\\u2029");
                assert_eq!(got, format!("\"{want}\""), "{s:?}");
            }
        }
    }

    #[test]
    fn values_nest_with_the_same_escapes() {
        let v = json!({"a<b": ["x&y", 1, 2.5, true, null], "k": {"z": ">"}});
        assert_eq!(
            String::from_utf8(to_vec(&v).unwrap()).unwrap(),
            r#"{"a\u003cb":["x\u0026y",1,2.5,true,null],"k":{"z":"\u003e"}}"#
        );
    }
}
