//! The built-in schemas as built, packed: what [`crate::Schemas::builtin`] loads at start-up
//! instead of parsing the structural asset's JSON and building from it (4 ms of a start that
//! aims at 14). `assets/structural.packed.z` is written from `assets/structural.json.z` by
//! `cargo run -p kubox-openapi --bin pack-schemas`; a test fails while it is not what the
//! structural asset builds.
//!
//! The format (then zlib-compressed): `KUBOX-SCHEMAS 1\n`, a table of strings, the arena's
//! nodes, `ObjectMeta`'s node, the kinds and the `meta/v1` types. Every number is an unsigned
//! LEB128 varint; a string is its index in the table; an optional node is 0 for none, else its
//! id plus one; a list is its length then its items.

use serde_json::Value;
use std::collections::HashMap;

use crate::structural::{Arena, Format, Node, NodeId, Type};

const MAGIC: &[u8] = b"KUBOX-SCHEMAS 1\n";

/// The arena of the built-in schemas and where each kind and `meta/v1` type starts in it.
#[derive(Debug, Default)]
pub(crate) struct Packed {
    pub arena: Arena,
    /// (group, version, kind), the definition's name, its root.
    pub kinds: Vec<((String, String, String), String, NodeId)>,
    /// A `meta/v1` type's name (`ListMeta`) and its root.
    pub meta: Vec<(String, NodeId)>,
}

/// Pack and compress.
pub(crate) fn pack(p: &Packed) -> Vec<u8> {
    let mut w = Writer::default();
    for n in &p.arena.nodes {
        w.node(n);
    }
    w.opt(p.arena.object_meta);
    w.num(p.kinds.len());
    for ((g, v, k), def, root) in &p.kinds {
        for s in [g, v, k, def] {
            w.str(s);
        }
        w.num(*root as usize);
    }
    w.num(p.meta.len());
    for (name, root) in &p.meta {
        w.str(name);
        w.num(*root as usize);
    }
    let mut out = MAGIC.to_vec();
    put(&mut out, w.strings.len());
    for s in &w.strings {
        put(&mut out, s.len());
        out.extend_from_slice(s.as_bytes());
    }
    put(&mut out, p.arena.nodes.len());
    out.extend_from_slice(&w.body);
    miniz_oxide::deflate::compress_to_vec_zlib(&out, 10)
}

/// Decompress and unpack.
pub(crate) fn unpack(packed: &[u8]) -> Result<Packed, String> {
    let bytes = crate::assets::inflate(packed)?;
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or("not a packed schemas asset")?;
    let mut r = Reader {
        rest,
        strings: Vec::new(),
    };
    let count = r.num()?;
    r.strings.reserve(count.min(r.rest.len()));
    for _ in 0..count {
        let len = r.num()?;
        let s = r.take(len)?;
        let s = std::str::from_utf8(s).map_err(|e| e.to_string())?;
        r.strings.push(s);
    }
    let nodes = r.num()?;
    let mut arena = Arena {
        nodes: Vec::with_capacity(nodes.min(r.rest.len())),
        object_meta: None,
        fields_v1: None,
    };
    for _ in 0..nodes {
        arena.nodes.push(r.node(nodes)?);
    }
    if let Some(meta) = r.opt(nodes)? {
        arena.set_object_meta(meta);
    }
    let mut kinds = Vec::new();
    for _ in 0..r.num()? {
        let (g, v, k, def) = (r.string()?, r.string()?, r.string()?, r.string()?);
        kinds.push(((g, v, k), def, r.id(nodes)?));
    }
    let mut meta = Vec::new();
    for _ in 0..r.num()? {
        meta.push((r.string()?, r.id(nodes)?));
    }
    if !r.rest.is_empty() {
        return Err("trailing bytes in the packed schemas".to_string());
    }
    Ok(Packed { arena, kinds, meta })
}

