//! Unit tests of `values`: casts, checks at each limit, and output shapes.

use super::*;
use serde_json::json;

fn field(kind: FieldKind) -> Field {
    Field::new("f", kind)
}

fn text(min: usize, max: usize) -> Field {
    field(FieldKind::Text { min, max, pattern: String::new(), primary_key: false })
}

fn code(field: &Field, json: Json) -> Option<&'static str> {
    match cast(field, &json) {
        Err(error) => Some(error.code),
        Ok(value) => check(field, value.as_ref()).err().map(|error| error.code),
    }
}

#[test]
fn text_lengths_are_checked_at_their_limits() {
    let bounded = text(2, 4);
    assert_eq!(code(&bounded, json!("ab")), None);
    assert_eq!(code(&bounded, json!("abcd")), None);
    assert_eq!(code(&bounded, json!("a")), Some("validation_min_text_constraint"));
    assert_eq!(code(&bounded, json!("abcde")), Some("validation_max_text_constraint"));
    assert_eq!(code(&bounded, json!("éééé")), None, "characters, not bytes");
    assert_eq!(code(&bounded, json!("")), None, "empty and not required");
    let unbounded = text(0, 0);
    assert_eq!(code(&unbounded, json!("x".repeat(TEXT_LEN_MAX_DEFAULT))), None);
    assert_eq!(
        code(&unbounded, json!("x".repeat(TEXT_LEN_MAX_DEFAULT + 1))),
        Some("validation_max_text_constraint")
    );
    assert_eq!(cast(&unbounded, &json!(12)), Ok(Some(Value::from("12"))));
    assert_eq!(cast(&unbounded, &json!(null)), Ok(None));
    assert_eq!(code(&text(0, 0).required(), json!("")), Some("validation_required"));
    assert!(compile_pattern(&"a".repeat(PATTERN_BYTES_MAX)).is_ok());
    let once = pattern("^[a-z]+$").unwrap();
    assert!(Arc::ptr_eq(&once, &pattern("^[a-z]+$").unwrap()), "compiled once, then shared");
    assert!(pattern("(").is_none());
    assert!(compile_pattern(&"a".repeat(PATTERN_BYTES_MAX + 1)).is_err());
}

#[test]
fn numbers_cast_and_check() {
    let number = field(FieldKind::Number { min: Some(-1.0), max: Some(1.5), only_int: false });
    assert_eq!(cast(&number, &json!("1.5")), Ok(Some(Value::Float(1.5))));
    assert_eq!(cast(&number, &json!(" 1 ")), Ok(Some(Value::Int(1))));
    assert_eq!(cast(&number, &json!("")), Ok(Some(Value::Int(0))));
    assert_eq!(cast(&number, &json!(true)), Ok(Some(Value::Int(1))));
    assert_eq!(code(&number, json!(1.5)), None);
    assert_eq!(code(&number, json!(1.6)), Some("validation_max_number_constraint"));
    assert_eq!(code(&number, json!(-1)), None);
    assert_eq!(code(&number, json!(-1.01)), Some("validation_min_number_constraint"));
    for bad in [json!("x"), json!("inf"), json!("NaN"), json!([1]), json!({})] {
        assert_eq!(code(&number, bad.clone()), Some("validation_not_a_number"), "{bad}");
    }
    let whole = field(FieldKind::Number { min: None, max: None, only_int: true }).required();
    assert_eq!(code(&whole, json!(2.5)), Some("validation_only_int_constraint"));
    assert_eq!(code(&whole, json!(0)), Some("validation_required"), "0 is blank");
    assert_eq!(number_value(3.0), Value::Int(3));
    assert_eq!(number_value(1e16), Value::Float(1e16));
}

#[test]
fn emails_urls_and_dates() {
    for good in ["a@b.co", "first.last+tag@sub.example.org", "ü@bücher.de"] {
        assert!(email_domain(good).is_some(), "{good}");
    }
    for bad in [
        "",
        "a",
        "a@",
        "@b.org",
        "a@b",
        "a b@c.org",
        "a@b..org",
        "a@-?.org",
        &format!("{}@b.org", "a".repeat(EMAIL_BYTES_MAX)),
    ] {
        assert!(email_domain(bad).is_none(), "{bad}");
    }
    assert_eq!(url_host("https://user:pw@example.org:8080/p?q#f"), Some("example.org"));
    assert_eq!(url_host("ftp://files.example.org"), Some("files.example.org"));
    let long_url = |len: usize| format!("https://x.org/{}", "p".repeat(len - 14));
    assert!(url_host(&long_url(URL_BYTES_MAX)).is_some());
    assert!(url_host(&long_url(URL_BYTES_MAX + 1)).is_none());
    let long_email = |len: usize| format!("{}@b.org", "a".repeat(len - 6));
    assert!(email_domain(&long_email(EMAIL_BYTES_MAX)).is_some());
    assert!(email_domain(&long_email(EMAIL_BYTES_MAX + 1)).is_none());
    for bad in ["example.org", "https://", "1http://x", "http://exa mple.org", "://x"] {
        assert!(url_host(bad).is_none(), "{bad}");
    }
    let email =
        field(FieldKind::Email { except_domains: vec![], only_domains: vec!["ok.org".into()] });
    assert_eq!(code(&email, json!("a@OK.org")), None, "domains compare case-insensitively");
    assert_eq!(code(&email, json!("a@no.org")), Some("validation_email_domain_not_allowed"));
    let min = nanodb::Date::parse("2024-01-01").unwrap();
    let date = field(FieldKind::Date { min: Some(min), max: None });
    assert_eq!(cast(&date, &json!("2024-01-01 00:00:00.000Z")), Ok(Some(Value::Date(min))));
    assert_eq!(code(&date, json!("2024-01-01T00:00:00Z")), None, "at the minimum");
    assert_eq!(
        code(&date, json!("2023-12-31 23:59:59.999Z")),
        Some("validation_min_date_constraint")
    );
    assert_eq!(code(&date, json!("soon")), Some("validation_invalid_date"));
    assert_eq!(cast(&date, &json!("")), Ok(None));
}

