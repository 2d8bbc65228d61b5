//! Every transformation of the specification, with missing, null, wrong-type and unicode
//! inputs.

use serde_json::json;

use crate::support::{code, compile, ok, out, single, task, transform};
use hub_mapping::RecordOutcome;

fn one(t: serde_json::Value, v: serde_json::Value) -> serde_json::Value {
    ok(transform(json!([t]), v))
}

#[test]
fn string_case_and_trim() {
    assert_eq!(
        one(json!({"type": "uppercase"}), json!("straße ǆ")),
        json!("STRASSE Ǆ")
    );
    assert_eq!(
        one(json!({"type": "lowercase"}), json!("ÀÉÎ Σ")),
        json!("àéî σ")
    );
    assert_eq!(
        one(json!({"type": "trim"}), json!("\u{3000} \tx y\n")),
        json!("x y")
    );
    // Numbers and booleans are text to string transformations.
    assert_eq!(
        one(json!({"type": "uppercase"}), json!(true)),
        json!("TRUE")
    );
    assert_eq!(one(json!({"type": "trim"}), json!(12.5)), json!("12.5"));
    assert_eq!(
        code(transform(json!([{"type": "uppercase"}]), json!({"a": 1}))),
        "invalid_type"
    );
    assert_eq!(
        code(transform(json!([{"type": "lowercase"}]), json!(["A"]))),
        "invalid_type"
    );
}

#[test]
fn truncate_counts_characters() {
    let t = json!({"type": "truncate", "config": {"maxLength": 3}});
    assert_eq!(one(t.clone(), json!("héllo")), json!("hél"));
    assert_eq!(one(t.clone(), json!("😀😀😀😀")), json!("😀😀😀"));
    assert_eq!(one(t.clone(), json!("ab")), json!("ab"));
    assert_eq!(one(t, json!(123_456)), json!("123"));
}

#[test]
fn replace_and_regex_replace_every_occurrence() {
    let replace = json!({"type": "replace", "config": {"search": "-", "replace": "–"}});
    assert_eq!(one(replace, json!("a-b-c")), json!("a–b–c"));
    let regex = json!({"type": "regex_replace", "config": {"pattern": "(\\d{3})(\\d{4})", "replace": "$1-$2"}});
    assert_eq!(
        one(regex, json!("5551234 and 5559876")),
        json!("555-1234 and 555-9876")
    );
    let unicode = json!({"type": "regex_replace", "config": {"pattern": "\\p{Greek}+", "replace": "<greek>"}});
    assert_eq!(
        one(unicode, json!("alpha αβγ omega")),
        json!("alpha <greek> omega")
    );
    let named = json!({"type": "regex_replace", "config": {"pattern": "(?P<user>[^@]+)@.*", "replace": "${user}"}});
    assert_eq!(one(named, json!("ada@example.com")), json!("ada"));
}

#[test]
fn split_picks_a_part_or_leaves_the_field_unset() {
    let second = json!({"type": "split", "config": {"separator": ", ", "index": 1}});
    assert_eq!(one(second.clone(), json!("Lovelace, Ada")), json!("Ada"));
    assert_eq!(transform(json!([second]), json!("Lovelace")).unwrap(), None);
    let first = json!({"type": "split", "config": {"separator": "|", "index": 0}});
    assert_eq!(one(first, json!("|x")), json!(""));
}

#[test]
fn concat_adds_prefix_and_suffix() {
    assert_eq!(
        one(
            json!({"type": "concat", "config": {"prefix": "SF-"}}),
            json!(42)
        ),
        json!("SF-42")
    );
    assert_eq!(
        one(
            json!({"type": "concat", "config": {"suffix": " €"}}),
            json!("10")
        ),
        json!("10 €")
    );
    assert_eq!(
        one(
            json!({"type": "concat", "config": {"prefix": "<", "suffix": ">"}}),
            json!("")
        ),
        json!("<>")
    );
}

