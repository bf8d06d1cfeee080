//! A minimal YAML document tree. serde-saphyr has no Value type, and
//! deserializing straight into structs would let serde word the errors; with
//! our own tree every message names the file, bond and key.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in file order. Keys are rendered as text; non-scalar keys
    /// become a placeholder that no known key matches.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// How a value is quoted back in "got ..." messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Node::Null => "nothing".into(),
            Node::Bool(b) => b.to_string(),
            Node::Int(i) => i.to_string(),
            Node::Float(f) => f.to_string(),
            Node::Str(s) => format!("{s:?}"),
            Node::Seq(_) => "a list".into(),
            Node::Map(_) => "a mapping".into(),
        }
    }

    /// Text of a scalar that may stand for a name or number. Booleans are
    /// excluded: YAML turns a bare `on` into true, which is never a name.
    pub(crate) fn as_text(&self) -> Option<String> {
        match self {
            Node::Str(s) => Some(s.clone()),
            Node::Int(i) => Some(i.to_string()),
            _ => None,
        }
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(i128::try_from(v).map_or(Node::Float(v as f64), Node::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry::<Node, Node>()? {
            let key = match key {
                Node::Str(s) => s,
                Node::Int(i) => i.to_string(),
                Node::Bool(b) => b.to_string(),
                Node::Float(f) => f.to_string(),
                Node::Null => "~".to_owned(),
                Node::Seq(_) | Node::Map(_) => "<complex key>".to_owned(),
            };
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

/// Parses YAML text; the error is saphyr's first message line, which
/// carries line and column.
pub(crate) fn parse_yaml(text: &str) -> Result<Node, String> {
    serde_saphyr::from_str::<Node>(text).map_err(|e| {
        let full = e.to_string();
        let first = full.lines().next().unwrap_or("").trim();
        let first = first.strip_prefix("error: ").unwrap_or(first);
        // Library advice about its own options means nothing to a user.
        let first = first
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(first);
        format!("invalid YAML: {first}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Node {
        match parse_yaml(&format!("k: {text}")).unwrap() {
            Node::Map(mut m) => m.remove(0).1,
            other => panic!("not a map: {other:?}"),
        }
    }

    /// Pins down how saphyr types plain scalars, since option parsing
    /// depends on it.
    #[test]
    fn scalar_typing() {
        assert_eq!(value("on"), Node::Bool(true));
        assert_eq!(value("off"), Node::Bool(false));
        assert_eq!(value("yes"), Node::Bool(true));
        assert_eq!(value("\"on\""), Node::Str("on".into()));
        assert_eq!(value("1500"), Node::Int(1500));
        assert_eq!(value("0x10"), Node::Int(16));
        assert_eq!(value("-1"), Node::Int(-1));
        assert_eq!(value("1.5"), Node::Float(1.5));
        assert_eq!(value("802.3ad"), Node::Str("802.3ad".into()));
        assert_eq!(value("layer3+4"), Node::Str("layer3+4".into()));
        assert_eq!(
            value("00:11:22:33:44:55"),
            Node::Str("00:11:22:33:44:55".into())
        );
        assert_eq!(value("2001:db8::1/64"), Node::Str("2001:db8::1/64".into()));
        assert_eq!(value("~"), Node::Null);
        assert_eq!(value(""), Node::Null);
        assert_eq!(
            value("[a, 1]"),
            Node::Seq(vec![Node::Str("a".into()), Node::Int(1)])
        );
    }

    #[test]
    fn map_keys_become_text() {
        assert_eq!(
            parse_yaml("1500: x").unwrap(),
            Node::Map(vec![("1500".into(), Node::Str("x".into()))])
        );
    }

    #[test]
    fn syntax_errors_are_one_line_with_position() {
        let e = parse_yaml("a: [1,\n").unwrap_err();
        assert!(e.starts_with("invalid YAML: line 1 column 4"), "{e}");
        assert!(!e.contains('\n'));
        let e = parse_yaml("a: 1\na: 2\n").unwrap_err();
        assert!(
            e.contains("line 2") && e.contains("duplicate mapping key: a"),
            "{e}"
        );
        assert!(!e.contains("DuplicateKeyPolicy"), "{e}");
    }
}
