//! The password fields of an auth record body (`password`, `passwordConfirm`,
//! `oldPassword`), checked before anything is hashed: hashing is slow, so a body that is
//! wrong anyway never costs one. Credentials are read as text whatever JSON scalar they
//! arrive as (`body_text`): a form or multipart body infers `12345678` to a number.
//!
//! Thread safety: pure functions.

use crate::auth::password::check_length;
use crate::error::{Error, FieldError, FieldErrors};
use crate::records::values::text_of;
use crate::schema::defaults::PASSWORD_LEN_MIN_DEFAULT;
use crate::schema::field::FieldKind;
use crate::schema::CollectionDef;
use serde_json::{Map as JsonMap, Value as Json};

/// The new password `body` sets, checked against the collection's minimum,
/// `PASSWORD_BYTES_MAX` and `passwordConfirm`; `None` if it sets none. Failures are 400s
/// under `message`.
pub fn new_password(
    def: &CollectionDef,
    body: &JsonMap<String, Json>,
    message: &str,
) -> Result<Option<String>, Error> {
    let fail = |field: &str, code, text: String| Error::Validation {
        message: message.to_string(),
        fields: FieldErrors::from([(field.to_string(), FieldError::new(code, text))]),
    };
    let password = match body.get("password").map(text_of) {
        None => return Ok(None),
        Some(Ok(text)) if text.is_empty() => return Ok(None),
        Some(Ok(text)) => text,
        Some(Err(_)) => {
            return Err(fail("password", "validation_invalid_value", "Must be text.".into()))
        }
    };
    let min = match def.field("password").map(|field| &field.kind) {
        Some(FieldKind::Password { min }) => *min,
        _ => PASSWORD_LEN_MIN_DEFAULT,
    };
    if let Err(error) = check_length(&password, min) {
        return Err(fail("password", error.code, error.message));
    }
    if body_text(body, "passwordConfirm") != password {
        return Err(fail(
            "passwordConfirm",
            "validation_values_mismatch",
            "Values don't match.".into(),
        ));
    }
    Ok(Some(password))
}

/// The `oldPassword` of a body, if it has one.
pub fn old_password(body: &JsonMap<String, Json>) -> Option<String> {
    body.get("oldPassword").and_then(|json| text_of(json).ok())
}

/// The text of `body[name]`: a string, or a number or bool as its JSON text (a form or
/// multipart body infers a password such as `12345678` to a number); `""` when missing,
/// null, an array or an object.
pub fn body_text(body: &JsonMap<String, Json>, name: &str) -> String {
    body.get(name).and_then(|json| text_of(json).ok()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::password::PASSWORD_BYTES_MAX;
    use crate::schema::defaults::users;
    use serde_json::json;

    fn check(body: Json) -> Result<Option<String>, Error> {
        new_password(&users(), body.as_object().unwrap(), "Failed.")
    }

    fn code(result: Result<Option<String>, Error>, field: &str) -> &'static str {
        match result {
            Err(Error::Validation { fields, .. }) => fields[field].code,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn passwords_are_checked_at_their_limits() {
        assert_eq!(check(json!({})).unwrap(), None);
        assert_eq!(check(json!({"password": ""})).unwrap(), None);
        let eight = "12345678";
        assert_eq!(
            check(json!({"password": eight, "passwordConfirm": eight})).unwrap().unwrap(),
            eight
        );
        assert_eq!(
            code(check(json!({"password": "1234567", "passwordConfirm": "1234567"})), "password"),
            "validation_min_text_constraint"
        );
        let longest = "p".repeat(PASSWORD_BYTES_MAX);
        assert!(check(json!({"password": longest, "passwordConfirm": longest})).is_ok());
        let over = "p".repeat(PASSWORD_BYTES_MAX + 1);
        assert_eq!(
            code(check(json!({"password": over, "passwordConfirm": over})), "password"),
            "validation_max_text_constraint"
        );
        assert_eq!(
            code(
                check(json!({"password": eight, "passwordConfirm": "other123"})),
                "passwordConfirm"
            ),
            "validation_values_mismatch"
        );
        assert_eq!(
            code(check(json!({"password": eight})), "passwordConfirm"),
            "validation_values_mismatch"
        );
        assert_eq!(
            check(json!({"password": 12345678, "passwordConfirm": 12345678})).unwrap().unwrap(),
            "12345678",
            "a form body infers a numeric password to a number"
        );
        assert_eq!(
            check(json!({"password": true, "passwordConfirm": "true"})).unwrap_err().status(),
            400,
            "4 characters"
        );
        assert_eq!(
            code(check(json!({"password": [12345678]})), "password"),
            "validation_invalid_value"
        );
        assert_eq!(
            old_password(json!({"oldPassword": 1234}).as_object().unwrap()).unwrap(),
            "1234"
        );
        assert_eq!(body_text(json!({"email": false}).as_object().unwrap(), "email"), "false");
        assert_eq!(body_text(json!({"email": {}}).as_object().unwrap(), "email"), "");
        assert_eq!(
            old_password(json!({"oldPassword": "x"}).as_object().unwrap()).as_deref(),
            Some("x")
        );
    }
}