#[test]
fn round_is_decimal_and_half_away_from_zero() {
    let two = json!({"type": "round", "config": {"decimals": 2}});
    assert_eq!(one(two.clone(), json!(1.005)), json!(1.01));
    assert_eq!(one(two.clone(), json!(-1.005)), json!(-1.01));
    assert_eq!(one(two.clone(), json!(2.5)), json!(2.5));
    assert_eq!(one(two.clone(), json!("2.71828")), json!(2.72));
    assert_eq!(one(two.clone(), json!(7)), json!(7));
    let zero = json!({"type": "round", "config": {"decimals": 0}});
    assert_eq!(one(zero.clone(), json!(2.5)), json!(3));
    assert_eq!(one(zero, json!(-2.5)), json!(-3));
    assert_eq!(
        code(transform(json!([two.clone()]), json!("12 apples"))),
        "invalid_number"
    );
    assert_eq!(code(transform(json!([two]), json!(true))), "invalid_type");
}

#[test]
fn multiply_and_divide() {
    let times = json!({"type": "multiply", "config": {"factor": 100}});
    assert_eq!(one(times.clone(), json!(12)), json!(1200));
    assert_eq!(
        one(times.clone(), json!(0.07)),
        json!(7.000000000000001),
        "doubles, as JavaScript"
    );
    assert_eq!(one(times.clone(), json!("2.5")), json!(250));
    assert_eq!(
        one(times.clone(), json!(92_233_720_368_547_758i64)),
        json!(9_223_372_036_854_775_800i64),
        "exact while it fits"
    );
    assert_eq!(
        one(times, json!(92_233_720_368_547_759i64)),
        json!(9.223_372_036_854_776e18),
        "then a double"
    );
    let half = json!({"type": "divide", "config": {"divisor": 2}});
    assert_eq!(one(half.clone(), json!(5)), json!(2.5));
    assert_eq!(one(half, json!(-4)), json!(-2));
    let huge = json!({"type": "multiply", "config": {"factor": 1e300}});
    assert_eq!(
        code(transform(json!([huge]), json!(1e300))),
        "number_out_of_range"
    );
}

#[test]
fn currency_convert_from_schema_rates_or_the_task_table() {
    let schema_rates = json!({"type": "currency_convert", "config": {"from": "USD", "to": "EUR", "rates": {"EUR": 0.5, "GBP": 0.25}}});
    assert_eq!(one(schema_rates, json!(10)), json!(5));
    let same = json!({"type": "currency_convert", "config": {"from": "EUR", "to": "EUR"}});
    assert_eq!(one(same, json!(10)), json!(10));

    let task_rates = compile(single(
        "transform",
        json!({"sourceField": "v", "transformations": [{"type": "currency_convert", "config": {"from": "GBP", "to": "EUR"}}]}),
    ));
    assert_eq!(
        code(out(&task_rates, json!({"v": 10}))),
        "missing_currency_rate"
    );
    for table in [
        json!({"base": "USD", "rates": {"EUR": 0.9, "GBP": 0.75}}),
        json!({"USD": 1, "EUR": 0.9, "GBP": 0.75}),
    ] {
        let config = task(json!({ "currencyRates": table }));
        let RecordOutcome::Mapped(m) = task_rates
            .bind(Some(&config))
            .map_record(0, (&json!({"id": "1", "v": 75})).into())
        else {
            panic!("not mapped")
        };
        assert_eq!(m.data.to_map()["out"], json!(90));
    }
    let incomplete = task(json!({"currencyRates": {"USD": 1, "GBP": "0.75"}}));
    let RecordOutcome::Failed { errors } = task_rates
        .bind(Some(&incomplete))
        .map_record(0, (&json!({"id": "1", "v": 75})).into())
    else {
        panic!("mapped")
    };
    assert_eq!(errors[0].code, "missing_currency_rate");
}

