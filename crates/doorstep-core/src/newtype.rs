//! The conversions every validated newtype has, written once: a type made only by its `parse` (or `new`)
//! is read through it (`str::parse`, serde's `try_from`) and written back as what it holds.
//!
//! The macros are exported so the phone's own newtypes (`OfficeUrl`) convert by the same rule.

/// A type kept as text and made only by `parse(&str) -> Result<Self, $error>`: `str::parse` and
/// `TryFrom<String>` (serde's `try_from = "String"`) go through `parse`; `Display` and `From<$type> for
/// String` (serde's `into = "String"`) give back the text `$text`, borrowed from `$value: &$type`.
///
/// `doorstep_core::parsed_text!(Postcode, PostcodeError, |postcode| &postcode.0);`
#[macro_export]
macro_rules! parsed_text {
    ($type:ty, $error:ty, |$value:ident| $text:expr) => {
        impl ::std::str::FromStr for $type {
            type Err = $error;
            fn from_str(text: &str) -> ::std::result::Result<Self, $error> {
                Self::parse(text)
            }
        }

        impl ::std::convert::TryFrom<::std::string::String> for $type {
            type Error = $error;
            fn try_from(text: ::std::string::String) -> ::std::result::Result<Self, $error> {
                Self::parse(&text)
            }
        }

        impl ::std::convert::From<$type> for ::std::string::String {
            fn from($value: $type) -> Self {
                let $value = &$value;
                ::std::borrow::ToOwned::to_owned($text)
            }
        }

        impl ::std::fmt::Display for $type {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                let $value = self;
                f.write_str($text)
            }
        }
    };
}

/// A number in a range, made only by `new($number) -> Result<Self, $error>` and read by `get`:
/// `TryFrom<$number>` (serde's `try_from`) goes through `new`, `From<$type> for $number` (serde's `into`)
/// through `get`.
#[macro_export]
macro_rules! checked_number {
    ($type:ty, $number:ty, $error:ty) => {
        impl ::std::convert::TryFrom<$number> for $type {
            type Error = $error;
            fn try_from(value: $number) -> ::std::result::Result<Self, $error> {
                Self::new(value)
            }
        }

        impl ::std::convert::From<$type> for $number {
            fn from(value: $type) -> $number {
                value.get()
            }
        }
    };
}

/// The JSON Schema of a newtype whose rule serde cannot see (it is checked in `parse` or `new`), named
/// after the type: `schema_of!(PhoneNumber, { "type": "string", ... })`. Only with the `schema` feature.
macro_rules! schema_of {
    ($type:ident, $schema:tt) => {
        #[cfg(feature = "schema")]
        impl schemars::JsonSchema for $type {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($type).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!($schema)
            }
        }
    };
}

pub(crate) use schema_of;
