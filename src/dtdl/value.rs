//! Whether a JSON value fits a schema: what validating an import file's twins, a Twin.Update
//! patch or a generated value needs.
//!
//! Numbers must be JSON numbers of the right kind (`integer`: an integer in i32's range, `long`:
//! in i64's, `float`: within f32's range); temporal strings are checked for their RFC 3339 or
//! ISO 8601 form and for real dates and times; an Enum value must be one of its `enumValue`s;
//! an Object may leave fields out but holds no other key; geospatial values are GeoJSON
//! geometry objects of their type, with `coordinates` nested as the type says and positions of
//! two or three numbers (GeoJSON's ring and length rules are not checked). `null` fits nothing.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveTime};
use serde_json::{Map, Value};

use super::error::key_step;
use super::schema::{EnumLiteral, GeoKind, Primitive, Schema};

/// Why a value does not fit its schema.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ValueError {
    /// JSON path of the offending value inside the value checked: `$`, `$.address.city`,
    /// `$.curve[2].flow`.
    pub path: String,
    /// Lowercase, no trailing period.
    pub message: String,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A failure on its way up: the path steps, innermost first (built only on failure).
struct Failure {
    steps: Vec<String>,
    message: String,
}

fn fail<T>(message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure {
        steps: Vec::new(),
        message: message.into(),
    })
}

fn under<T>(result: Result<T, Failure>, step: impl FnOnce() -> String) -> Result<T, Failure> {
    result.map_err(|mut failure| {
        failure.steps.push(step());
        failure
    })
}

impl Schema {
    /// Whether `value` fits this schema; on failure, where and why.
    pub fn check(&self, value: &Value) -> Result<(), ValueError> {
        check(self, value).map_err(|failure| {
            let mut path = String::from("$");
            for step in failure.steps.iter().rev() {
                path.push_str(step);
            }
            ValueError {
                path,
                message: failure.message,
            }
        })
    }
}

fn check(schema: &Schema, value: &Value) -> Result<(), Failure> {
    match schema {
        Schema::Primitive(primitive) => check_primitive(*primitive, value),
        Schema::Enum(enumeration) => {
            let fits = enumeration
                .values
                .iter()
                .any(|candidate| match (&candidate.value, value) {
                    (EnumLiteral::Integer(n), Value::Number(v)) => {
                        v.as_i64() == Some(i64::from(*n))
                    }
                    (EnumLiteral::String(s), Value::String(v)) => s == v,
                    _ => false,
                });
            if fits {
                Ok(())
            } else {
                let allowed: Vec<String> = enumeration
                    .values
                    .iter()
                    .map(|v| match &v.value {
                        EnumLiteral::Integer(n) => n.to_string(),
                        EnumLiteral::String(s) => Value::from(s.as_str()).to_string(),
                    })
                    .collect();
                fail(format!(
                    "{} is not one of the enum's values ({})",
                    brief(value),
                    allowed.join(", ")
                ))
            }
        }
        Schema::Object(object) => {
            let map = as_object(value, "an object")?;
            for (key, item) in map {
                let Some(field) = object.field(key) else {
                    return under(fail("not a field of the object's schema"), || key_step(key));
                };
                under(check(&field.schema, item), || key_step(key))?;
            }
            Ok(())
        }
        Schema::Map(map_schema) => {
            let map = as_object(value, "an object (a map)")?;
            for (key, item) in map {
                under(check(&map_schema.value, item), || key_step(key))?;
            }
            Ok(())
        }
        Schema::Array(array) => {
            let Value::Array(items) = value else {
                return fail(format!("expected an array, found {}", brief(value)));
            };
            for (index, item) in items.iter().enumerate() {
                under(check(&array.element, item), || format!("[{index}]"))?;
            }
            Ok(())
        }
        Schema::Geo(kind) => check_geo(*kind, value),
    }
}

fn as_object<'v>(value: &'v Value, what: &str) -> Result<&'v Map<String, Value>, Failure> {
    match value {
        Value::Object(map) => Ok(map),
        _ => fail(format!("expected {what}, found {}", brief(value))),
    }
}

/// A short description of a value for messages: its type, or the value when short.
fn brief(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() <= 40 => Value::from(s.as_str()).to_string(),
        Value::String(_) => "a long string".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

fn check_primitive(primitive: Primitive, value: &Value) -> Result<(), Failure> {
    let expected = |what: &str| fail(format!("expected {what}, found {}", brief(value)));
    match primitive {
        Primitive::Boolean => match value {
            Value::Bool(_) => Ok(()),
            _ => expected("true or false"),
        },
        Primitive::Integer => match value.as_i64() {
            Some(n) if i32::try_from(n).is_ok() => Ok(()),
            _ => expected("an integer from -2147483648 to 2147483647"),
        },
        Primitive::Long => match value.as_i64() {
            Some(_) => Ok(()),
            None => expected("an integer that fits 8 bytes (long)"),
        },
        Primitive::Double => match value {
            Value::Number(_) => Ok(()),
            _ => expected("a number"),
        },
        Primitive::Float => match value.as_f64() {
            Some(x) if x.abs() <= f64::from(f32::MAX) => Ok(()),
            _ => expected("a number within a float's range"),
        },
        Primitive::String => match value {
            Value::String(_) => Ok(()),
            _ => expected("a string"),
        },
        Primitive::Date => match value.as_str() {
            Some(text) if is_date(text) => Ok(()),
            _ => expected("a date, 2024-02-29"),
        },
        Primitive::DateTime => match value.as_str() {
            Some(text) if is_date_time(text) => Ok(()),
            _ => expected("an RFC 3339 date-time, 2024-02-29T13:45:00Z"),
        },
        Primitive::Time => match value.as_str() {
            Some(text) if is_time(text) => Ok(()),
            _ => expected("a time, 13:45:00"),
        },
        Primitive::Duration => match value.as_str() {
            Some(text) if is_duration(text) => Ok(()),
            _ => expected("an ISO 8601 duration, P1DT2H30M"),
        },
    }
}

/// RFC 3339 full-date: `YYYY-MM-DD`, a real day.
pub(super) fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit())
        && NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
}

