use super::*;
use serde_json::json;

const SEED_EVENT: &str = r#"{"user": 1, "ts": "1234567890", "latlong": "76.865, 98.975",
    "noun": "bill", "verb": "paid", "time": 5,
    "properties": {"amount": 3000, "type": "electricity"}}"#;

fn error_of<T: std::fmt::Debug>(
    result: Result<T, InvalidInput>,
) -> (InputErrorCode, Option<String>) {
    let e = result.expect_err("should be refused");
    (e.code, e.field)
}

#[test]
fn the_seed_event_parses() {
    let s = parse_activity(SEED_EVENT.as_bytes()).unwrap();
    assert_eq!(s.user, Some(UserId(1)));
    assert_eq!(s.id, None);
    assert_eq!(s.activity.noun, "bill");
    assert_eq!(s.activity.ts, Some(Millis(1_234_567_890_000)));
    assert_eq!(s.activity.properties["amount"], 3000);
    assert_eq!(s.activity.time, Some(5.0));
}

#[test]
fn timestamps_in_every_accepted_form() {
    let want = Millis(1_234_567_890_000);
    for v in [
        json!(1_234_567_890),
        json!("1234567890"),
        json!(1_234_567_890_000u64),
        json!("1234567890000"),
        json!("2009-02-13T23:31:30Z"),
        json!("2009-02-14T01:31:30+02:00"),
    ] {
        assert_eq!(parse_client_timestamp(&v), Ok(want), "{v}");
    }
    assert_eq!(parse_client_timestamp(&json!(1.5)), Ok(Millis(1_500)));
    for bad in [
        json!(-1),
        json!("yesterday"),
        json!(true),
        json!(""),
        json!("1.2.3"),
    ] {
        assert!(parse_client_timestamp(&bad).is_err(), "{bad}");
    }
}