fn put(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[derive(Default)]
struct Writer {
    strings: Vec<String>,
    index: HashMap<String, usize>,
    body: Vec<u8>,
}

impl Writer {
    fn num(&mut self, n: usize) {
        put(&mut self.body, n);
    }

    fn str(&mut self, s: &str) {
        let i = match self.index.get(s) {
            Some(&i) => i,
            None => {
                self.strings.push(s.to_string());
                self.index.insert(s.to_string(), self.strings.len() - 1);
                self.strings.len() - 1
            }
        };
        self.num(i);
    }

    fn opt(&mut self, id: Option<NodeId>) {
        self.num(id.map_or(0, |id| id as usize + 1));
    }

    fn strs(&mut self, list: &[Box<str>]) {
        self.num(list.len());
        for s in list {
            self.str(s);
        }
    }

    fn node(&mut self, n: &Node) {
        self.num(ty_code(n.ty));
        self.num(format_code(n.format));
        let flags = [
            n.preserve_unknown,
            n.int_or_string,
            n.embedded,
            n.silent,
            n.list_set,
            n.map_atomic,
        ];
        self.num(
            flags
                .iter()
                .enumerate()
                .fold(0, |acc, (bit, on)| acc | (usize::from(*on) << bit)),
        );
        self.num(n.properties.len());
        for (name, id) in &n.properties {
            self.str(name);
            self.num(*id as usize);
        }
        self.opt(n.items);
        self.opt(n.additional);
        self.num(n.alternatives.len());
        for id in &n.alternatives {
            self.num(*id as usize);
        }
        self.strs(&n.list_keys);
        self.strs(&n.zero_fields);
        self.strs(&n.null_fields);
        self.strs(&n.omit_empty);
        self.num(n.go_rank.len());
        for rank in &n.go_rank {
            // u32::MAX (no place in the Go struct) as 0, the others shifted by one.
            self.num(rank.wrapping_add(1) as usize);
        }
        self.num(n.zero_scalars.len());
        for (name, value) in &n.zero_scalars {
            self.str(name);
            self.str(&value.to_string());
        }
    }
}

struct Reader<'a> {
    rest: &'a [u8],
    strings: Vec<&'a str>,
}

impl<'a> Reader<'a> {
    fn num(&mut self) -> Result<usize, String> {
        let mut n: usize = 0;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self
                .rest
                .split_first()
                .ok_or("the packed schemas end too soon")?;
            self.rest = rest;
            n |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err("a number too long in the packed schemas".to_string())
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        if len > self.rest.len() {
            return Err("the packed schemas end too soon".to_string());
        }
        let (head, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(head)
    }

    fn str(&mut self) -> Result<&'a str, String> {
        let i = self.num()?;
        self.strings
            .get(i)
            .copied()
            .ok_or_else(|| format!("string {i} not in the packed schemas' table"))
    }

    fn string(&mut self) -> Result<String, String> {
        self.str().map(str::to_string)
    }

    fn boxed(&mut self) -> Result<Vec<Box<str>>, String> {
        let len = self.num()?;
        let mut out = Vec::with_capacity(len.min(self.rest.len()));
        for _ in 0..len {
            out.push(Box::from(self.str()?));
        }
        Ok(out)
    }

    fn id(&mut self, nodes: usize) -> Result<NodeId, String> {
        let id = self.num()?;
        if id >= nodes {
            return Err(format!("node {id} not in the packed schemas"));
        }
        NodeId::try_from(id).map_err(|e| e.to_string())
    }

    fn opt(&mut self, nodes: usize) -> Result<Option<NodeId>, String> {
        match self.num()? {
            0 => Ok(None),
            id => {
                if id > nodes {
                    return Err(format!("node {} not in the packed schemas", id - 1));
                }
                NodeId::try_from(id - 1)
                    .map(Some)
                    .map_err(|e| e.to_string())
            }
        }
    }

    fn node(&mut self, nodes: usize) -> Result<Node, String> {
        let ty = ty_of(self.num()?)?;
        let format = format_of(self.num()?)?;
        let flags = self.num()?;
        let flag = |bit: usize| flags & (1 << bit) != 0;
        let count = self.num()?;
        let mut properties = Vec::with_capacity(count.min(self.rest.len()));
        for _ in 0..count {
            let name = Box::from(self.str()?);
            properties.push((name, self.id(nodes)?));
        }
        let items = self.opt(nodes)?;
        let additional = self.opt(nodes)?;
        let count = self.num()?;
        let mut alternatives = Vec::with_capacity(count.min(self.rest.len()));
        for _ in 0..count {
            alternatives.push(self.id(nodes)?);
        }
        let list_keys = self.boxed()?;
        let zero_fields = self.boxed()?;
        let null_fields = self.boxed()?;
        let omit_empty = self.boxed()?;
        let count = self.num()?;
        let mut go_rank = Vec::with_capacity(count.min(self.rest.len()));
        for _ in 0..count {
            let shifted = u32::try_from(self.num()?).map_err(|e| e.to_string())?;
            go_rank.push(shifted.wrapping_sub(1));
        }
        let count = self.num()?;
        let mut zero_scalars = Vec::with_capacity(count.min(self.rest.len()));
        for _ in 0..count {
            let name = Box::from(self.str()?);
            let value: Value = serde_json::from_str(self.str()?).map_err(|e| e.to_string())?;
            zero_scalars.push((name, value));
        }
        Ok(Node {
            ty,
            format,
            properties,
            items,
            additional,
            alternatives,
            preserve_unknown: flag(0),
            int_or_string: flag(1),
            embedded: flag(2),
            silent: flag(3),
            list_keys,
            list_set: flag(4),
            map_atomic: flag(5),
            zero_fields,
            null_fields,
            omit_empty,
            go_rank,
            zero_scalars,
        })
    }
}

