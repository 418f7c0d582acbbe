//! Requests made from a method's input descriptor: empty, random but well
//! formed, raw bytes, and hostile variants of every string and repeated
//! field (a NUL character, a huge value, too many items).

use prost::Message as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value};
use rand::Rng;
use rand::rngs::StdRng;

/// How deep random messages and field walks go (the protos nest less).
const DEPTH: usize = 4;

/// A request to send, and what it is.
#[derive(Clone, Debug)]
pub struct Variant {
    pub label: String,
    pub bytes: Vec<u8>,
}

fn random_string(rng: &mut StdRng) -> String {
    let len = rng.random_range(0..12);
    (0..len).map(|_| char::from(rng.random_range(b'a'..=b'z'))).collect()
}

fn random_value(kind: &Kind, rng: &mut StdRng, depth: usize) -> Value {
    match kind {
        Kind::Double => Value::F64(rng.random_range(-1e6..1e6)),
        Kind::Float => Value::F32(rng.random_range(-1e3..1e3)),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(rng.random_range(-1000..1000)),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(rng.random_range(-1_000_000..1_000_000)),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(rng.random_range(0..1000)),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(rng.random_range(0..1_000_000)),
        Kind::Bool => Value::Bool(rng.random()),
        Kind::String => Value::String(random_string(rng)),
        Kind::Bytes => Value::Bytes(random_string(rng).into_bytes().into()),
        Kind::Enum(e) => {
            let values: Vec<i32> = e.values().map(|v| v.number()).collect();
            Value::EnumNumber(values.get(rng.random_range(0..values.len().max(1))).copied().unwrap_or(0))
        }
        Kind::Message(m) => Value::Message(random_message(m, rng, depth + 1)),
    }
}

/// A message whose fields are random but well formed: each field set with
/// one chance in two, repeated fields with up to three items.
pub fn random_message(desc: &MessageDescriptor, rng: &mut StdRng, depth: usize) -> DynamicMessage {
    let mut message = DynamicMessage::new(desc.clone());
    if depth >= DEPTH {
        return message;
    }
    for field in desc.fields() {
        if !rng.random_bool(0.5) {
            continue;
        }
        let value = if field.is_map() {
            let Kind::Message(entry) = field.kind() else { continue };
            let (key, value) = (entry.map_entry_key_field(), entry.map_entry_value_field());
            let mut map = std::collections::HashMap::new();
            for _ in 0..rng.random_range(0..3) {
                if let Some(k) = map_key(&random_value(&key.kind(), rng, depth)) {
                    map.insert(k, random_value(&value.kind(), rng, depth));
                }
            }
            Value::Map(map)
        } else if field.is_list() {
            Value::List((0..rng.random_range(0..3)).map(|_| random_value(&field.kind(), rng, depth)).collect())
        } else {
            random_value(&field.kind(), rng, depth)
        };
        message.set_field(&field, value);
    }
    message
}

fn map_key(value: &Value) -> Option<MapKey> {
    Some(match value {
        Value::String(s) => MapKey::String(s.clone()),
        Value::I32(v) => MapKey::I32(*v),
        Value::I64(v) => MapKey::I64(*v),
        Value::U32(v) => MapKey::U32(*v),
        Value::U64(v) => MapKey::U64(*v),
        Value::Bool(v) => MapKey::Bool(*v),
        _ => return None,
    })
}

/// A path of fields down to one string or repeated field.
type Path = Vec<FieldDescriptor>;

fn walk(desc: &MessageDescriptor, prefix: &Path, depth: usize, strings: &mut Vec<Path>, lists: &mut Vec<Path>) {
    if depth >= DEPTH {
        return;
    }
    for field in desc.fields() {
        let mut path = prefix.clone();
        path.push(field.clone());
        if field.is_list() && depth == 0 {
            lists.push(path.clone());
        }
        match field.kind() {
            Kind::String => strings.push(path),
            Kind::Message(m) if field.is_map() && m.map_entry_key_field().kind() == Kind::String => strings.push(path),
            Kind::Message(_) if field.is_map() => {}
            Kind::Message(m) => walk(&m, &path, depth + 1, strings, lists),
            _ => {}
        }
    }
}

/// Sets the field at `path` of `message` to `leaf`, creating the messages
/// on the way (one item in a list, one entry in a map).
fn set_path(message: &mut DynamicMessage, path: &[FieldDescriptor], leaf: &Value) {
    let Some((field, rest)) = path.split_first() else { return };
    if rest.is_empty() {
        let value = if field.is_map() {
            let Value::String(key) = leaf else { return };
            Value::Map([(MapKey::String(key.clone()), default_of(field))].into())
        } else if field.is_list() {
            Value::List(vec![leaf.clone()])
        } else {
            leaf.clone()
        };
        message.set_field(field, value);
        return;
    }
    let Kind::Message(child_desc) = field.kind() else { return };
    let mut child = DynamicMessage::new(child_desc);
    set_path(&mut child, rest, leaf);
    let value = if field.is_list() { Value::List(vec![Value::Message(child)]) } else { Value::Message(child) };
    message.set_field(field, value);
}

/// The default of a map field's values.
fn default_of(field: &FieldDescriptor) -> Value {
    match field.kind() {
        Kind::Message(entry) => Value::default_value_for_field(&entry.map_entry_value_field()),
        _ => Value::String(String::new()),
    }
}

fn label(path: &[FieldDescriptor]) -> String {
    path.iter().map(|f| f.name()).collect::<Vec<_>>().join(".")
}

/// Every variant of bad input for a method whose request is `desc`:
/// `random` well-formed messages and raw byte strings, and for each string
/// field a NUL and a value of `huge` bytes, and for each top-level repeated
/// field `items` items.
pub fn hostile(desc: &MessageDescriptor, rng: &mut StdRng, random: usize, huge: usize, items: usize) -> Vec<Variant> {
    let mut out = vec![Variant { label: "empty".into(), bytes: Vec::new() }];
    for i in 0..random {
        let bytes = random_message(desc, rng, 0).encode_to_vec();
        out.push(Variant { label: format!("random #{i}"), bytes });
        let len = rng.random_range(1..256);
        let raw: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        out.push(Variant { label: format!("raw bytes #{i}"), bytes: raw });
    }
    let (mut strings, mut lists) = (Vec::new(), Vec::new());
    walk(desc, &Vec::new(), 0, &mut strings, &mut lists);
    let nul = Value::String("fault\0suite".into());
    let big = Value::String("x".repeat(huge));
    for path in &strings {
        for (what, leaf) in [("NUL", &nul), ("huge", &big)] {
            let mut message = random_message(desc, rng, 0);
            set_path(&mut message, path, leaf);
            out.push(Variant { label: format!("{what} in {}", label(path)), bytes: message.encode_to_vec() });
        }
    }
    for path in &lists {
        let Some(field) = path.first() else { continue };
        if field.is_map() {
            continue;
        }
        let item = match field.kind() {
            Kind::Message(m) => Value::Message(DynamicMessage::new(m)),
            kind => Value::default_value(&kind),
        };
        let mut message = DynamicMessage::new(desc.clone());
        message.set_field(field, Value::List(vec![item; items]));
        out.push(Variant { label: format!("{items} items in {}", field.name()), bytes: message.encode_to_vec() });
    }
    out
}