#[test]
fn each_bad_field_is_named() {
    let cases = [
        (r#"{"noun": "bill"}"#, InputErrorCode::MissingField, "verb"),
        (
            r#"{"noun": 3, "verb": "paid"}"#,
            InputErrorCode::InvalidType,
            "noun",
        ),
        (
            r#"{"noun": "", "verb": "paid"}"#,
            InputErrorCode::InvalidValue,
            "noun",
        ),
        (
            r#"{"noun": "b", "verb": "p", "user": "1"}"#,
            InputErrorCode::InvalidType,
            "user",
        ),
        (
            r#"{"noun": "b", "verb": "p", "user": -1}"#,
            InputErrorCode::InvalidValue,
            "user",
        ),
        (
            r#"{"noun": "b", "verb": "p", "ts": "soon"}"#,
            InputErrorCode::InvalidValue,
            "ts",
        ),
        (
            r#"{"noun": "b", "verb": "p", "latlong": "91, 0"}"#,
            InputErrorCode::InvalidValue,
            "latlong",
        ),
        (
            r#"{"noun": "b", "verb": "p", "properties": []}"#,
            InputErrorCode::InvalidType,
            "properties",
        ),
        (
            r#"{"noun": "b", "verb": "p", "time": -2}"#,
            InputErrorCode::InvalidValue,
            "time",
        ),
        (
            r#"{"noun": "b", "verb": "p", "id": "a#b"}"#,
            InputErrorCode::InvalidValue,
            "id",
        ),
        (
            r#"{"noun": "b", "verb": "p", "propeties": {}}"#,
            InputErrorCode::UnknownField,
            "propeties",
        ),
    ];
    for (body, code, field) in cases {
        assert_eq!(
            error_of(parse_activity(body.as_bytes())),
            (code, Some(field.to_owned())),
            "{body}"
        );
    }
}

#[test]
fn bodies_that_are_not_objects() {
    assert_eq!(
        error_of(parse_activity(b"{")),
        (InputErrorCode::MalformedJson, None)
    );
    assert_eq!(
        error_of(parse_activity(b"[1]")),
        (InputErrorCode::InvalidBody, None)
    );
    assert_eq!(
        error_of(parse_feedback(b"")),
        (InputErrorCode::MalformedJson, None)
    );
}

#[test]
fn the_web_seed_envelope_parses() {
    let body = br#"{"session_id": "D66AC88B-F801-4984-953F-5C6B266494A0",
        "category": "page interaction", "name": "link click",
        "data": {"host": "www.cwtech.dev", "path": "/", "element": "register"},
        "timestamp": "2022-04-01 09:15:27.243860"}"#;
    let EventSubmission::Web(web) = parse_event(body).unwrap() else {
        panic!("read as the mobile shape")
    };
    assert_eq!(
        web.event.session_id.as_str(),
        "d66ac88b-f801-4984-953f-5c6b266494a0"
    );
    assert_eq!(web.event.category.as_deref(), Some("page interaction"));
    assert_eq!(web.event.timestamp, Millis(1_648_804_527_243));
    assert_eq!(web.event.data["element"], "register");
    assert!(matches!(
        parse_event(br#"{"noun": "bill", "verb": "paid"}"#),
        Ok(EventSubmission::Mobile(_))
    ));
}

#[test]
fn web_timestamps_in_the_seed_format_and_rfc3339() {
    for (raw, want) in [
        ("2022-04-01 09:15:27", 1_648_804_527_000),
        ("2022-04-01 09:15:27.5", 1_648_804_527_500),
        ("2022-04-01T09:15:27Z", 1_648_804_527_000),
        ("2022-04-01T11:15:27+02:00", 1_648_804_527_000),
    ] {
        assert_eq!(parse_web_timestamp(&json!(raw)), Ok(Millis(want)), "{raw}");
    }
    for bad in ["yesterday", "2022-04-01", "2022-13-01 09:15:27", ""] {
        assert!(parse_web_timestamp(&json!(bad)).is_err(), "{bad}");
    }
}

#[test]
fn a_malformed_web_envelope_names_its_field() {
    let base = json!({"session_id": "d66ac88b-f801-4984-953f-5c6b266494a0",
        "category": "page interaction", "name": "pageview", "data": {},
        "timestamp": "2022-04-01 09:15:27"});
    for (change, field, code) in [
        (
            json!({"session_id": null}),
            "session_id",
            InputErrorCode::MissingField,
        ),
        (
            json!({"session_id": "abc"}),
            "session_id",
            InputErrorCode::InvalidValue,
        ),
        (json!({"name": null}), "name", InputErrorCode::MissingField),
        (json!({"name": " "}), "name", InputErrorCode::InvalidValue),
        (
            json!({"timestamp": "soon"}),
            "timestamp",
            InputErrorCode::InvalidValue,
        ),
        (
            json!({"timestamp": null}),
            "timestamp",
            InputErrorCode::MissingField,
        ),
        (
            json!({"category": 5}),
            "category",
            InputErrorCode::InvalidType,
        ),
        (json!({"extra": 1}), "extra", InputErrorCode::UnknownField),
    ] {
        let mut body = base.clone();
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        let e = parse_event_value(body).unwrap_err();
        assert_eq!(
            (e.field.as_deref(), e.code),
            (Some(field), code),
            "{change}"
        );
    }
    let mut deep = base.clone();
    deep["data"] = (0..20).fold(json!(1), |inner, _| json!([inner]));
    let e = parse_event_value(deep).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("data"));
    for (number, path) in [
        (json!({"x": [1, 2, 1e200]}), "data.x[2]"),
        (json!({"tiny": -1e-200}), "data.tiny"),
    ] {
        let mut huge = base.clone();
        huge["data"] = number;
        let e = parse_event_value(huge).unwrap_err();
        assert_eq!(
            (e.field.as_deref(), e.code),
            (Some(path), InputErrorCode::InvalidValue)
        );
    }
    // Payload problems are the schema's business, not the envelope's.
    let mut no_category = base.clone();
    no_category.as_object_mut().unwrap().remove("category");
    no_category["data"] = json!("not an object");
    assert!(parse_event_value(no_category).is_ok());
}

#[test]
fn numbers_dynamodb_cannot_store_are_refused_with_their_path() {
    for ok in [
        0.0,
        1e-130,
        -1e-130,
        9.9e125,
        -9.9e125,
        3000.0,
        f64::from(u32::MAX),
    ] {
        assert!(storable_number(ok), "{ok}");
    }
    for bad in [1e126, -1e126, 1e200, 1e-131, -1e-200] {
        assert!(!storable_number(bad), "{bad}");
    }
    let body = br#"{"noun": "bill", "verb": "paid", "properties": {"amount": 1e200}}"#;
    let e = parse_activity(body).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("properties.amount"));
    assert_eq!(e.code, InputErrorCode::InvalidValue);
    let body = br#"{"noun": "bill", "verb": "paid", "properties": {"a": {"b": [1e-200]}}}"#;
    assert_eq!(
        parse_activity(body).unwrap_err().field.as_deref(),
        Some("properties.a.b[0]")
    );
    let body = br#"{"noun": "bill", "verb": "paid", "time": 1e130}"#;
    assert_eq!(
        parse_activity(body).unwrap_err().field.as_deref(),
        Some("time")
    );
    let body =
        br#"{"noun": "bill", "verb": "paid", "properties": {"amount": 12345678901234567890}}"#;
    assert!(parse_activity(body).is_ok(), "big integers are storable");
}

