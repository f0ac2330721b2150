//! Posted form fields, read one way everywhere, and the small pieces every form page shares: enum values as
//! form values, and a field's problem shown beside it.
//!
//! The one rule for a name that comes more than once: [`Fields::one`] reads the **first** value sent under
//! it and ignores the rest (browsers send fields in the order of the page, so the first is the page's own
//! field); [`Fields::all`] reads every value, in order, for the fields that repeat by design (checkboxes
//! and multi-selects).

use std::collections::BTreeMap;

use maud::{html, Markup};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::words;

/// A form's fields as name/value pairs, in the order they were sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// The first value sent as `name`, without surrounding white space; "" when there is none.
    pub fn one(&self, name: &str) -> &str {
        self.raw(name).trim()
    }

    /// The first value sent as `name` exactly as typed (a pasted CSV keeps its layout).
    pub fn raw(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    }

    /// Every value sent as `name`, in order: the ticked boxes of a group, the choices of a multi-select.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// Whether `name` was sent with a value: a ticked checkbox.
    pub fn ticked(&self, name: &str) -> bool {
        !self.one(name).is_empty()
    }

    /// Every name/value pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets `name` to `value`, replacing every value it had (for filling in a form's first showing).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.retain(|(key, _)| key != name);
        self.0.push((name.to_owned(), value.into()));
    }
}

impl From<Vec<(String, String)>> for Fields {
    fn from(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }
}

/// An enum's wire name (`visiting_staff`), used as form values.
pub fn wire<T: Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The enum value whose wire name is `text`.
pub fn from_wire<T: DeserializeOwned>(text: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
}

/// Each field's problem, by field name.
pub type Problems = BTreeMap<&'static str, String>;

/// The problem with one field, shown beside it.
pub fn field_error(errors: &Problems, field: &str) -> Markup {
    html! {
        @if let Some(problem) = errors.get(field) {
            p.problem.field-error id=(format!("error-{field}")) role="alert" { (words::sentence(problem)) }
        }
    }
}

/// "Nothing was saved: 2 problems to fix below.", above a refused form.
pub fn nothing_saved(errors: &Problems) -> Markup {
    html! {
        @if !errors.is_empty() {
            p.problem #problem role="alert" {
                "Nothing was saved: " (errors.len()) " problem" @if errors.len() > 1 { "s" } " to fix below."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        serde_urlencoded::from_str(&serde_urlencoded::to_string(pairs).unwrap()).unwrap()
    }

    #[test]
    fn a_repeated_name_reads_as_its_first_value_and_all_of_them_in_order() {
        let form = fields(&[
            ("role", "office"),
            ("name", " Jo "),
            ("role", "admin"),
            ("name", "Mallory"),
        ]);
        assert_eq!(form.one("name"), "Jo");
        assert_eq!(form.raw("name"), " Jo ");
        assert_eq!(form.all("role"), ["office", "admin"]);
        assert_eq!(form.one("missing"), "");
        assert!(form.ticked("role") && !form.ticked("missing"));
    }

    #[test]
    fn setting_a_field_replaces_every_value_it_had() {
        let mut form = fields(&[("pupil", "a"), ("pupil", "b")]);
        form.set("pupil", "c");
        assert_eq!(form.all("pupil"), ["c"]);
    }

    #[test]
    fn enum_values_go_to_the_form_and_back() {
        use doorstep_core::domain::Role;
        assert_eq!(wire(Role::VisitingStaff), "visiting_staff");
        assert_eq!(
            from_wire::<Role>("visiting_staff"),
            Some(Role::VisitingStaff)
        );
        assert_eq!(from_wire::<Role>("nobody"), None);
    }
}
