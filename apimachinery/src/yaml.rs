//! A linear pre-scan of YAML text that bounds how deeply flow collections (`[…]`, `{…}`) nest,
//! before the text reaches a YAML parser.
//!
//! libyaml's scanner (under `serde_yaml`) does work quadratic in the flow nesting depth before
//! any recursion limit of the deserializer applies: a few tens of kilobytes of `{a: {a: {a: …`
//! keep a core busy for seconds, megabytes for hours. This scan finds the deepest flow nesting in
//! one pass, so such a document is refused before it is parsed.
//!
//! The scan follows YAML's rules for where a node may begin, so brackets inside quoted scalars,
//! comments, block scalars (`|`, `>`) and plain scalars (`a[b`) are not counted. Where it cannot
//! tell (continuation lines of a multi-line plain scalar) it counts: it may over-count brackets
//! in text, never under-count real collections.

/// The deepest flow nesting accepted: what `serde_yaml` accepts as recursion anyway.
pub const MAX_FLOW_DEPTH: usize = 128;

/// Where the nesting first went deeper than the limit (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep {
    /// The depth allowed.
    pub max: usize,
    /// Line of the bracket that went over.
    pub line: usize,
    /// Column of that bracket.
    pub column: usize,
}

impl std::fmt::Display for TooDeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exceeded max depth of {} at line {} column {}",
            self.max, self.line, self.column
        )
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_flow_indicator(c: u8) -> bool {
    matches!(c, b',' | b'[' | b']' | b'{' | b'}')
}