#[test]
fn batches_keep_each_item_verbatim() {
    let items = parse_batch(br#"{"events": [{"b": 1,  "a": 2}, 3]}"#, 100).unwrap();
    assert_eq!(items, [r#"{"b": 1,  "a": 2}"#, "3"]);
    for (body, field) in [
        (&br#"{"events": []}"#[..], Some("events")),
        (br#"{"events": {}}"#, Some("events")),
        (br#"{}"#, Some("events")),
        (br#"{"events": [], "x": 1}"#, Some("x")),
        (br#"[1]"#, None),
        (br#"{"#, None),
    ] {
        assert_eq!(parse_batch(body, 100).unwrap_err().field.as_deref(), field);
    }
    assert!(parse_batch(br#"{"events": [1, 2, 3]}"#, 2).is_err());
}

#[test]
fn feedback_rules() {
    let ok = parse_feedback(br#"{"user": 1, "rating": 4, "comment": "test"}"#).unwrap();
    assert_eq!(u8::from(ok.feedback.rating), 4);
    for (body, code) in [
        (r#"{"rating": 0}"#.to_owned(), InputErrorCode::InvalidValue),
        (
            r#"{"rating": 4.5}"#.to_owned(),
            InputErrorCode::InvalidValue,
        ),
        (r#"{"rating": "4"}"#.to_owned(), InputErrorCode::InvalidType),
        (
            r#"{"comment": "x"}"#.to_owned(),
            InputErrorCode::MissingField,
        ),
        (
            format!(r#"{{"rating": 3, "comment": "{}"}}"#, "x".repeat(1001)),
            InputErrorCode::InvalidValue,
        ),
    ] {
        assert_eq!(
            parse_feedback(body.as_bytes()).unwrap_err().code,
            code,
            "{body}"
        );
    }
    assert!(
        parse_feedback(format!(r#"{{"rating": 3, "comment": "{}"}}"#, "é".repeat(1000)).as_bytes())
            .is_ok()
    );
}

#[test]
fn profiles_need_an_e164_phone() {
    assert!(parse_profile(br#"{"user": 1, "phone": "+15555550123"}"#).is_ok());
    assert_eq!(
        parse_verification(br#"{"code": "012345"}"#).map(|c| c.as_str().to_owned()),
        Ok("012345".to_owned())
    );
    for bad in [
        r#"{"code": "12345"}"#,
        r#"{"code": "12345a"}"#,
        r#"{"code": "1234567"}"#,
    ] {
        assert_eq!(
            error_of(parse_verification(bad.as_bytes())).1,
            Some("code".into()),
            "{bad}"
        );
    }
    assert_eq!(
        error_of(parse_profile(br#"{"user": 1, "phone": "555-0123"}"#)),
        (InputErrorCode::InvalidValue, Some("phone".into()))
    );
    assert_eq!(
        error_of(parse_profile(br#"{"user": 1}"#)),
        (InputErrorCode::MissingField, Some("phone".into()))
    );
}

#[test]
fn a_profile_may_name_a_zone_and_a_locale_and_clear_them_with_null() {
    let update = |body: &str| parse_profile(body.as_bytes()).map(|s| s.update);
    let full = update(
        r#"{"user": 1, "phone": "+15555550123", "time_zone": "America/Sao_Paulo", "locale": "pt-br"}"#,
    )
    .expect("a full profile");
    assert_eq!(
        full.time_zone,
        FieldUpdate::Set(TimeZoneName::parse("America/Sao_Paulo").expect("a zone"))
    );
    assert_eq!(
        full.locale,
        FieldUpdate::Set(Locale::parse("pt-BR").expect("a tag"))
    );
    let left_out = update(r#"{"phone": "+15555550123"}"#).expect("a phone only");
    assert_eq!(
        (left_out.time_zone, left_out.locale),
        (FieldUpdate::Keep, FieldUpdate::Keep)
    );
    let cleared =
        update(r#"{"phone": "+15555550123", "time_zone": null, "locale": null}"#).expect("nulls");
    assert_eq!(
        (cleared.time_zone, cleared.locale),
        (FieldUpdate::Clear, FieldUpdate::Clear)
    );
    for (body, field, code) in [
        (
            r#"{"phone": "+15555550123", "time_zone": "Mars/Olympus"}"#,
            "time_zone",
            InputErrorCode::InvalidValue,
        ),
        (
            r#"{"phone": "+15555550123", "time_zone": "+03:00"}"#,
            "time_zone",
            InputErrorCode::InvalidValue,
        ),
        (
            r#"{"phone": "+15555550123", "locale": "english!"}"#,
            "locale",
            InputErrorCode::InvalidValue,
        ),
        (
            r#"{"phone": "+15555550123", "locale": 7}"#,
            "locale",
            InputErrorCode::InvalidType,
        ),
    ] {
        assert_eq!(
            error_of(parse_profile(body.as_bytes())),
            (code, Some(field.into())),
            "{body}"
        );
    }
}