const TYPES: [Type; 7] = [
    Type::Any,
    Type::Object,
    Type::Array,
    Type::String,
    Type::Integer,
    Type::Number,
    Type::Boolean,
];

const FORMATS: [Format; 5] = [
    Format::Plain,
    Format::Int32,
    Format::Int64,
    Format::Byte,
    Format::DateTime,
];

fn ty_code(t: Type) -> usize {
    TYPES.iter().position(|x| *x == t).unwrap_or(0)
}

fn ty_of(code: usize) -> Result<Type, String> {
    TYPES
        .get(code)
        .copied()
        .ok_or_else(|| format!("type {code} unknown to the packed schemas"))
}

fn format_code(f: Format) -> usize {
    FORMATS.iter().position(|x| *x == f).unwrap_or(0)
}

fn format_of(code: usize) -> Result<Format, String> {
    FORMATS
        .get(code)
        .copied()
        .ok_or_else(|| format!("format {code} unknown to the packed schemas"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ASSET: &[u8] = include_bytes!("../assets/structural.packed.z");

    fn same(a: &Packed, b: &Packed) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    #[test]
    fn the_packed_asset_is_what_the_structural_asset_builds() {
        let built = crate::Schemas::build_from_asset().unwrap();
        let loaded = unpack(ASSET).unwrap();
        assert!(built.arena.nodes.len() > 1000);
        assert!(
            same(&built, &loaded),
            "assets/structural.packed.z is not what assets/structural.json.z builds: run \
             `cargo run -p kubox-openapi --bin pack-schemas`"
        );
    }

    #[test]
    fn packing_keeps_every_field_of_every_node() {
        let mut p = Packed::default();
        p.arena.nodes.push(Node {
            ty: Type::Object,
            format: Format::DateTime,
            properties: vec![("a".into(), 1), ("b".into(), 2)],
            items: Some(2),
            additional: Some(1),
            alternatives: vec![1, 2],
            preserve_unknown: true,
            int_or_string: false,
            embedded: true,
            silent: false,
            list_keys: vec!["name".into()],
            list_set: true,
            map_atomic: false,
            zero_fields: vec!["a".into()],
            null_fields: vec!["b".into()],
            omit_empty: vec!["c".into()],
            go_rank: vec![3, u32::MAX, 0],
            zero_scalars: vec![("n".into(), serde_json::json!(0)), ("s".into(), "".into())],
        });
        p.arena.nodes.push(Node {
            int_or_string: true,
            silent: true,
            map_atomic: true,
            ..Node::default()
        });
        p.arena.nodes.push(Node {
            ty: Type::Boolean,
            format: Format::Int64,
            ..Node::default()
        });
        p.arena.object_meta = Some(2);
        p.kinds = vec![(("apps".into(), "v1".into(), "X".into()), "d.X".into(), 0)];
        p.meta = vec![("ListMeta".into(), 1)];
        assert!(same(&p, &unpack(&pack(&p)).unwrap()));
    }

    #[test]
    fn damaged_packed_schemas_are_an_error_not_a_panic() {
        let bytes = crate::assets::inflate(ASSET).unwrap();
        let z = |b: &[u8]| miniz_oxide::deflate::compress_to_vec_zlib(b, 1);
        // Cut in 64 places, and 128 of the first bytes after the magic flipped.
        for len in (0..bytes.len()).step_by(bytes.len() / 64 + 1) {
            assert!(unpack(&z(&bytes[..len])).is_err(), "cut at {len}");
        }
        for i in (MAGIC.len()..(MAGIC.len() + 1024).min(bytes.len())).step_by(8) {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            let _ = unpack(&z(&b));
        }
        assert!(unpack(b"not zlib").is_err());
    }
}