#[test]
fn parse_date_with_formats_and_zones() {
    let european = json!({"type": "parse_date", "config": {"format": "%d/%m/%Y %H:%M", "timezone": "Europe/Paris"}});
    assert_eq!(
        one(european.clone(), json!("31/03/2024 12:00")),
        json!("2024-03-31T10:00:00.000Z")
    );
    assert_eq!(
        one(european.clone(), json!("31/01/2024 12:00")),
        json!("2024-01-31T11:00:00.000Z")
    );
    assert_eq!(
        code(transform(json!([european]), json!("2024-03-31"))),
        "invalid_date"
    );

    let offset = json!({"type": "parse_date", "config": {"format": "%Y-%m-%d %H:%M:%S %z"}});
    assert_eq!(
        one(offset, json!("2024-01-15 10:30:00 -0500")),
        json!("2024-01-15T15:30:00.000Z")
    );
    let date_only = json!({"type": "parse_date", "config": {"format": "%Y%m%d"}});
    assert_eq!(
        one(date_only, json!(20_240_115)),
        json!("2024-01-15T00:00:00.000Z")
    );
    for (format, input, expected) in [
        (
            "epoch_seconds",
            json!(1_705_314_600),
            "2024-01-15T10:30:00.000Z",
        ),
        (
            "epoch_seconds",
            json!("1705314600.25"),
            "2024-01-15T10:30:00.250Z",
        ),
        (
            "epoch_millis",
            json!(1_705_314_600_123i64),
            "2024-01-15T10:30:00.123Z",
        ),
        ("epoch_millis", json!(1_000), "1970-01-01T00:00:01.000Z"),
        (
            "rfc2822",
            json!("Mon, 15 Jan 2024 10:30:00 +0000"),
            "2024-01-15T10:30:00.000Z",
        ),
        (
            "iso8601",
            json!("2024-01-15T12:30:00+02:00"),
            "2024-01-15T10:30:00.000Z",
        ),
    ] {
        let t = json!({"type": "parse_date", "config": {"format": format}});
        assert_eq!(one(t, input), json!(expected), "{format}");
    }
    assert_eq!(
        code(transform(
            json!([{"type": "parse_date", "config": {"format": "%Y"}}]),
            json!(["2024"])
        )),
        "invalid_type"
    );
}

#[test]
fn format_date_in_a_zone() {
    let ny = json!({"type": "format_date", "config": {"format": "%Y-%m-%d %H:%M %Z", "timezone": "America/New_York"}});
    assert_eq!(
        one(ny.clone(), json!("2024-07-04T16:00:00Z")),
        json!("2024-07-04 12:00 EDT")
    );
    assert_eq!(
        one(ny, json!("2024-01-04T16:00:00Z")),
        json!("2024-01-04 11:00 EST")
    );
    let utc = json!({"type": "format_date", "config": {"format": "%d %B %Y"}});
    assert_eq!(one(utc, json!(1_705_314_600)), json!("15 January 2024"));
    let epoch = json!({"type": "format_date", "config": {"format": "epoch_seconds"}});
    assert_eq!(
        one(epoch, json!("2024-01-15T10:30:00Z")),
        json!(1_705_314_600)
    );
    // A zone given to parse_date carries on to format_date.
    let chain = json!([
        {"type": "parse_date", "config": {"format": "%Y-%m-%d %H:%M", "timezone": "Asia/Tokyo"}},
        {"type": "format_date", "config": {"format": "%H:%M %:z"}}
    ]);
    assert_eq!(
        ok(transform(chain, json!("2024-01-15 09:00"))),
        json!("09:00 +09:00")
    );
    assert_eq!(
        code(transform(
            json!([{"type": "format_date", "config": {"format": "%F"}}]),
            json!("soon")
        )),
        "invalid_date"
    );
}

#[test]
fn add_days_counts_calendar_days() {
    let plus = json!({"type": "add_days", "config": {"days": 30}});
    assert_eq!(
        one(plus, json!("2024-01-31")),
        json!("2024-03-01T00:00:00.000Z")
    );
    let minus = json!({"type": "add_days", "config": {"days": -1}});
    assert_eq!(
        one(minus, json!("2024-03-01T00:30:00+01:00")),
        json!("2024-02-28T23:30:00.000Z")
    );
    // Across the spring-forward change in Paris a day is 23 hours.
    let chain = json!([
        {"type": "parse_date", "config": {"format": "%Y-%m-%d %H:%M", "timezone": "Europe/Paris"}},
        {"type": "add_days", "config": {"days": 1}}
    ]);
    assert_eq!(
        ok(transform(chain, json!("2024-03-30 12:00"))),
        json!("2024-03-31T10:00:00.000Z")
    );
    let far = json!({"type": "add_days", "config": {"days": 2_000_000_000}});
    assert_eq!(
        code(transform(json!([far]), json!("2024-01-01"))),
        "invalid_date"
    );
}