/// Checks that flow collections in `text` nest at most `max` deep.
pub fn check_flow_depth(text: &[u8], max: usize) -> Result<(), TooDeep> {
    let n = text.len();
    let at = |i: usize| text.get(i).copied();
    let mut i = 0;
    let mut depth = 0usize;
    // A node may begin here (line start, after `- `, `: `, `? `, `[`, `{`, `,`, a tag…).
    let mut node_start = true;
    // The previous token was a quoted scalar or a closed flow collection: a `:` right after it
    // is an indicator even without a space (`{"a":[`).
    let mut adjacent = false;
    let mut line = 1;
    let mut line_begin = 0;
    let mut at_line_start = true;
    let mut line_indent = 0;
    // The indentation of the line that opened the block scalar being skipped.
    let mut block_scalar: Option<usize> = None;

    while i < n {
        if at_line_start {
            at_line_start = false;
            line_begin = i;
            let mut j = i;
            while at(j) == Some(b' ') {
                j += 1;
            }
            let blank = matches!(at(j), None | Some(b'\n') | Some(b'\r'));
            if depth == 0 {
                if let Some(parent) = block_scalar {
                    if blank || j - i > parent {
                        // Block scalar content: text, skip the line.
                        while i < n && text[i] != b'\n' {
                            i += 1;
                        }
                        continue;
                    }
                    block_scalar = None;
                }
                line_indent = j - i;
                node_start = true;
                adjacent = false;
                // Directives (`%YAML`) and document markers (`---`, `...`).
                if at(j) == Some(b'%') && j == i {
                    while i < n && text[i] != b'\n' {
                        i += 1;
                    }
                    continue;
                }
                if j == i
                    && (text[j..].starts_with(b"---") || text[j..].starts_with(b"..."))
                    && at(j + 3).is_none_or(is_space)
                {
                    i = j + 3;
                    continue;
                }
            }
            i = j;
            continue;
        }
        let c = text[i];
        let next = at(i + 1);
        match c {
            b'\n' => {
                line += 1;
                at_line_start = true;
                i += 1;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b'#' if i == line_begin || i == 0 || is_space(text[i - 1]) => {
                while i < n && text[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' if node_start => {
                i += 1;
                while i < n && text[i] != b'"' {
                    if text[i] == b'\\' {
                        i += 1;
                    } else if text[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i += 1;
                node_start = false;
                adjacent = true;
            }
            b'\'' if node_start => {
                i += 1;
                while i < n {
                    if text[i] == b'\'' {
                        if at(i + 1) == Some(b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    if text[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i += 1;
                node_start = false;
                adjacent = true;
            }
            b'[' | b'{' if node_start || depth > 0 => {
                depth += 1;
                if depth > max {
                    return Err(TooDeep {
                        max,
                        line,
                        column: i - line_begin + 1,
                    });
                }
                node_start = true;
                adjacent = false;
                i += 1;
            }
            b']' | b'}' if depth > 0 => {
                depth -= 1;
                node_start = false;
                adjacent = true;
                i += 1;
            }
            b',' if depth > 0 => {
                node_start = true;
                adjacent = false;
                i += 1;
            }
            b':' if next.is_none_or(|d| is_space(d) || (depth > 0 && is_flow_indicator(d)))
                || (depth > 0 && adjacent) =>
            {
                node_start = true;
                adjacent = false;
                i += 1;
            }
            b'-' | b'?' if node_start && next.is_none_or(is_space) => {
                i += 1;
            }
            b'|' | b'>' if node_start && depth == 0 => {
                block_scalar = Some(line_indent);
                while i < n && text[i] != b'\n' {
                    i += 1;
                }
            }
            b'!' | b'&' if node_start => {
                // A tag or an anchor: the node follows it.
                if c == b'!' && next == Some(b'<') {
                    while i < n && text[i] != b'>' {
                        i += 1;
                    }
                    i += 1;
                } else {
                    while i < n && !is_space(text[i]) && !is_flow_indicator(text[i]) {
                        i += 1;
                    }
                }
            }
            _ => {
                node_start = false;
                adjacent = false;
                i += 1;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn depth_ok(text: &str, max: usize) -> bool {
        check_flow_depth(text.as_bytes(), max).is_ok()
    }

    #[test]
    fn counts_flow_collections_in_every_position() {
        for text in [
            "[[[[]]]]",
            "a: [[[[]]]]",
            "a: {b: {c: {d: {e: 1}}}}",
            "- [[[[x]]]]",
            "--- [[[[x]]]]",
            "a: !!seq [[[[x]]]]",
            "a: &anchor [[[[x]]]]",
            "? [[[[x]]]]",
            "{\"a\":[[[1]]]}",
            "[a, [b, [c, [d]]]]",
            "a:\n  b: [\n    [\n      [[1]]]]",
            "a: {'k': [[[1]]]}",
            "['it''s', [[[1]]]]",
        ] {
            assert!(!depth_ok(text, 3), "{text}");
            assert!(depth_ok(text, 4), "{text}");
        }
    }

    #[test]
    fn text_that_only_looks_like_brackets_is_not_counted() {
        for text in [
            "a: '[[[['",
            "a: \"[[[[\\\"[[[[\"",
            "a: x[[[[",
            "a: don't [[[[",
            "a: 1 # [[[[",
            "a: |\n  [[[[\n  {{{{\nb: 1",
            "- >-\n    [[[[\n\n    [[[[\n- x",
            "a: [\"[[[[\", '{{{{']",
            "a: [x[y]",
        ] {
            assert!(depth_ok(text, 3), "{text}");
        }
    }

    #[test]
    fn a_block_scalar_ends_where_the_indentation_does() {
        assert!(!depth_ok("a: |\n  text\nb: [[[[1]]]]", 3));
    }

    #[test]
    fn reports_where_it_went_too_deep() {
        let e = check_flow_depth(b"a: 1\nb: [[x]]", 1).unwrap_err();
        assert_eq!((e.line, e.column), (2, 5));
        assert_eq!(e.to_string(), "exceeded max depth of 1 at line 2 column 5");
    }

    #[test]
    fn megabytes_of_nesting_are_refused_in_one_pass() {
        let deep = "{a: ".repeat(1_000_000);
        assert!(check_flow_depth(deep.as_bytes(), MAX_FLOW_DEPTH).is_err());
        let wide = "[1, [2]], ".repeat(100_000);
        assert!(check_flow_depth(format!("[{wide}]").as_bytes(), MAX_FLOW_DEPTH).is_ok());
    }
}