#[test]
fn selects_relations_and_json() {
    let values = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    let single = field(FieldKind::Select { values: values.clone(), max_select: 1 });
    let multiple = field(FieldKind::Select { values, max_select: 2 });
    assert_eq!(cast(&single, &json!(["a"])), Ok(Some(Value::from("a"))));
    assert_eq!(cast(&single, &json!("")), Ok(None));
    assert_eq!(code(&single, json!(["a", "b"])), Some("validation_too_many_values"));
    assert_eq!(code(&single, json!("z")), Some("validation_invalid_value"));
    let deduplicated = cast(&multiple, &json!(["a", "a", "", "b"])).unwrap();
    assert_eq!(deduplicated, Some(Value::Array(vec![Value::from("a"), Value::from("b")])));
    assert_eq!(code(&multiple, json!(["a", "b"])), None);
    assert_eq!(code(&multiple, json!(["a", "b", "c"])), Some("validation_too_many_values"));
    let relation = field(FieldKind::Relation {
        collection_id: "x".into(),
        cascade_delete: false,
        min_select: 2,
        max_select: 3,
    });
    assert_eq!(code(&relation, json!(["r1"])), Some("validation_not_enough_values"));
    assert_eq!(code(&relation, json!(["r1", "r2"])), None);
    let sized = field(FieldKind::Json { max_size: 9 });
    assert_eq!(code(&sized, json!({"a": 12})), None, "{{\"a\":12}} is 8 bytes");
    assert_eq!(code(&sized, json!({"a": 123})), None, "9 bytes: at the limit");
    assert_eq!(code(&sized, json!({"a": 1234})), Some("validation_json_size_limit"));
    assert_eq!(cast(&sized, &json!(null)), Ok(None));
}

/// Repeats are dropped with a set (linear time), and an array longer than the field holds
/// fails at the first value past `max_select`, not after a quadratic pass over all of it.
#[test]
fn many_values_are_deduplicated_in_linear_time_and_capped_first() {
    const COUNT: usize = 200_000;
    let relation = |max_select| {
        field(FieldKind::Relation {
            collection_id: "x".into(),
            cascade_delete: false,
            min_select: 0,
            max_select,
        })
    };
    let ids: Vec<String> = (0..COUNT).map(|n| format!("id{n:013}")).collect();
    let started = std::time::Instant::now();
    let all = cast(&relation(COUNT), &json!(ids)).unwrap();
    assert!(matches!(&all, Some(Value::Array(items)) if items.len() == COUNT));
    assert_eq!(distinct(ids.iter().cloned().map(Ok), COUNT).unwrap().len(), COUNT);
    let over = cast(&relation(COUNT - 1), &json!(ids)).unwrap_err();
    assert_eq!(over.code, "validation_too_many_values");
    assert_eq!(over.message, format!("Select no more than {}.", COUNT - 1));
    let repeated = vec!["same"; COUNT];
    assert_eq!(
        cast(&relation(2), &json!(repeated)).unwrap(),
        Some(Value::Array(vec!["same".into()]))
    );
    // A quadratic pass over 200 000 distinct values takes minutes; a set takes milliseconds.
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
}

#[test]
fn outputs_have_the_field_shape() {
    let multiple = field(FieldKind::Select { values: vec!["a".into()], max_select: 3 });
    let single = field(FieldKind::Select { values: vec!["a".into()], max_select: 1 });
    assert_eq!(output(&multiple, None), json!([]));
    assert_eq!(
        output(&multiple, Some(&Value::from("a"))),
        json!(["a"]),
        "stored when it was single"
    );
    assert_eq!(
        output(&single, Some(&Value::Array(vec![Value::from("a"), Value::from("b")]))),
        json!("b")
    );
    assert_eq!(output(&single, None), json!(""));
    assert_eq!(output(&field(FieldKind::Bool), None), json!(false));
    assert_eq!(
        output(&field(FieldKind::Number { min: None, max: None, only_int: false }), None),
        json!(0)
    );
    assert_eq!(output(&field(FieldKind::Json { max_size: 0 }), None), json!(null));
    let date = nanodb::Date::parse("2024-05-01T10:20:30.123Z").unwrap();
    assert_eq!(
        output(&field(FieldKind::Date { min: None, max: None }), Some(&Value::Date(date))),
        json!("2024-05-01 10:20:30.123Z")
    );
    assert!(is_blank(Some(&Value::Float(0.0))) && !is_blank(Some(&Value::Bool(true))));
}