/// RFC 3339 date-time with an offset (`Z` or `±hh:mm`), any number of fractional digits.
pub(super) fn is_date_time(text: &str) -> bool {
    text.get(..10).is_some_and(is_date)
        && matches!(text.as_bytes().get(10), Some(b'T' | b't'))
        && DateTime::parse_from_rfc3339(text).is_ok()
}

/// RFC 3339 partial-time `hh:mm:ss[.frac]`, optionally with an offset (`Z` or `±hh:mm`).
pub(super) fn is_time(text: &str) -> bool {
    let bytes = text.as_bytes();
    let local = if let Some(local) = text.strip_suffix(['Z', 'z']) {
        local
    } else if bytes.len() > 6 && matches!(bytes[bytes.len() - 6], b'+' | b'-') {
        // An ASCII byte is always a char boundary.
        let (local, offset) = text.split_at(text.len() - 6);
        if !is_offset(offset.as_bytes()) {
            return false;
        }
        local
    } else {
        text
    };
    let bytes = local.as_bytes();
    let shape = bytes.len() >= 8
        && bytes[2] == b':'
        && bytes[5] == b':'
        && [0, 1, 3, 4, 6, 7]
            .iter()
            .all(|&i| bytes[i].is_ascii_digit())
        && match &bytes[8..] {
            [] => true,
            [b'.', digits @ ..] => !digits.is_empty() && digits.iter().all(u8::is_ascii_digit),
            _ => false,
        };
    shape && NaiveTime::parse_from_str(local, "%H:%M:%S%.f").is_ok()
}

/// `±hh:mm`.
fn is_offset(offset: &[u8]) -> bool {
    let digit = |i: usize| {
        offset
            .get(i)
            .filter(|b| b.is_ascii_digit())
            .map(|b| b - b'0')
    };
    let (Some(h1), Some(h2), Some(m1), Some(_)) = (digit(1), digit(2), digit(4), digit(5)) else {
        return false;
    };
    offset.len() == 6 && offset[3] == b':' && h1 * 10 + h2 < 24 && m1 < 6
}

/// ISO 8601 duration: `P[nY][nM][nW][nD][T[nH][nM][n[.n]S]]`, at least one part, at least
/// one after `T` if there is a `T`; a fraction only on the last part. A leading `-` is
/// accepted (XML Schema's negative durations).
pub(super) fn is_duration(text: &str) -> bool {
    let text = text.strip_prefix('-').unwrap_or(text);
    let Some(rest) = text.strip_prefix('P') else {
        return false;
    };
    let mut fraction_seen = false;
    match rest.split_once('T') {
        Some((date, time)) => {
            duration_parts(date, b"YMWD", &mut fraction_seen).is_some()
                && duration_parts(time, b"HMS", &mut fraction_seen).is_some_and(|n| n > 0)
        }
        None => duration_parts(rest, b"YMWD", &mut fraction_seen).is_some_and(|n| n > 0),
    }
}

/// The parts of one section of a duration (`1Y2M`, `3H0.5S`), each a number and one of
/// `designators` in order; `None` if malformed. A fraction must be on the duration's last part.
fn duration_parts(section: &str, designators: &[u8], fraction_seen: &mut bool) -> Option<usize> {
    let mut allowed = designators;
    let mut parts = 0;
    let mut rest = section;
    while !rest.is_empty() {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))?;
        let (number, tail) = rest.split_at(end);
        let designator = *tail.as_bytes().first()?;
        let position = allowed.iter().position(|&d| d == designator)?;
        let (whole, fraction) = match number.split_once(['.', ',']) {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (number, None),
        };
        let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
        if *fraction_seen || !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
            return None;
        }
        *fraction_seen = fraction.is_some();
        parts += 1;
        allowed = &allowed[position + 1..];
        rest = &tail[1..];
    }
    Some(parts)
}

fn check_geo(kind: GeoKind, value: &Value) -> Result<(), Failure> {
    let map = as_object(value, "a GeoJSON geometry object")?;
    match map.get("type") {
        Some(Value::String(found)) if found == kind.geojson_type() => {}
        _ => {
            return under(
                fail(format!("expected \"{}\"", kind.geojson_type())),
                || ".type".to_owned(),
            );
        }
    }
    let Some(coordinates) = map.get("coordinates") else {
        return fail("a GeoJSON geometry needs coordinates");
    };
    under(coordinates_at(coordinates, kind.position_depth()), || {
        ".coordinates".to_owned()
    })?;
    for key in map.keys() {
        if !matches!(key.as_str(), "type" | "coordinates" | "bbox") {
            return under(fail("not a member of a GeoJSON geometry"), || key_step(key));
        }
    }
    Ok(())
}

/// `depth` levels of arrays around positions; a position is 2 or 3 numbers.
fn coordinates_at(value: &Value, depth: usize) -> Result<(), Failure> {
    let Value::Array(items) = value else {
        return fail(format!("expected an array, found {}", brief(value)));
    };
    if depth == 0 {
        if (2..=3).contains(&items.len()) && items.iter().all(Value::is_number) {
            return Ok(());
        }
        return fail("a position is an array of 2 or 3 numbers");
    }
    for (index, item) in items.iter().enumerate() {
        under(coordinates_at(item, depth - 1), || format!("[{index}]"))?;
    }
    Ok(())
}