#[test]
fn timestamps_and_iso_strings() {
    assert_eq!(
        one(
            json!({"type": "to_timestamp"}),
            json!("2024-01-15T10:30:00.123Z")
        ),
        json!(1_705_314_600_123i64)
    );
    assert_eq!(
        one(
            json!({"type": "to_iso_string"}),
            json!("Mon, 15 Jan 2024 11:30:00 +0100")
        ),
        json!("2024-01-15T10:30:00.000Z")
    );
    assert_eq!(
        one(
            json!({"type": "to_date"}),
            json!("2024-01-15T10:30:00.000+0000")
        ),
        json!("2024-01-15T10:30:00.000Z")
    );
    assert_eq!(
        one(json!({"type": "to_date"}), json!(1_705_314_600_000i64)),
        json!("2024-01-15T10:30:00.000Z")
    );
    assert_eq!(
        code(transform(json!([{"type": "to_date"}]), json!("31/12/2024"))),
        "invalid_date"
    );
    assert_eq!(
        code(transform(json!([{"type": "to_timestamp"}]), json!(false))),
        "invalid_type"
    );
}

#[test]
fn type_conversions() {
    assert_eq!(
        one(json!({"type": "to_string"}), json!(12.5)),
        json!("12.5")
    );
    assert_eq!(
        one(json!({"type": "to_string"}), json!(false)),
        json!("false")
    );
    assert_eq!(
        one(json!({"type": "to_string"}), json!({"a": [1]})),
        json!("{\"a\":[1]}")
    );
    assert_eq!(one(json!({"type": "to_number"}), json!(" 42 ")), json!(42));
    assert_eq!(one(json!({"type": "to_number"}), json!(true)), json!(1));
    assert_eq!(
        one(json!({"type": "to_number"}), json!("-1.5e3")),
        json!(-1500.0)
    );
    assert_eq!(
        code(transform(json!([{"type": "to_number"}]), json!("1,000"))),
        "invalid_number"
    );
    assert_eq!(
        one(json!({"type": "to_boolean"}), json!("Yes")),
        json!(true)
    );
    assert_eq!(one(json!({"type": "to_boolean"}), json!(0)), json!(false));
    assert_eq!(one(json!({"type": "to_boolean"}), json!(0.5)), json!(true));
    assert_eq!(
        code(transform(json!([{"type": "to_boolean"}]), json!("perhaps"))),
        "invalid_boolean"
    );
    assert_eq!(one(json!({"type": "to_array"}), json!("x")), json!(["x"]));
    assert_eq!(
        one(json!({"type": "to_array"}), json!([1, 2])),
        json!([1, 2])
    );
    assert_eq!(
        one(json!({"type": "to_array"}), json!({"a": 1})),
        json!([{"a": 1}])
    );
    assert_eq!(
        one(json!({"type": "to_date"}), json!("2024-02-29")),
        json!("2024-02-29T00:00:00.000Z")
    );
}

#[test]
fn null_and_missing_pass_through_every_transformation() {
    let all = json!([
        {"type": "uppercase"}, {"type": "trim"}, {"type": "round", "config": {"decimals": 1}},
        {"type": "to_number"}, {"type": "to_date"}, {"type": "format_date", "config": {"format": "%F"}},
        {"type": "to_boolean"}, {"type": "to_array"}
    ]);
    assert_eq!(ok(transform(all.clone(), json!(null))), json!(null));
    let schema = compile(single(
        "transform",
        json!({"sourceField": "absent", "transformations": all}),
    ));
    assert_eq!(out(&schema, json!({})).unwrap(), None);
}
