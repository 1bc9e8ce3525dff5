//! A field tree written as Rust constants, and the structural OpenAPI v3
//! schema a CustomResourceDefinition carries for it.
//!
//! Only what makes a schema structural is described: each field's name and
//! type, enums, lists, maps (`additionalProperties`), required fields,
//! `nullable`, and the objects that keep unknown fields
//! (`x-kubernetes-preserve-unknown-fields`). That is what decides whether a
//! field is known, which is what `--validate=strict` checks.

use serde_json::{Map, Value, json};

/// The type of a value in a field tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// `string`.
    Str,
    /// `integer`.
    Int,
    /// `integer`, format `int32`.
    Int32,
    /// `number`.
    Num,
    /// `number`, format `double`.
    Double,
    /// `boolean`.
    Bool,
    /// `string`, format `date-time` (RFC 3339).
    Time,
    /// `string`, format `byte` (base64).
    Bytes,
    /// An integer or a string (`x-kubernetes-int-or-string`).
    IntOrStr,
    /// A string, one of these.
    Enum(&'static [&'static str]),
    /// An object with these fields and no others.
    Obj(&'static [Field]),
    /// An object with these fields whose other fields are kept as they come.
    OpenObj(&'static [Field]),
    /// Any object (`x-kubernetes-preserve-unknown-fields` and nothing else).
    Open,
    /// A list of values of this type.
    List(&'static Ty),
    /// An object whose keys are free and whose values are of this type.
    Map(&'static Ty),
}

/// One named field of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The field's name in JSON.
    pub name: &'static str,
    /// Its type.
    pub ty: Ty,
    /// The object is invalid without it.
    pub required: bool,
    /// `null` is a valid value.
    pub nullable: bool,
}

/// An optional field.
pub const fn f(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
        nullable: false,
    }
}

/// A required field.
pub const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        required: true,
        ..f(name, ty)
    }
}

/// An optional field that may be `null`.
pub const fn nullable(name: &'static str, ty: Ty) -> Field {
    Field {
        nullable: true,
        ..f(name, ty)
    }
}

impl Ty {
    /// The OpenAPI v3 schema of a value of this type.
    pub fn openapi(&self) -> Value {
        match self {
            Ty::Str => json!({"type": "string"}),
            Ty::Int => json!({"type": "integer"}),
            Ty::Int32 => json!({"type": "integer", "format": "int32"}),
            Ty::Num => json!({"type": "number"}),
            Ty::Double => json!({"type": "number", "format": "double"}),
            Ty::Bool => json!({"type": "boolean"}),
            Ty::Time => json!({"type": "string", "format": "date-time"}),
            Ty::Bytes => json!({"type": "string", "format": "byte"}),
            Ty::IntOrStr => json!({"x-kubernetes-int-or-string": true,
                "anyOf": [{"type": "integer"}, {"type": "string"}]}),
            Ty::Enum(values) => json!({"type": "string", "enum": values}),
            Ty::Obj(fields) => object_schema(fields),
            Ty::OpenObj(fields) => {
                let mut schema = object_schema(fields);
                schema["x-kubernetes-preserve-unknown-fields"] = json!(true);
                schema
            }
            Ty::Open => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
            Ty::List(item) => json!({"type": "array", "items": item.openapi()}),
            Ty::Map(value) => json!({"type": "object", "additionalProperties": value.openapi()}),
        }
    }
}

/// `type: object` with these `properties` and, when any, `required`.
pub fn object_schema(fields: &[Field]) -> Value {
    let mut properties = Map::new();
    for field in fields {
        let mut schema = field.ty.openapi();
        if field.nullable {
            schema["nullable"] = json!(true);
        }
        properties.insert(field.name.to_string(), schema);
    }
    let mut schema = json!({"type": "object", "properties": properties});
    let required: Vec<&str> = fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::Ty::*;
    use super::*;
    use crate::schema::{FieldValidation, validate};

    const INNER: &[Field] = &[req("name", Str), f("port", Int32)];
    const ROOT: &[Field] = &[
        f("inner", Obj(INNER)),
        f("items", List(&Obj(INNER))),
        f("labels", Map(&Str)),
        f("mode", Enum(&["A", "B"])),
        nullable("maybe", Bool),
        f("free", Open),
    ];

    #[test]
    fn unknown_fields_are_refused_at_every_depth_and_known_ones_kept() {
        let schema = json!({"type": "object", "properties": {"spec": Obj(ROOT).openapi()}});
        let object = |spec: Value| json!({"apiVersion": "x/v1", "kind": "X", "spec": spec});
        let good = object(json!({"inner": {"name": "a", "port": 1},
            "items": [{"name": "b"}], "labels": {"any": "thing"}, "mode": "A",
            "maybe": null, "free": {"whatever": [1]}}));
        let kept = validate(&schema, &good, FieldValidation::Strict).expect("valid");
        assert_eq!(kept.object, good);
        for (bad, field) in [
            (json!({"nope": 1}), "spec.nope"),
            (
                json!({"inner": {"name": "a", "nope": 1}}),
                "spec.inner.nope",
            ),
            (
                json!({"items": [{"name": "a", "nope": 1}]}),
                "spec.items[0].nope",
            ),
        ] {
            let errors = validate(&schema, &object(bad), FieldValidation::Strict).unwrap_err();
            assert_eq!(errors[0].field, field, "{errors:?}");
        }
        let errors = validate(
            &schema,
            &object(json!({"inner": {}})),
            FieldValidation::Strict,
        )
        .unwrap_err();
        assert_eq!(errors[0].field, "spec.inner.name");
        let errors = validate(
            &schema,
            &object(json!({"mode": "C"})),
            FieldValidation::Strict,
        )
        .unwrap_err();
        assert_eq!(errors[0].reason, "FieldValueNotSupported");
    }
}
